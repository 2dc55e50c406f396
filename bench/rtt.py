"""One classifier round trip against the fake upstream, as a server pays it.

Times ``--calls`` sequential non-streaming ``chat.completions.create`` calls through
one shared ``openai.AsyncOpenAI`` client (the classifier call of the Burr example
and of our server), and the SDK's time to the first content delta of a streamed
call, after a few warm-up calls. Prints a JSON summary.

Run: ``python -m bench.rtt --port UPSTREAM_PORT``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import openai
import orjson

from bench.loadgen import percentile
from bench.upstream import run_fast

MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant"},
    {"role": "user", "content": "Respond with a single word: the mode of this prompt."},
]


async def measure(port: int, calls: int) -> dict:
    client = openai.AsyncOpenAI(api_key="bench", base_url=f"http://127.0.0.1:{port}/v1")
    classify: list[float] = []
    first: list[float] = []
    for i in range(calls + 3):
        t0 = time.perf_counter()
        r = await client.chat.completions.create(model="bench", messages=MESSAGES)
        dt = time.perf_counter() - t0
        assert r.choices[0].message.content
        if i >= 3:
            classify.append(dt)
    for i in range(min(calls, 20) + 2):
        t0 = time.perf_counter()
        stream = await client.chat.completions.create(model="bench", messages=MESSAGES, stream=True)
        got = None
        async for chunk in stream:
            if got is None and chunk.choices and chunk.choices[0].delta.content:
                got = time.perf_counter() - t0
        if i >= 2 and got is not None:
            first.append(got)
    await client.close()
    return {
        "classifier_rtt_p50": statistics.median(classify),
        "classifier_rtt_p99": percentile(classify, 99),
        "sdk_first_delta_p50": statistics.median(first) if first else 0.0,
        "calls": len(classify),
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.rtt")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--calls", type=int, default=30)
    a = p.parse_args(argv)
    sys.stdout.buffer.write(orjson.dumps(run_fast(measure(a.port, a.calls))) + b"\n")


if __name__ == "__main__":
    main()
