"""Smoke tests of the benchmark harness itself (no timing thresholds).

- the fake upstream speaks the chat-completions protocol as the ``openai`` SDK parses it;
- the load generator counts deltas, checks the contract and reports what breaks it,
  whatever way the frames are cut into TCP segments, in both its protocols (the Burr-UI
  frames, and the ``/v1`` route's ``chat.completion.chunk`` events as our adapter writes
  them);
- the relays we wrote (floor, lean, naive) emit the contract's frames end to end, and
  this server's ``/v1`` route continues each named conversation under the ``/v1`` load;
- ``--baseline-ref``: ``ours@<commit>`` serves the code of a worktree of that commit, and
  the report gives it before/after this server, per delta and per turn;
- the report holds this server to its budgets and its workers to their goal.

Run: ``.venv/bin/python -m pytest bench/test_harness.py``
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path

import openai
import orjson
import pytest

from bench import procs, wire
from bench.loadgen import LoadConfig, percentile, run_load
from chatbot.domain.chat_items import assistant_item
from chatbot.domain.errors import TurnError
from chatbot.domain.events import StepStarted, Timings, TurnCompleted, TurnFailed, Usage
from server.protocols.openai import ChunkFrames, CompletionIds, event_frames
from server.settings import ServerSettings

DELTAS = 7


@pytest.fixture(scope="module")
def upstream(tmp_path_factory) -> Iterator[int]:
    log = tmp_path_factory.mktemp("upstream") / "upstream.log"
    argv = [procs.PYTHON, "-m", "bench.upstream", "--port", "0", "--deltas", str(DELTAS)]
    argv += ["--pace", "0.001", "--mode-word", "generate_poem"]
    proc = procs.spawn(argv, log, stdout=subprocess.PIPE)
    try:
        yield int(procs.read_ready_line(proc))
    finally:
        procs.stop(proc)


def _stats(port: int) -> dict:
    return orjson.loads(procs.http_call(port, "GET", "/stats")[1])


async def test_upstream_streams_what_the_sdk_parses(upstream: int) -> None:
    client = openai.AsyncOpenAI(api_key="bench", base_url=f"http://127.0.0.1:{upstream}/v1")
    before = _stats(upstream)
    stream = await client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    chunks = [chunk async for chunk in stream]
    await client.close()
    contents = [c.choices[0].delta.content for c in chunks]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c for c in contents if c] == wire.reply_deltas(DELTAS)
    assert chunks[-1].choices[0].finish_reason == "stop"
    after = _stats(upstream)
    assert after["streams_completed"] - before["streams_completed"] == 1
    assert after["requests"] - before["requests"] == 1


async def test_upstream_answers_the_classifier_with_the_mode_word(upstream: int) -> None:
    client = openai.AsyncOpenAI(api_key="bench", base_url=f"http://127.0.0.1:{upstream}/v1")
    before = _stats(upstream)
    reply = await client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "write a poem"}]
    )
    await client.close()
    assert reply.choices[0].message.content == "generate_poem"
    assert _stats(upstream)["classify"] - before["classify"] == 1


# --- the load generator against a scripted server ------------------------------------------


def _frame(kind: str, value, trailing: bytes = b"") -> bytes:
    return b"data: " + orjson.dumps({"type": kind, "value": value}) + trailing + b"\n\n"


def _chunked(body: bytes, cut: int) -> list[bytes]:
    """The body as HTTP chunks of at most ``cut`` bytes (frames split mid-way on purpose)."""
    parts = [body[i : i + cut] for i in range(0, len(body), cut)]
    return [b"%x\r\n%s\r\n" % (len(p), p) for p in parts] + [b"0\r\n\r\n"]


async def _scripted_server(
    reply: bytes, cut: int, requests: list[tuple[bytes, bytes]] | None = None
) -> tuple[asyncio.base_events.Server, int]:
    """Answers create with JSON and every response with ``reply``, cut into ``cut``-byte chunks;
    each request's head and body go to ``requests``."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                body = await reader.readexactly(length)
                if requests is not None:
                    requests.append((head, body))
                if b"/create/" in head.split(b"\r\n")[0]:
                    writer.write(b'HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\n"ok"')
                    continue
                writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
                for piece in _chunked(reply, cut):
                    writer.write(piece)
                    await writer.drain()
                    await asyncio.sleep(0)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def _good_reply(trailing: bytes = b"") -> bytes:
    deltas = wire.reply_deltas(DELTAS)
    return (
        _frame("chat_history", [], trailing)
        + _frame("delta", "", trailing)  # an empty delta (the SDK's role chunk) is not a token
        + b"".join(_frame("delta", d, trailing) for d in deltas)
        + _frame("end", {"mode": "answer_question"}, trailing)
    )


@pytest.mark.parametrize("cut", [1, 7, 64, 100_000])
@pytest.mark.parametrize("trailing", [b"", b" "])  # the Burr example writes "} \n\n"
async def test_loadgen_counts_deltas_across_any_segmentation(cut: int, trailing: bytes) -> None:
    server, port = await _scripted_server(_good_reply(trailing), cut)
    async with server:
        cfg = LoadConfig(port=port, conversations=3, turns=2, deltas=DELTAS, turn_timeout=10)
        s = await run_load(cfg)
    assert s.errors == {}
    assert s.turns_ok == 6
    assert s.deltas == 6 * DELTAS
    assert s.empty_deltas == 6
    assert s.end_frames == 6
    assert len(s.ttfd) == 6
    assert s.gaps == 6 * (DELTAS - 1)


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (
            _good_reply().replace(
                b'"type":"delta","value":" the"', b'"type":"delta","value":"X"', 1
            ),
            "content_mismatch",
        ),
        (_good_reply().split(b"\n\n", 1)[1], "first_frame_not_chat_history"),
        (_good_reply() + _frame("error", {"code": "upstream_error"}), "error_frame"),
    ],
)
async def test_loadgen_counts_broken_turns_as_errors(reply: bytes, error: str) -> None:
    server, port = await _scripted_server(reply, 50)
    async with server:
        cfg = LoadConfig(port=port, conversations=2, turns=1, deltas=DELTAS, turn_timeout=10)
        s = await run_load(cfg)
    assert s.errors == {error: 2}
    assert s.turns_ok == 0 and s.deltas == 0 and s.ttfd == []


# --- the /v1 protocol: chat.completion.chunk events as our adapter writes them ---------------


def _chunk_frames(include_usage: bool) -> ChunkFrames:
    ids = CompletionIds("chatcmpl-bench", 1, "burr-chatbot", "conv-0")
    return ChunkFrames(ids, include_usage=include_usage)


def _v1_reply(
    include_usage: bool = False, deltas: list[str] | None = None, failure: bool = False
) -> bytes:
    """A streamed completion, byte for byte as ``server.protocols.openai`` writes it: the
    role chunk, a chunk per delta, then the finish chunk (and usage) and ``[DONE]``, or,
    with ``failure``, the mid-stream error event that ends the stream instead."""
    frames = _chunk_frames(include_usage)
    deltas = wire.reply_deltas(DELTAS) if deltas is None else deltas
    events: list = [StepStarted("generate_poem"), *deltas]
    if failure:
        events.append(TurnFailed(TurnError("upstream_error", "The model failed."), "poem"))
    else:
        item = assistant_item("".join(deltas))
        events.append(TurnCompleted(item, "generate_poem", Timings(1.0, 2.0), Usage(3, 4)))
    return b"".join(event_frames(event, frames) for event in events)


@pytest.mark.parametrize("cut", [1, 7, 64, 100_000])
@pytest.mark.parametrize("include_usage", [False, True])
async def test_loadgen_v1_counts_chunks_across_any_segmentation(
    cut: int, include_usage: bool
) -> None:
    requests: list[tuple[bytes, bytes]] = []
    server, port = await _scripted_server(_v1_reply(include_usage), cut, requests)
    async with server:
        cfg = LoadConfig(
            port=port, conversations=3, turns=2, deltas=DELTAS, turn_timeout=10, protocol="v1"
        )
        s = await run_load(cfg)
    assert s.errors == {}
    assert s.turns_ok == 6
    assert s.deltas == 6 * DELTAS
    assert s.empty_deltas == 6  # the role chunk's content ""
    assert s.end_frames == 6  # one [DONE] per reply
    assert len(s.ttfd) == 6
    assert s.gaps == 6 * (DELTAS - 1)
    # Six turns, no create call: each names its conversation and sends only its prompt.
    assert len(requests) == 6
    named = set()
    for head, body in requests:
        lines = head.decode().split("\r\n")
        assert lines[0] == "POST /v1/chat/completions HTTP/1.1"
        headers = dict(line.lower().split(": ", 1) for line in lines[1:] if line)
        named.add(headers["x-conversation-id"])
        request = orjson.loads(body)
        assert request["model"] == "burr-chatbot" and request["stream"] is True
        assert [m["role"] for m in request["messages"]] == ["user"]
    assert named == {"conv-0", "conv-1", "conv-2"}


def _without(reply: bytes, predicate) -> bytes:
    return b"".join(f + b"\n\n" for f in reply.split(b"\n\n")[:-1] if not predicate(f))


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (_v1_reply(deltas=["X", *wire.reply_deltas(DELTAS)[1:]]), "content_mismatch"),
        (_without(_v1_reply(), lambda f: b'"role":"assistant"' in f), "first_chunk_not_role"),
        (_v1_reply(failure=True), "error_frame"),
        (_without(_v1_reply(), lambda f: f == b"data: [DONE]"), "no_done"),
        (_without(_v1_reply(), lambda f: b'"finish_reason":"stop"' in f), "no_finish_reason"),
        (_v1_reply() + b"data: {not json}\n\n", "error_frame"),
    ],
    ids=["mismatch", "no-role", "error-event", "no-done", "no-finish", "not-json"],
)
async def test_loadgen_v1_counts_broken_turns_as_errors(reply: bytes, error: str) -> None:
    server, port = await _scripted_server(reply, 50)
    async with server:
        cfg = LoadConfig(
            port=port, conversations=2, turns=1, deltas=DELTAS, turn_timeout=10, protocol="v1"
        )
        s = await run_load(cfg)
    assert s.errors == {error: 2}
    assert s.turns_ok == 0 and s.deltas == 0 and s.ttfd == []


def test_percentile_is_nearest_rank() -> None:
    values = list(range(1, 101))
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile([5.0], 99) == 5.0
    assert percentile([], 50) == 0.0


# --- our relays, end to end ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["floor", "lean", "naive"])
async def test_relays_emit_the_contract_frames(upstream: int, name: str, tmp_path: Path) -> None:
    from bench.targets import TARGETS

    port = procs.free_port()
    env = {
        "OPENAI_API_KEY": "bench",
        "OPENAI_BASE_URL": f"http://127.0.0.1:{upstream}/v1",
        "HOME": str(tmp_path),
    }
    proc = procs.spawn(TARGETS[name].command(port), tmp_path / "server.log", env=env)
    try:
        await asyncio.to_thread(procs.wait_http, proc, port, "POST", TARGETS[name].create_path, 60)
        s = await run_load(
            LoadConfig(port=port, conversations=3, turns=2, deltas=DELTAS, turn_timeout=30)
        )
        status, history = procs.http_call(
            port, "GET", "/api/v0/streaming_chatbot/history/bench/conv-0"
        )
    finally:
        procs.stop(proc)
    assert s.errors == {}
    assert s.turns_ok == 6 and s.deltas == 6 * DELTAS and s.end_frames == 6
    assert status == 200 and len(orjson.loads(history)) == 4


async def test_ours_v1_continues_each_named_conversation(upstream: int, tmp_path: Path) -> None:
    """The /v1 load against this server: every turn streams, and each conversation's turns
    land in the one conversation its header names (the server holds the history)."""
    from bench.targets import TARGETS

    target = TARGETS["ours-v1"]
    if why := target.available():
        pytest.fail(why)
    port = procs.free_port()
    env = {
        "OPENAI_API_KEY": "bench",
        "OPENAI_BASE_URL": f"http://127.0.0.1:{upstream}/v1",
        "HOME": str(tmp_path),
    }
    proc = procs.spawn(target.command(port), tmp_path / "server.log", env=env)
    try:
        await asyncio.to_thread(procs.wait_http, proc, port, "POST", target.create_path, 60)
        s = await run_load(
            LoadConfig(
                port=port,
                app_prefix="v1",
                conversations=2,
                turns=3,
                deltas=DELTAS,
                turn_timeout=30,
                protocol=target.protocol,
            )
        )
        # /v1 conversations belong to the chat UI's project.
        project = ServerSettings.model_fields["ui_project_id"].default
        status, history = procs.http_call(
            port, "GET", f"/api/v0/streaming_chatbot/history/{project}/v1-1"
        )
    finally:
        procs.stop(proc)
    assert s.errors == {}
    # Every reply's text arrived whole (checked per turn); tokens the upstream sends in
    # one network read reach the client as one delta (chatbot.llm.sse), hence a range.
    assert s.turns_ok == 6 and s.end_frames == 6 and 6 < s.deltas <= 6 * DELTAS
    assert status == 200
    items = orjson.loads(history)
    assert [i["role"] for i in items] == ["user", "assistant"] * 3
    assert [i["content"] for i in items[1::2]] == [wire.reply_text(DELTAS)] * 3


# --- this server at a git ref (--baseline-ref) --------------------------------------------


def test_ours_at_a_ref_serves_the_code_of_its_checkout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``ours@<commit>`` runs from a temporary worktree of the commit: the server compiles
    its packages there (they are the ones imported), answers the load as ``ours`` does and
    is measured per turn; the worktree is gone once the run ends."""
    from bench import refs, runner
    from bench.targets import TARGETS, at_ref

    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)  # the .pyc files are the proof
    opts = runner.Options(run_dir=tmp_path, pin=False, warmup=0, quiet_wait=0.0)
    scenario = runner.Scenario("ref", conversations=2, turns=2, deltas=DELTAS, pace=0.001)
    with refs.checkout("HEAD") as (commit, tree):
        assert not list(tree.rglob("*.pyc"))
        target = at_ref(TARGETS["ours"], commit, tree)
        assert target.name == f"ours@{commit}"
        if why := target.available():  # imports the two packages from the checkout
            pytest.fail(why)
        probed = set(tree.rglob("*.pyc"))
        with runner.Upstream(opts, scenario) as upstream:
            with runner.Server(opts, target, upstream, "t") as server:
                r = runner.measure(opts, server, upstream, scenario, f"{target.name}-t")
        # What the server process itself compiled: the modules it imported from the checkout.
        served = set(tree.rglob("*.pyc")) - probed
        for package in ("chatbot", "server"):
            assert any(p.is_relative_to(tree / package) for p in served), package
    assert r["errors"] == 0 and r["turns_ok"] == 4 and r["end_frames"] == 4
    assert r["cpu_per_turn_ms"] == r["server_cpu_s"] / 4 * 1e3
    assert not tree.exists()
    listed = subprocess.run(
        ["git", "worktree", "list", "--porcelain"], cwd=procs.ROOT, capture_output=True, text=True
    ).stdout
    assert str(tree) not in listed


# --- the report: budgets and the workers goal -----------------------------------------------


def _run(target: str, rep: int, cpu_us: float, ttfd_ms: float, **extra) -> dict:
    """One measured run as ``runner.measure`` records it (the fields the report reads)."""
    return {
        "target": target,
        "rep": rep,
        "cpu_per_delta_us": cpu_us,
        "ttfd_p50_ms": ttfd_ms,
        "ttfd_p99_ms": ttfd_ms * 2,
        "gap_p99_ms": 30.0,
        "tail_p99_ms": 5.0,
        "server_cores": 0.5,
        "rss_peak_mb": 100.0,
        "rss_per_stream_kb": 50.0,
        "upstream_requests": 100,
        "turns_planned": 100,
        "errors": 0,
        "error_kinds": {},
        "other_cores": 0.0,
        "other_on_server_core": 0.0,
        "loadgen_cores": 0.1,
        "upstream_cores": 0.1,
        "loadgen_lag_p99_ms": 1.0,
        **extra,
    }


def _budget(
    ours_cpu: float,
    ours_ttfd: float,
    v1_cpu: float | None = None,
    litellm_ttfd: float = 200.0,
    trackdb_cpu: float | None = None,
) -> dict:
    """Three repetitions; ``v1_cpu`` adds the /v1 route (by default at ours' cost), next to
    the /v1 byte relay (80 µs per delta) and LiteLLM's proxy (600 µs per delta);
    ``trackdb_cpu``, this server with its tracking in the database (by default at ours'
    cost), next to it with tracking off (10 % cheaper)."""
    runs = []
    for rep in range(3):
        runs += [
            _run("floor", rep, 100.0, 30.0),
            _run("naive", rep, 400.0, 40.0),
            _run("burr", rep, 1200.0, 2000.0),
            _run("floor-v1", rep, 80.0, 30.0),
            _run("litellm", rep, 600.0, litellm_ttfd),
            _run("ours", rep, ours_cpu, ours_ttfd),
            _run("ours-v1", rep, ours_cpu if v1_cpu is None else v1_cpu, ours_ttfd),
            _run("ours-trackdb", rep, trackdb_cpu or ours_cpu, ours_ttfd),
            _run("ours-untracked", rep, ours_cpu * 0.9, ours_ttfd),
        ]
    rtt = [{"classifier_rtt_p50": 0.025}] * 3
    targets = ["floor", "naive", "burr", "floor-v1", "litellm", "ours", "ours-v1"]
    targets += ["ours-trackdb", "ours-untracked"]
    return {"runs": runs, "rtt": rtt, "targets": targets}


def _verdicts(result: dict) -> dict[str, bool | None]:
    from bench import report

    return {name: ok for name, *_, ok in report.budget_summary(result)["checks"]}


def test_budgets_are_ratios_to_the_floor_burr_and_the_naive_relay() -> None:
    from bench import report

    # 1.4x floor, burr 8.6x, ttfd 0.98; /v1 1.07x, 1.9x its relay, LiteLLM 4x, TTFT 0.2x;
    # tracking in the database 1.03x
    met = _verdicts(_budget(ours_cpu=140.0, ours_ttfd=39.0, v1_cpu=150.0, trackdb_cpu=144.0))
    assert met == {name: True for name, *_ in report.BUDGETS}
    # 2.1x floor, burr 5.7x, ttfd 1.03; /v1 1.14x, 3x its relay, LiteLLM 2.5x, TTFT 1.4x;
    # tracking in the database 1.1x
    missed = _verdicts(
        _budget(ours_cpu=210.0, ours_ttfd=41.0, v1_cpu=240.0, litellm_ttfd=30.0, trackdb_cpu=231.0)
    )
    assert missed == {name: False for name, *_ in report.BUDGETS}


def test_budget_table_says_met_or_not_met() -> None:
    from bench import report

    result = {
        **_budget(ours_cpu=210.0, ours_ttfd=39.0),
        "scenario": {"conversations": 2, "turns": 1, "deltas": 5, "pace": 0.02, "stagger": None},
        "repeats": 3,
    }
    md = report.budget_markdown(result, "make bench")
    every = "met in 0 of 3 | **not met** |"
    assert "| CPU per delta vs the floor | ≤ 2× | 2.10× | 2.10 to 2.10×, " + every in md
    assert (
        "| /v1: CPU per delta, LiteLLM's proxy / this server | ≥ 3× | 2.86× | 2.86 to 2.86×, "
        + every
    ) in md
    assert (
        "| Median TTFD vs the naive relay | ≤ 1.0× | 0.97× | 0.97 to 0.97×, met in 3 of 3 | met |"
        in md
    )
    assert "| floor (aiohttp relay) |" in md


def test_each_budget_says_how_many_repetitions_were_within_it() -> None:
    """A median near its bound is told apart from one far from it: the repetitions'
    lowest and highest ratios, and how many met the budget."""
    from bench import report

    result = {
        **_budget(ours_cpu=190.0, ours_ttfd=39.0),
        "scenario": {"conversations": 2, "turns": 1, "deltas": 5, "pace": 0.02, "stagger": None},
        "repeats": 3,
    }
    ours = [r for r in result["runs"] if r["target"] == "ours"]
    for run, cpu in zip(ours, (150.0, 190.0, 260.0), strict=True):  # 1.5x, 1.9x, 2.6x
        run["cpu_per_delta_us"] = cpu
    md = report.budget_markdown(result, "make bench")
    assert (
        "| CPU per delta vs the floor | ≤ 2× | 1.90× | 1.50 to 2.60×, met in 2 of 3 | met |" in md
    )


def test_each_tracking_writer_is_reported_with_its_cost_per_turn() -> None:
    """File and database tracking, each less the same server with tracking off."""
    from bench import report

    runs = []
    for rep in range(3):
        runs += [
            _run("ours", rep, 100.0, 40.0, cpu_per_turn_ms=4.5),
            _run("ours-trackdb", rep, 104.0, 40.0, cpu_per_turn_ms=4.9),
            _run("ours-untracked", rep, 90.0, 40.0, cpu_per_turn_ms=4.0),
        ]
    result = {
        "runs": runs,
        "rtt": [{"classifier_rtt_p50": 0.025}] * 3,
        "targets": ["ours", "ours-trackdb", "ours-untracked"],
        "scenario": {"conversations": 2, "turns": 1, "deltas": 5, "pace": 0.02, "stagger": None},
        "repeats": 3,
    }
    md = report.budget_markdown(result, "make bench")
    assert "tracking off, 4.00 ms" in md
    assert "| this server | 4.50 | 100.0 | 0.50 |" in md
    assert "| this server, tracking in the database | 4.90 | 104.0 | 0.90 |" in md
    name = "CPU per delta: tracking in the database vs in Burr's files (within 5 %)"
    assert f"| {name} | ≤ 1.05× | 1.04× | 1.04 to 1.04×, met in 3 of 3 | met |" in md


def test_a_baseline_ref_is_reported_before_and_after() -> None:
    """``ours@<commit>`` next to ``ours``: both figures and their ratio, per delta and per
    turn, also when the run is rendered again by a process that never registered it."""
    from bench import report

    runs = []
    for rep, (now, then) in enumerate([(110.0, 100.0), (121.0, 110.0), (99.0, 90.0)]):
        runs += [
            _run("ours", rep, now, 40.0, cpu_per_turn_ms=now / 20),
            _run("ours@abc1234", rep, then, 40.0, cpu_per_turn_ms=then / 10),
        ]
    result = {
        "runs": runs,
        "rtt": [{"classifier_rtt_p50": 0.025}] * 3,
        "targets": ["ours", "ours@abc1234"],
        "scenario": {"conversations": 2, "turns": 1, "deltas": 5, "pace": 0.02, "stagger": None},
        "repeats": 3,
    }
    ratios = report.budget_summary(result)["ratios"]["ours/ours@abc1234"]
    assert ratios["cpu_per_delta_us"] == pytest.approx(1.1)
    assert ratios["cpu_per_turn_ms"] == pytest.approx(0.55)
    md = report.budget_markdown(result, "make bench", budgets=False)
    assert "| this server at abc1234 | 40.0 |" in md
    assert "| this server / this server at abc1234 | 1.10 | 0.55 |" in md
    before_after = "CPU per delta 100.0 → 110.0 µs (**1.10×**), CPU per turn 10.00 → 5.50 ms"
    assert f"{before_after} (**0.55×**)" in md
    assert "Budgets for this server" not in md


@pytest.mark.parametrize(("v1_cpu", "verdict"), [(170.0, "met"), (180.0, "**not met**")])
def test_budget_holds_the_v1_route_within_10_percent_of_ours(v1_cpu: float, verdict: str) -> None:
    from bench import report

    result = {
        **_budget(ours_cpu=160.0, ours_ttfd=39.0, v1_cpu=v1_cpu),
        "scenario": {"conversations": 2, "turns": 1, "deltas": 5, "pace": 0.02, "stagger": None},
        "repeats": 3,
    }
    md = report.budget_markdown(result, "make bench")
    ratio = f"{v1_cpu / 160.0:.2f}"
    name = "CPU per delta: the /v1 route vs the Burr-UI route (within 10 %)"
    met = 3 if verdict == "met" else 0
    assert (
        f"| {name} | ≤ 1.1× | {ratio}× | {ratio} to {ratio}×, met in {met} of 3 | {verdict} |" in md
    )
    assert f"| this server (/v1 route) / this server | {ratio} |" in md
    row = next(line for line in md.splitlines() if line.startswith("| this server (/v1 route) |"))
    assert f"| {v1_cpu:.1f} |" in row  # its CPU per delta, next to this server's row


def test_the_v1_budget_is_not_measured_without_the_v1_route() -> None:
    result = _budget(ours_cpu=140.0, ours_ttfd=39.0)
    result["runs"] = [r for r in result["runs"] if r["target"] != "ours-v1"]
    verdicts = _verdicts(result)
    assert verdicts["CPU per delta: the /v1 route vs the Burr-UI route (within 10 %)"] is None
    assert verdicts["CPU per delta vs the floor"] is True


def _ramp(workers: int, passing: list[int], failing: int) -> list[dict]:
    runs = [_run("ours", 0, 300.0, 50.0, workers=workers, level=n, pace_kept=0.95) for n in passing]
    runs.append(_run("ours", 0, 300.0, 50.0, workers=workers, level=failing, pace_kept=0.6))
    return runs


@pytest.mark.parametrize(("two_workers", "verdict"), [(175, "met"), (150, "**not met**")])
def test_capacity_reports_the_curve_per_worker_count(two_workers: int, verdict: str) -> None:
    from bench import report

    result = {
        "runs": _ramp(1, [50, 100], 150) + _ramp(2, [100, two_workers], 400),
        "targets": ["ours"],
        "workers": [1, 2],
        "levels": [50, 100, 150, 175, 400],
        "gap_limit_ms": 250.0,
        "scenario": {"turns": 3, "deltas": 100, "pace": 1 / 30},
        "pin": True,
    }
    summary = report.capacity_summary(result)
    assert summary["ours"]["sustained_strict"] == 100
    assert summary["ours x2"]["sustained_strict"] == two_workers
    md = report.capacity_markdown(result, "make bench", None)
    ratio = f"{two_workers / 100:.2f}"
    assert f"| 2 | {two_workers} | {ratio} | ≥ 1.70× | {verdict} |" in md
    assert "| this server, 2 workers |" in md


def test_the_workers_goal_needs_both_ramps_to_reach_their_limit() -> None:
    from bench import report

    passing_to_the_end = [
        _run("ours", 0, 300.0, 50.0, workers=2, level=n, pace_kept=0.95) for n in (100, 150)
    ]
    result = {
        "runs": _ramp(1, [50, 100], 150) + passing_to_the_end,
        "targets": ["ours"],
        "workers": [1, 2],
        "levels": [50, 100, 150],
        "gap_limit_ms": 250.0,
        "scenario": {"turns": 3, "deltas": 100, "pace": 1 / 30},
        "pin": True,
    }
    md = report.capacity_markdown(result, "make bench", None)
    assert "| 2 | 150 | 1.50 | ≥ 1.70× | ramp too short to tell |" in md


@pytest.mark.parametrize(
    ("per_turn_ms", "verdict"),
    [
        (3.6, "3.60 ms, met (each repetition: 3.60 to 3.60 ms, met in 3 of 3)."),
        (4.4, "4.40 ms, **not met** (each repetition: 4.40 to 4.40 ms, met in 0 of 3)."),
    ],
)
def test_the_short_replies_say_whether_a_turn_is_within_its_budget(
    per_turn_ms: float, verdict: str
) -> None:
    from bench import report

    result = {
        "runs": [_run("ours", rep, 1200.0, 40.0, cpu_per_turn_ms=per_turn_ms) for rep in range(3)],
        "rtt": [{"classifier_rtt_p50": 0.025}] * 3,
        "targets": ["ours"],
        "scenario": {"conversations": 2, "turns": 1, "deltas": 3, "pace": 0.02, "stagger": None},
        "repeats": 3,
    }
    md = report.budget_markdown(result, "make bench", budgets=False)
    assert f"CPU per turn at most 4 ms: {verdict}" in md


def test_a_rendered_run_names_the_machine_and_commit_it_ran_on() -> None:
    """``--render`` after a report change keeps the run's own provenance, not today's."""
    from bench import report

    result = {
        **_budget(ours_cpu=160.0, ours_ttfd=39.0),
        "scenario": {"conversations": 2, "turns": 1, "deltas": 5, "pace": 0.02, "stagger": None},
        "repeats": 3,
        "machine": "the run's machine; commit 0123abc; 2026-01-01 00:00 UTC",
    }
    md = report.budget_markdown(result, "make bench")
    assert "Machine: the run's machine; commit 0123abc; 2026-01-01 00:00 UTC" in md
