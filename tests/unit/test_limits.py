"""The token bucket behind the optional rate limit."""

from server.limits import RateLimiter


def test_burst_then_refill_at_the_configured_rate() -> None:
    limiter = RateLimiter(per_minute=60, burst=3)
    assert [limiter.check("a", now=0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.check("a", now=0.0)
    assert 0.99 <= wait <= 1.01  # one token a second
    assert limiter.check("a", now=1.0) == 0.0
    assert limiter.check("b", now=1.0) == 0.0  # clients have their own buckets


def test_memory_is_bounded() -> None:
    limiter = RateLimiter(per_minute=60, burst=1, max_clients=100)
    for index in range(1000):
        limiter.check(f"client-{index}", now=0.0)
    assert len(limiter._buckets) == 100
