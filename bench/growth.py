"""How the server's CPU per turn, and Burr tracking bytes per turn, grow with a conversation.

Starts a real ``chatbot serve`` process (in a temporary HOME) against a fast fake
OpenAI-compatible upstream that runs in this process, so the upstream's work is never
counted, and warms it up on throwaway conversations. Then it drives ``--conversations``
long conversations in lockstep for ``--turns`` turns each and, right before each of
those turns, the first turn of a brand-new conversation. A turn's cost is the server
process's CPU time (user + system, all threads, via psutil) from the request to the end
of its response plus ``--settle-ms`` for the work it leaves to background threads.

Measuring turn 1 alongside turn N, again and again, makes the ratio robust on a shared
machine: whatever else is running inflates both alike. psutil reads CPU time in clock
ticks (10 ms), so costs are averaged over windows of ``--window`` turn numbers.

With tracking on, the bytes each turn added to its conversation's Burr tracking log are
read from the logs once the server has stopped (a turn's lines run from the begin entry
of its ``prompt`` step to the next one), next to the one-time files (``graph.json``,
``metadata.json``) a conversation's first turn also writes.

    .venv/bin/python bench/growth.py                       # SQLite, tracking on
    .venv/bin/python bench/growth.py --tracking off        # what Burr tracking costs
    .venv/bin/python bench/growth.py --database-url postgresql://user:pw@host/db

Self-contained: uses only the installed ``chatbot`` command, httpx, psutil, starlette and
uvicorn; no network beyond loopback.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

CHATBOT = Path(sys.executable).with_name("chatbot")
REPLY = (
    "A state machine keeps the conversation readable: every prompt goes through the same "
    "graph, each step reads and writes named fields, and the reply streams back token by "
    "token while the state is stored for the next turn."
).split(" ")


# --- the fake upstream ---------------------------------------------------------------------
def _chunk(content: str | None, finish: str | None = None) -> bytes:
    delta = {} if content is None else {"content": content}
    body = {
        "id": "chatcmpl-growth",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "fake",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(body).encode() + b"\n\n"


async def _completions(request: Request):
    body = await request.json()
    if not body.get("stream"):
        message = {"role": "assistant", "content": "answer_question"}
        return JSONResponse(
            {
                "id": "chatcmpl-growth",
                "object": "chat.completion",
                "created": 0,
                "model": "fake",
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }
        )

    async def stream():
        for index, word in enumerate(REPLY):
            yield _chunk(word if index == 0 else " " + word)
        yield _chunk(None, "stop")
        yield b"data: [DONE]\n\n"

    return StreamingResponse(stream(), media_type="text/event-stream")


class FakeUpstream:
    def __init__(self) -> None:
        app = Starlette(routes=[Route("/v1/chat/completions", _completions, methods=["POST"])])
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/v1"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


# --- the server under test ---------------------------------------------------------------
class Server:
    def __init__(self, home: Path, env: dict[str, str]) -> None:
        self.log_path = home / "server.log"
        self.process = subprocess.Popen(
            [str(CHATBOT), "serve", "--host", "127.0.0.1", "--port", "0", "--log-level", "warning"],
            cwd=home,
            env=env,
            stdout=self.log_path.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.api = ""

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited:\n{self.log_path.read_text()}")
            # --log-level warning hides uvicorn's line with the port; read it from /proc.
            process = psutil.Process(self.process.pid)
            listing = getattr(process, "net_connections", None) or process.connections
            ports = [c.laddr.port for c in listing("tcp") if c.status == psutil.CONN_LISTEN]
            if ports:
                base = f"http://127.0.0.1:{ports[0]}"
                try:
                    if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                        self.api = f"{base}/api/v0/streaming_chatbot"
                        return
                except httpx.HTTPError:
                    pass
            time.sleep(0.05)
        raise RuntimeError("server did not start")

    def cpu_seconds(self) -> float:
        times = psutil.Process(self.process.pid).cpu_times()
        return times.user + times.system

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()


def _turn(client: httpx.Client, api: str, app_id: str, prompt: str) -> None:
    with client.stream(
        "POST", f"{api}/response/growth/{app_id}", json={"prompt": prompt}
    ) as response:
        response.raise_for_status()
        tail = b""
        for chunk in response.iter_bytes():
            tail = (tail + chunk)[-4096:]
    if b'"type":"end"' not in tail:
        raise RuntimeError(f"turn of {app_id} did not end well: {tail[-300:]!r}")


def log_bytes_per_turn(log: Path) -> list[int]:
    """Bytes of a Burr tracking log written by each turn, in order."""
    turns: list[int] = []
    with log.open("rb") as lines:
        for line in lines:
            entry = json.loads(line)
            if entry["type"] == "begin_entry" and entry["action"] == "prompt":
                turns.append(0)
            if turns:
                turns[-1] += len(line)
    return turns


def run(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="chatbot-growth-") as tmp, FakeUpstream() as upstream:
        home = Path(tmp)
        tracking_dir = home / "tracking"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CHATBOT_", "OPENAI_"))}
        env.update(
            HOME=str(home),
            OPENAI_API_KEY="growth-bench",
            OPENAI_BASE_URL=upstream,
            CHATBOT_TRACKING_ENABLED="true" if args.tracking == "on" else "false",
            CHATBOT_TRACKING_DIR=str(tracking_dir),
            CHATBOT_CANNED_PACE_MS="0",
        )
        if args.database_url:
            env["CHATBOT_DATABASE_URL"] = args.database_url
        server = Server(home, env)
        try:
            server.wait_ready()
            run_id = f"{int(time.time())}"
            long_costs: list[list[float]] = []
            fresh_costs: list[list[float]] = []
            with httpx.Client(timeout=60) as client:
                for n in range(args.warmup):  # imports, caches, first connections
                    _turn(client, server.api, f"warmup-{run_id}-{n % 3}", f"warm-up {n}?")

                def cost(app_id: str, prompt: str) -> float:
                    before = server.cpu_seconds()
                    _turn(client, server.api, app_id, prompt)
                    # Let work the turn left to background threads (tracking) finish, so
                    # it is charged to this turn and not to the next one.
                    time.sleep(args.settle_ms / 1000)
                    return server.cpu_seconds() - before

                longs = [f"long-{run_id}-{n}" for n in range(args.conversations)]
                for turn in range(args.turns):
                    long_row, fresh_row = [], []
                    for n, app_id in enumerate(longs):
                        # A first turn of a new conversation right next to each long turn, so
                        # both see the same machine (other load, frequency, caches).
                        fresh = f"fresh-{run_id}-{turn}-{n}"
                        fresh_row.append(cost(fresh, f"Question 0 about {fresh}?"))
                        long_row.append(cost(app_id, f"Question {turn} about {app_id}?"))
                    long_costs.append(long_row)
                    fresh_costs.append(fresh_row)
        finally:
            server.stop()  # flushes the tracking writer
        long_bytes: list[list[int]] = []
        fresh_bytes: list[list[int]] = []
        one_time_bytes = 0
        if args.tracking == "on":
            project = tracking_dir / "growth"
            per_long = [log_bytes_per_turn(project / app_id / "log.jsonl") for app_id in longs]
            long_bytes = [list(row) for row in zip(*per_long, strict=True)]
            fresh_bytes = [
                [
                    sum(log_bytes_per_turn(project / f"fresh-{run_id}-{turn}-{n}" / "log.jsonl"))
                    for n in range(args.conversations)
                ]
                for turn in range(args.turns)
            ]
            one_time_bytes = sum(
                (project / longs[0] / name).stat().st_size
                for name in ("graph.json", "metadata.json")
            )
    windows = []
    for start in range(0, args.turns, args.window):
        longs_ = [c for row in long_costs[start : start + args.window] for c in row]
        fresh_ = [c for row in fresh_costs[start : start + args.window] for c in row]
        window = {
            "turns": f"{start + 1}-{min(start + args.window, args.turns)}",
            "cpu_ms_per_turn": round(1000 * statistics.fmean(longs_), 2),
            "turn1_cpu_ms_same_time": round(1000 * statistics.fmean(fresh_), 2),
            "ratio_to_turn1": round(statistics.fmean(longs_) / statistics.fmean(fresh_), 2),
        }
        if long_bytes:
            long_b = [b for row in long_bytes[start : start + args.window] for b in row]
            fresh_b = [b for row in fresh_bytes[start : start + args.window] for b in row]
            window["log_bytes_per_turn"] = round(statistics.fmean(long_b))
            window["turn1_log_bytes_same_time"] = round(statistics.fmean(fresh_b))
            window["bytes_ratio_to_turn1"] = round(
                statistics.fmean(long_b) / statistics.fmean(fresh_b), 2
            )
        windows.append(window)
    return {
        "database": "postgresql" if args.database_url else "sqlite",
        "tracking": args.tracking,
        "turns": args.turns,
        "conversations": args.conversations,
        "window": args.window,
        "windows": windows,
        "ratio_last_window_to_turn1": windows[-1]["ratio_to_turn1"],
        # Per conversation, once: Burr's graph.json and metadata.json (tracking on).
        "first_turn_one_time_bytes": one_time_bytes,
        "log_bytes_by_turn_first_conversation": [row[0] for row in long_bytes],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--conversations", type=int, default=4)
    parser.add_argument("--window", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--settle-ms", type=float, default=30.0)
    parser.add_argument("--tracking", choices=["on", "off"], default="on")
    parser.add_argument("--database-url", help="postgresql://… (default: SQLite in a temp HOME)")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args()
    result = run(args)
    print(
        f"database={result['database']} tracking={result['tracking']} "
        f"conversations={result['conversations']}: mean server CPU (and tracking log bytes) "
        "per turn, and per first turn of a new conversation measured alongside"
    )
    tracked = "log_bytes_per_turn" in result["windows"][0]
    header = f"  {'turns':>9}  {'long conv':>10}  {'turn 1':>8}  ratio"
    print(header + ("  | log bytes  turn 1   ratio" if tracked else ""))
    for w in result["windows"]:
        line = (
            f"  {w['turns']:>9}  {w['cpu_ms_per_turn']:7.2f} ms  "
            f"{w['turn1_cpu_ms_same_time']:5.2f} ms  {w['ratio_to_turn1']:.2f}"
        )
        if tracked:
            line += (
                f"  | {w['log_bytes_per_turn']:9d}  {w['turn1_log_bytes_same_time']:6d}"
                f"  {w['bytes_ratio_to_turn1']:5.2f}"
            )
        print(line)
    last = result["windows"][-1]
    print(f"turns {last['turns']} cost {last['ratio_to_turn1']}x turn 1 in CPU")
    if tracked:
        print(
            f"turns {last['turns']} wrote {last['bytes_ratio_to_turn1']}x turn 1's tracking log "
            f"bytes; a first turn also writes {result['first_turn_one_time_bytes']} bytes of "
            "one-time files"
        )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
