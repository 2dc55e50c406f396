"""Starting, watching and stopping the processes of a benchmark run.

Every process the harness starts is its own OS process, optionally pinned to a
set of cores, with its output in a log file; it is stopped by its pid (SIGINT,
then SIGTERM, then SIGKILL), never by name. CPU time and RSS come from the
kernel's accounting of the process and its children (psutil).
"""

from __future__ import annotations

import http.client
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _setup(cpus: Sequence[int] | None, nice: int):
    cpu_set = set(cpus or ())

    def fn() -> None:  # runs in the child before exec
        # A harness started in the background has SIGINT ignored; the child must not inherit
        # that, since SIGINT is how we ask servers to stop gracefully.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        if cpu_set:
            os.sched_setaffinity(0, cpu_set)
        if nice:
            os.setpriority(os.PRIO_PROCESS, 0, nice)
            # With autogroup scheduling (the default on desktop-style kernels) CPU is shared
            # between sessions first, so a process's own niceness counts only inside its
            # session. The child is a new session (start_new_session) whose group gets the
            # niceness too; where that is not possible, the process niceness stays.
            try:
                with open("/proc/self/autogroup", "w") as f:
                    f.write(str(nice))
            except OSError:
                pass

    return fn


def spawn(
    argv: Sequence[str],
    log: Path,
    env: dict[str, str] | None = None,
    cpus: Sequence[int] | None = None,
    stdout=None,
    nice: int = 0,
    cwd: Path | None = None,
) -> subprocess.Popen:
    """Start ``argv`` in ``cwd`` (default: the repository root); stderr (and stdout unless
    given) go to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    logf = open(log, "ab")
    full_env = dict(os.environ)
    full_env.update(env or {})
    full_env.setdefault("PYTHONUNBUFFERED", "1")
    try:
        return subprocess.Popen(
            list(argv),
            cwd=cwd or ROOT,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=stdout if stdout is not None else logf,
            stderr=logf,
            preexec_fn=_setup(cpus, nice),
            start_new_session=bool(nice),
        )
    finally:
        logf.close()


def stop(proc: subprocess.Popen | None, grace: float = 10.0) -> None:
    """Stop one process we started: SIGINT (uvicorn's graceful stop), SIGTERM, SIGKILL."""
    if proc is None or proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGINT, grace), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        try:
            proc.send_signal(sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def read_ready_line(proc: subprocess.Popen, timeout: float = 30.0) -> str:
    """The ``READY <port>`` line a helper process prints on stdout once it listens."""
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline().decode()
        if line.startswith("READY"):
            return line.split()[1]
        if not line and proc.poll() is not None:
            break
    raise RuntimeError(f"process {proc.args!r} did not report READY")


def http_call(
    port: int, method: str, path: str, body: bytes = b"", timeout: float = 10.0
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"content-type": "application/json"} if body or method == "POST" else {}
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def wait_http(
    proc: subprocess.Popen, port: int, method: str, path: str, timeout: float = 120.0
) -> float:
    """Wait until ``method path`` answers below 500; return the seconds it took."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode} while starting")
        try:
            status, _ = http_call(port, method, path, timeout=5.0)
            if status < 500:
                return time.monotonic() - t0
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{proc.args!r} did not answer {method} {path} in {timeout:.0f}s")


def wait_log(
    proc: subprocess.Popen, log: Path, text: str, count: int, timeout: float = 120.0
) -> float:
    """Wait until ``text`` occurs ``count`` times in ``log``; return the seconds it took."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode} while starting")
        if log.read_text(errors="replace").count(text) >= count:
            return time.monotonic() - t0
        time.sleep(0.2)
    raise RuntimeError(f"{proc.args!r} did not log {text!r} {count} times in {timeout:.0f}s")


def _tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    try:
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return [root]


def cpu_split(pid: int) -> tuple[float, float]:
    """User and system CPU of a process, its live children and its reaped children."""
    user = system = 0.0
    for i, p in enumerate(_tree(pid)):
        try:
            t = p.cpu_times()
        except psutil.Error:
            continue
        user += t.user
        system += t.system
        if i == 0:
            user += t.children_user
            system += t.children_system
    return user, system


def cpu_seconds(pid: int) -> float:
    """User+system CPU of a process, its live children and its reaped children."""
    return sum(cpu_split(pid))


def rss_bytes(pid: int) -> int:
    total = 0
    for p in _tree(pid):
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def machine_times() -> dict[str, float]:
    """CPU seconds since boot: busy (all cores), steal, wall x cores, and busy per core."""

    def busy(t) -> float:
        return sum(t) - t.idle - getattr(t, "iowait", 0.0) - getattr(t, "steal", 0.0)

    t = psutil.cpu_times()
    out = {"busy": busy(t), "steal": getattr(t, "steal", 0.0), "total": sum(t)}
    for i, c in enumerate(psutil.cpu_times(percpu=True)):
        out[f"busy{i}"] = busy(c)
    return out


def wait_quiet(limit_cores: float, max_wait: float, window: float = 1.0) -> tuple[float, float]:
    """Wait until the machine's busy CPU over ``window`` is under ``limit_cores``.

    Between runs our own processes are idle, so what is busy is other work on this
    shared machine. Gives up after ``max_wait`` seconds. Returns (seconds waited,
    busy cores in the last window).
    """
    t0 = time.monotonic()
    while True:
        a = machine_times()
        time.sleep(window)
        b = machine_times()
        cores = (b["busy"] - a["busy"]) / window
        waited = time.monotonic() - t0
        if cores < limit_cores or waited >= max_wait:
            return waited, cores


def own_times() -> float:
    """CPU seconds of this process and of the children it has waited for."""
    s = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


class RssSampler(threading.Thread):
    """Peak RSS of a process tree, sampled every ``period`` seconds until stopped."""

    def __init__(self, pid: int, period: float = 0.1):
        super().__init__(daemon=True)
        self.pid = pid
        self.period = period
        self.peak = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                self.peak = max(self.peak, rss_bytes(self.pid))
            except psutil.Error:
                return
            self._stop_event.wait(self.period)

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        return self.peak
