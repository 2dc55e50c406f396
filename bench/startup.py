"""How long ``chatbot serve`` takes from exec to answering ``/healthz``.

Starts the server ``--runs`` times, each in a fresh temporary HOME with the default
configuration (offline model, SQLite, Burr tracking and Burr's UI on), and records the
wall time from ``exec`` to the first 200 from ``/healthz`` and the CPU time the process
had used by then. CPU time moves less than wall time on a shared machine.

``--source DIR`` runs another checkout's code with this environment (it is put first on
``PYTHONPATH``), so two commits can be compared in alternation, run by run:

    git archive main | tar -x -C /tmp/main-src
    .venv/bin/python bench/startup.py --source /tmp/main-src --source .
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_once(source: Path, timeout: float = 120) -> tuple[float, float]:
    """(wall seconds, CPU seconds) from exec to the first answer of /healthz."""
    with tempfile.TemporaryDirectory(prefix="chatbot-startup-") as home:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CHATBOT_", "OPENAI_"))}
        env.update(HOME=home, PYTHONPATH=str(source.resolve()))
        port = _free_port()
        command = [sys.executable, "-m", "server.cli", "serve", "--port", str(port)]
        started = time.perf_counter()
        process = subprocess.Popen(
            [*command, "--log-level", "warning"],
            cwd=home,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = started + timeout
            while time.perf_counter() < deadline:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                        wall = time.perf_counter() - started
                        cpu = psutil.Process(process.pid).cpu_times()
                        return wall, cpu.user + cpu.system
                except httpx.HTTPError:
                    pass
                if process.poll() is not None:
                    raise RuntimeError(f"server exited with {process.returncode}")
                time.sleep(0.01)
            raise RuntimeError("server did not answer /healthz")
        finally:
            process.terminate()
            process.wait(30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument(
        "--source",
        type=Path,
        action="append",
        help="checkout whose code to start (repeatable; default: this one)",
    )
    args = parser.parse_args()
    sources = args.source or [Path(__file__).resolve().parents[1]]
    results: dict[Path, list[tuple[float, float]]] = {source: [] for source in sources}
    for _ in range(args.runs):
        for source in sources:  # alternated, so machine load hits every source alike
            results[source].append(start_once(source))
    for source, runs in results.items():
        walls = [wall for wall, _ in runs]
        cpus = [cpu for _, cpu in runs]
        print(
            f"{source}: exec to /healthz median {statistics.median(walls):.2f} s wall "
            f"(min {min(walls):.2f}, max {max(walls):.2f}), "
            f"{statistics.median(cpus):.2f} s CPU, {len(runs)} runs"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
