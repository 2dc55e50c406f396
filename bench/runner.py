"""Runs a scenario: the fake upstream, each server in turn, the load, the accounting.

Layout of a run (two cores): core 0 runs the server under test and nothing else
of ours; core 1 runs the fake upstream, the load generator and this harness
(``--no-pin`` lets the kernel place them). The server's CPU time is read from
its own process accounting (psutil, user+system, children included) just before
and just after the load; its RSS is sampled every 100 ms.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench import procs
from bench.loadgen import PREFIX
from bench.targets import TARGETS, Target

PY = procs.PYTHON
ALL_CPUS = tuple(sorted(os.sched_getaffinity(0)))


@dataclass
class Scenario:
    name: str
    conversations: int
    turns: int
    deltas: int
    pace: float
    stagger: float | None = None  # None: spread the starts over one reply
    think: float = 0.0
    turn_timeout: float = 60.0

    @property
    def reply_seconds(self) -> float:
        return self.deltas * self.pace

    def spread(self) -> float:
        return self.reply_seconds if self.stagger is None else self.stagger

    def ideal_wall(self, conversations: int) -> float:
        """The load's duration against a server with no cost: stagger, then back-to-back
        replies, each taking one pace to the first delta and (deltas - 1) paces after."""
        stagger = self.spread() * (conversations - 1) / conversations if conversations > 1 else 0
        return stagger + self.turns * self.deltas * self.pace


@dataclass
class Options:
    run_dir: Path
    pin: bool = True
    server_cpus: tuple[int, ...] = (0,)
    load_cpus: tuple[int, ...] = (1,)
    warmup: int = 4  # conversations x 1 turn before measuring, per server start
    profile: str | None = None  # "py-spy" or "pyinstrument"
    profile_targets: tuple[str, ...] = ()
    profile_dir: Path = procs.ROOT / "bench" / "profiles"
    log: Callable[[str], None] = print
    extra_env: dict[str, str] = field(default_factory=dict)
    nice: int = 0  # scheduling priority of every process of ours (negative: ahead of others)
    quiet_cores: float = 0.3  # before each load, wait until other work is under this ...
    quiet_wait: float = 30.0  # ... for at most this many seconds

    def cpus(self, role: str, workers: int = 1) -> tuple[int, ...] | None:
        """Where a role runs: one server process gets core 0; a server of several worker
        processes gets every core (the load side stays on its own)."""
        if not self.pin:
            return None
        if role == "server":
            return self.server_cpus if workers == 1 else ALL_CPUS
        return self.load_cpus


class Upstream:
    """The fake upstream for one scenario, in its own process."""

    def __init__(self, opts: Options, scenario: Scenario):
        self.opts = opts
        self.scenario = scenario
        self.proc: subprocess.Popen | None = None
        self.port = 0

    def __enter__(self) -> Upstream:
        s = self.scenario
        argv = [
            PY,
            "-m",
            "bench.upstream",
            "--port",
            "0",
            "--deltas",
            str(s.deltas),
            "--pace",
            str(s.pace),
        ]
        self.proc = procs.spawn(
            argv,
            self.opts.run_dir / f"upstream-{s.name}.log",
            cpus=self.opts.cpus("load"),
            stdout=subprocess.PIPE,
            nice=self.opts.nice,
        )
        self.port = int(procs.read_ready_line(self.proc))
        return self

    def __exit__(self, *exc) -> None:
        procs.stop(self.proc)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stats(self) -> dict:
        status, body = procs.http_call(self.port, "GET", "/stats")
        return json.loads(body)


WORKER_READY = "Application startup complete"  # uvicorn logs it once per worker process


class Server:
    """One target server (``workers`` processes), with a fresh HOME, pointed at the upstream."""

    def __init__(
        self, opts: Options, target: Target, upstream: Upstream, tag: str, workers: int = 1
    ):
        self.opts = opts
        self.target = target
        self.upstream = upstream
        self.tag = tag
        self.workers = workers
        self.port = procs.free_port()
        self.home = Path(tempfile.mkdtemp(prefix=f"bench-home-{target.name}-"))
        self.proc: subprocess.Popen | None = None
        self.startup = 0.0
        self.profile_path: Path | None = None

    def argv(self) -> list[str]:
        argv = self.target.command(self.port, self.workers)
        if self.opts.profile == "pyinstrument" and self.target.name in self.opts.profile_targets:
            self.opts.profile_dir.mkdir(parents=True, exist_ok=True)
            self.profile_path = self.opts.profile_dir / f"{self.target.name}.html"
            head = [PY, "-m", "pyinstrument", "-r", "html", "-o", str(self.profile_path)]
            rest = argv[1:] if argv[0] == PY else argv  # "-m uvicorn ..." or a console script
            argv = head + rest
        return argv

    def __enter__(self) -> Server:
        env = {
            "OPENAI_API_KEY": "bench",
            "OPENAI_BASE_URL": f"http://127.0.0.1:{self.upstream.port}/v1",
            "HOME": str(self.home),
            **self.target.env,
            **self.opts.extra_env,
        }
        log = self.opts.run_dir / f"server-{self.target.name}-{self.tag}.log"
        self.proc = procs.spawn(
            self.argv(),
            log,
            env=env,
            cpus=self.opts.cpus("server", self.workers),
            nice=self.opts.nice,
            cwd=self.target.cwd,
        )
        try:
            self.startup = procs.wait_http(self.proc, self.port, "POST", self.target.create_path)
            if self.workers > 1:
                # One answer says one worker is up; the load must meet all of them.
                self.startup += procs.wait_log(self.proc, log, WORKER_READY, self.workers)
        except Exception:
            procs.stop(self.proc)
            raise
        return self

    def __exit__(self, *exc) -> None:
        procs.stop(self.proc, grace=30.0 if self.profile_path else 10.0)
        shutil.rmtree(self.home, ignore_errors=True)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def protocol(self) -> str:
        return self.target.protocol


def run_loadgen(
    opts: Options,
    port: int,
    scenario: Scenario,
    app_prefix: str,
    conversations: int | None = None,
    turns: int | None = None,
    protocol: str = "burr-ui",
) -> dict:
    app_prefix = app_prefix.replace("@", "-")  # ``ours@<commit>``: ids allow no "@"
    out = opts.run_dir / f"load-{app_prefix}.json"
    n = scenario.conversations if conversations is None else conversations
    t = scenario.turns if turns is None else turns
    argv = [
        PY,
        "-m",
        "bench.loadgen",
        "--port",
        str(port),
        "--prefix",
        PREFIX,
        "--app-prefix",
        app_prefix,
        "--conversations",
        str(n),
        "--turns",
        str(t),
        "--deltas",
        str(scenario.deltas),
        "--stagger",
        str(scenario.spread() if n > 1 else 0),
        "--think",
        str(scenario.think),
        "--turn-timeout",
        str(scenario.turn_timeout),
        "--protocol",
        protocol,
        "--out",
        str(out),
    ]
    proc = procs.spawn(argv, opts.run_dir / "loadgen.log", cpus=opts.cpus("load"), nice=opts.nice)
    limit = scenario.spread() + t * (scenario.turn_timeout + 5) + 60
    try:
        proc.wait(limit)
    except subprocess.TimeoutExpired:
        procs.stop(proc)
        raise RuntimeError(f"load generator did not finish in {limit:.0f}s") from None
    if proc.returncode != 0:
        raise RuntimeError(
            f"load generator exited {proc.returncode}; see {opts.run_dir}/loadgen.log"
        )
    return json.loads(out.read_text())


def classifier_rtt(opts: Options, upstream: Upstream) -> dict:
    """One classifier round trip through the SDK, from the server's core, upstream idle."""
    out = opts.run_dir / "rtt.json"
    with open(out, "wb") as stdout:
        proc = procs.spawn(
            [PY, "-m", "bench.rtt", "--port", str(upstream.port)],
            opts.run_dir / "rtt.log",
            cpus=opts.cpus("server"),
            nice=opts.nice,
            stdout=stdout,
        )
    try:
        proc.wait(120)
    except subprocess.TimeoutExpired:
        procs.stop(proc)
    if proc.returncode != 0:
        raise RuntimeError(f"bench.rtt failed; see {opts.run_dir / 'rtt.log'}")
    return json.loads(out.read_text())


class PySpy:
    """``py-spy record --pid`` attached for the duration of one load."""

    def __init__(self, opts: Options, pid: int, path: Path, fmt: str):
        opts.profile_dir.mkdir(parents=True, exist_ok=True)
        self.path = path
        argv = [
            "py-spy",
            "record",
            "--pid",
            str(pid),
            "-o",
            str(path),
            "--format",
            fmt,
            "--rate",
            "200",
            "--gil",
        ]
        exe = Path(PY).parent / "py-spy"
        argv[0] = str(exe) if exe.exists() else "py-spy"
        self.proc = procs.spawn(argv, opts.run_dir / "py-spy.log", cpus=opts.cpus("load"))
        time.sleep(1.0)  # let it attach

    def finish(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            procs.stop(self.proc)


def measure(
    opts: Options,
    server: Server,
    upstream: Upstream,
    scenario: Scenario,
    app_prefix: str,
    conversations: int | None = None,
    spy: tuple[Path, str] | None = None,
) -> dict:
    """Run one load against a warm server and account for it."""
    n = scenario.conversations if conversations is None else conversations
    waited, busy_before = procs.wait_quiet(opts.quiet_cores, opts.quiet_wait)
    if busy_before >= opts.quiet_cores:
        opts.log(
            f"    (machine still busy: {busy_before:.2f} cores of other work after {waited:.0f}s)"
        )
    profiler = PySpy(opts, server.pid, *spy) if spy else None
    up0 = upstream.stats()
    up_cpu0 = procs.cpu_seconds(upstream.pid)
    rss0 = procs.rss_bytes(server.pid)
    sampler = procs.RssSampler(server.pid)
    sampler.start()
    machine0 = procs.machine_times()
    own0 = procs.own_times()
    split0 = procs.cpu_split(server.pid)
    cpu0 = sum(split0)
    t0 = time.perf_counter()
    try:
        load = run_loadgen(
            opts, server.port, scenario, app_prefix, conversations=n, protocol=server.protocol
        )
    finally:
        wall = time.perf_counter() - t0
        split1 = procs.cpu_split(server.pid)
        cpu1 = sum(split1)
        up_cpu1 = procs.cpu_seconds(upstream.pid)
        machine1 = procs.machine_times()
        own1 = procs.own_times()
        peak = sampler.stop()
        if profiler:
            profiler.finish()
    up1 = upstream.stats()
    server_cpu = cpu1 - cpu0
    # CPU that none of our processes used (other sessions on this shared machine): noise.
    busy = machine1["busy"] - machine0["busy"]
    ours = server_cpu + (up_cpu1 - up_cpu0) + (own1 - own0)
    wall_cores = machine1["total"] - machine0["total"]
    errors = sum(load["errors"].values())
    turns = load["turns_ok"]
    return {
        "target": server.target.name,
        "workers": server.workers,
        "conversations": n,
        "turns_planned": load["turns_planned"],
        "turns_ok": turns,
        "errors": errors,
        "error_kinds": load["errors"],
        "deltas": load["deltas"],
        "empty_deltas": load["empty_deltas"],
        "end_frames": load["end_frames"],
        "ttfd_p50_ms": load["ttfd_p50"] * 1e3,
        "ttfd_p99_ms": load["ttfd_p99"] * 1e3,
        "gap_p50_ms": load["gap_p50"] * 1e3,
        "gap_p99_ms": load["gap_p99"] * 1e3,
        "gap_max_ms": load["gap_max"] * 1e3,
        "tail_p50_ms": load["tail_p50"] * 1e3,
        "tail_p99_ms": load["tail_p99"] * 1e3,
        "turn_p50_ms": load["turn_p50"] * 1e3,
        "mean_open_streams": load["mean_open_streams"],
        # how close the conversations came to the pace of an infinitely fast server
        "pace_kept": scenario.ideal_wall(n) / load["wall"] if load["wall"] else 0.0,
        "server_cpu_s": server_cpu,
        # the kernel's share (system calls: sockets, thread wake-ups, fsync) of server_cpu_s
        "server_system_s": split1[1] - split0[1],
        "cpu_per_delta_us": server_cpu / load["deltas"] * 1e6 if load["deltas"] else None,
        # A turn's whole cost (its conversation's create call shared among its turns):
        # with short replies, what a turn costs besides its deltas.
        "cpu_per_turn_ms": server_cpu / turns * 1e3 if turns else None,
        "server_cores": server_cpu / wall,
        "rss_base_mb": rss0 / 2**20,
        "rss_peak_mb": max(peak, rss0) / 2**20,
        "rss_per_stream_kb": (max(peak, rss0) - rss0) / max(1, load["max_open_streams"]) / 1024,
        "upstream_requests": up1["requests"] - up0["requests"],
        "upstream_streams": up1["streams_started"] - up0["streams_started"],
        "upstream_classify": up1["classify"] - up0["classify"],
        "upstream_connections": up1["connections"] - up0["connections"],
        "upstream_open_connections_after": up1["open_connections"],
        "upstream_late_ticks": up1["late_ticks"] - up0["late_ticks"],
        "upstream_ticks": up1["ticks"] - up0["ticks"],
        "upstream_cores": (up_cpu1 - up_cpu0) / wall,
        "loadgen_cores": load["cpu"] / load["wall"] if load["wall"] else 0.0,
        "loadgen_lag_p99_ms": load["loop_lag_p99"] * 1e3,
        "other_cores": max(0.0, busy - ours) / wall,
        # on the server's own core (when pinned): what other work took from it
        "other_on_server_core": _other_on(opts.server_cpus, machine0, machine1, server_cpu, wall)
        if opts.pin and server.workers == 1
        else None,
        "other_cores_before": busy_before,
        "quiet_wait_s": waited,
        "steal": (machine1["steal"] - machine0["steal"]) / wall_cores if wall_cores else 0.0,
        "loadgen_lag_max_ms": load["loop_lag_max"] * 1e3,
        "wall_s": wall,
        "startup_s": server.startup,
        "ttfd_all_ms": [x * 1e3 for x in load["ttfd"]],
    }


def _other_on(cpus, m0: dict, m1: dict, server_cpu: float, wall: float) -> float:
    busy = sum(m1.get(f"busy{c}", 0.0) - m0.get(f"busy{c}", 0.0) for c in cpus)
    return max(0.0, busy - server_cpu) / wall


def disturbed(r: dict, gap_limit_ms: float) -> bool:
    """A run the shared machine disturbed: other work took a real share of the server's
    core (or of the machine, when the server is not on one core), or our load side stalled."""
    other = r.get("other_on_server_core")
    if other is None:
        other = r["other_cores"] / 2
    return other > 0.1 or r["loadgen_lag_max_ms"] > gap_limit_ms / 2


def warm(opts: Options, server: Server, scenario: Scenario, tag: str) -> None:
    if opts.warmup > 0:
        run_loadgen(
            opts,
            server.port,
            scenario,
            f"warm-{tag}",
            conversations=opts.warmup,
            turns=1,
            protocol=server.protocol,
        )


def budget(opts: Options, scenario: Scenario, targets: list[str], repeats: int) -> dict:
    """The budget scenario: every target, ``repeats`` times, order rotated each repetition."""
    runs: list[dict] = []
    rtts: list[dict] = []
    with Upstream(opts, scenario) as upstream:
        for rep in range(repeats):
            rtts.append(classifier_rtt(opts, upstream))
            opts.log(
                f"rep {rep + 1}/{repeats}: classifier round trip "
                f"{rtts[-1]['classifier_rtt_p50'] * 1e3:.1f} ms"
            )
            k = rep % len(targets)
            for name in targets[k:] + targets[:k]:
                tag = f"r{rep}"
                with Server(opts, TARGETS[name], upstream, tag) as server:
                    warm(opts, server, scenario, f"{name}-{tag}")
                    r = measure(opts, server, upstream, scenario, f"{name}-{tag}")
                r["rep"] = rep
                runs.append(r)
                opts.log(
                    f"  {name:7} ttfd p50 {r['ttfd_p50_ms']:7.1f} ms  gap p99 "
                    f"{r['gap_p99_ms']:6.1f} ms  cpu/delta {r['cpu_per_delta_us'] or 0:7.1f} us  "
                    f"errors {r['errors']}  others {r['other_cores']:.2f} cores  "
                    f"(startup {r['startup_s']:.1f}s)"
                )
    return {
        "scenario": scenario.__dict__,
        "runs": runs,
        "rtt": rtts,
        "targets": targets,
        "repeats": repeats,
        "warmup": opts.warmup,
        "pin": opts.pin,
        "nice": opts.nice,
    }


def profile(opts: Options, scenario: Scenario, targets: list[str]) -> dict:
    """The budget load once per target with a profiler attached (numbers not comparable)."""
    out: dict[str, list[str]] = {}
    with Upstream(opts, scenario) as upstream:
        for name in targets:
            files: list[str] = []
            with Server(opts, TARGETS[name], upstream, "prof") as server:
                warm(opts, server, scenario, f"{name}-prof")
                if opts.profile == "py-spy":
                    for fmt, ext in (("flamegraph", "svg"), ("raw", "txt")):
                        path = opts.profile_dir / f"{name}.{ext}"
                        measure(
                            opts, server, upstream, scenario, f"{name}-prof-{ext}", spy=(path, fmt)
                        )
                        files.append(str(path))
                else:
                    measure(opts, server, upstream, scenario, f"{name}-prof")
            if server.profile_path:
                files.append(str(server.profile_path))
            out[name] = files
            opts.log(f"  {name}: {', '.join(files)}")
    return out


def capacity(
    opts: Options,
    scenario: Scenario,
    targets: list[str],
    levels: list[int],
    gap_limit_ms: float,
    workers: tuple[int, ...] = (1,),
) -> dict:
    """The ramp: each target on one server, level after level, until it breaks (p99 gap
    over the limit, errors over 1 %, or under half the offered pace kept). A target that
    takes ``--workers`` runs the ramp once per entry of ``workers``; the others once.
    """
    runs: list[dict] = []
    with Upstream(opts, scenario) as upstream:
        for name in targets:
            counts = workers if TARGETS[name].has_workers else (1,)
            for n in counts:
                runs += _ramp(opts, upstream, scenario, name, n, levels, gap_limit_ms)
    return {
        "scenario": scenario.__dict__,
        "runs": runs,
        "targets": targets,
        "workers": list(workers),
        "levels": levels,
        "gap_limit_ms": gap_limit_ms,
        "pin": opts.pin,
        "nice": opts.nice,
    }


def _ramp(
    opts: Options,
    upstream: Upstream,
    scenario: Scenario,
    name: str,
    workers: int,
    levels: list[int],
    gap_limit_ms: float,
) -> list[dict]:
    """One server through the levels. A level over the limit is run again (up to 3
    attempts) when the run was disturbed (see ``disturbed``); the last attempt counts."""
    runs: list[dict] = []
    tag = "cap" if workers == 1 else f"cap-w{workers}"
    label = name if workers == 1 else f"{name}x{workers}"
    with Server(opts, TARGETS[name], upstream, tag, workers=workers) as server:
        warm(opts, server, scenario, f"{name}-{tag}")
        for n in levels:
            for attempt in range(1, 4):
                r = measure(
                    opts, server, upstream, scenario, f"{name}-{tag}{n}-{attempt}", conversations=n
                )
                r["level"], r["attempt"] = n, attempt
                bad = r["gap_p99_ms"] >= gap_limit_ms or r["errors"] > 0.01 * r["turns_planned"]
                retry = bad and disturbed(r, gap_limit_ms) and attempt < 3
                opts.log(
                    f"  {label:8} {n:4} streams: gap p99 {r['gap_p99_ms']:7.1f} ms  "
                    f"ttfd p50 {r['ttfd_p50_ms']:7.1f} ms  "
                    f"server {r['server_cores']:.2f} cores  "
                    f"upstream {r['upstream_cores']:.2f}  "
                    f"loadgen {r['loadgen_cores']:.2f}  others {r['other_cores']:.2f}  "
                    f"errors {r['errors']}{'  <- over the limit' if bad else ''}"
                    f"{'  (disturbed: again)' if retry else ''}"
                )
                time.sleep(1.0)
                if not retry:
                    break
            runs.append(r)
            if bad:
                break
            if r["pace_kept"] < 0.5:
                opts.log(f"  {label}: carried under half the offered pace; ramp ends")
                break
    return runs
