"""``python -m bench``: the streaming-proxy benchmark (``make bench BENCH_ARGS=...``).

Modes:
  (default)        the budget scenario, repeated, servers interleaved; updates RESULTS.md
  --capacity       the ramp of concurrent streams at 30 deltas/s; updates RESULTS.md + plot
  --all            both
  --quick          a ~1 minute smoke run of both, small; writes only under bench/runs/
  --profile TOOL   the budget load once per --targets server under py-spy or pyinstrument;
                   writes bench/profiles/<target>.svg|.txt|.html

  --baseline-ref REF  also measure this server as it was at git REF (targets ours@<commit>,
                   ours-v1@<commit>, run from a temporary worktree of REF), in the same run:
                   before/after ratios of CPU per delta and per turn
  --short-replies N   after the budget scenario, the same load with N-delta replies, where a
                   turn's fixed cost dominates: CPU per turn (section "short" of RESULTS.md)

Everything runs on loopback: a fake OpenAI-compatible upstream, the servers
(each its own uvicorn process), and the load generator, each in its own process.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import sys
import time
from contextlib import ExitStack
from pathlib import Path

from bench import refs, report, runner
from bench.procs import ROOT
from bench.targets import BASELINES, OURS, TARGETS, TRACKING, at_ref, register


def _args(argv: list[str] | None):
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="small smoke run of both scenarios")
    mode.add_argument("--capacity", action="store_true", help="the capacity ramp only")
    mode.add_argument("--all", action="store_true", help="budget scenario, then capacity ramp")
    mode.add_argument(
        "--render",
        metavar="RUN_DIR",
        help="rewrite RESULTS.md (and the plot) from a run's saved budget/capacity JSON",
    )
    mode.add_argument(
        "--profile",
        choices=("py-spy", "pyinstrument"),
        help="profile --targets under the budget load",
    )
    p.add_argument(
        "--targets",
        default=None,
        help="comma-separated from floor,lean,naive,burr,ours,ours-v1 (default: all available)",
    )
    p.add_argument(
        "--baseline-ref",
        metavar="REF",
        help="also run ours (and ours-v1) as the code at this git ref: targets ours@<commit>",
    )
    g = p.add_argument_group("budget scenario")
    g.add_argument("--repeats", type=int, default=5)
    g.add_argument("--conversations", type=int, default=20)
    g.add_argument("--turns", type=int, default=5)
    g.add_argument("--deltas", type=int, default=50)
    g.add_argument("--pace", type=float, default=0.02, help="seconds per delta")
    g.add_argument(
        "--stagger",
        type=float,
        default=None,
        help="spread conversation starts over this many seconds (default: one reply; "
        "0 = all at once)",
    )
    g.add_argument(
        "--short-replies",
        type=int,
        metavar="N",
        default=None,
        help="then run the same load with N-delta replies (1 to 5): CPU per turn",
    )
    g.add_argument(
        "--short-turns",
        type=int,
        metavar="T",
        default=None,
        help="turns per conversation of the short-reply load (default: 4x --turns, so "
        "that its CPU, read in 10 ms ticks, covers enough turns to be steady)",
    )
    c = p.add_argument_group("capacity ramp")
    c.add_argument("--levels", default="10,25,50,75,100,150,200,250,300,350,400,450,500,600,800")
    c.add_argument("--cap-deltas", type=int, default=100)
    c.add_argument("--cap-rate", type=float, default=30.0, help="deltas per second per stream")
    c.add_argument("--cap-turns", type=int, default=3)
    c.add_argument("--gap-limit", type=float, default=250.0, help="p99 gap limit (ms)")
    c.add_argument(
        "--workers",
        default="1",
        help="comma-separated worker counts to ramp this server with, e.g. 1,2 "
        "(`chatbot serve --workers N`; above 1 its workers get every core)",
    )
    o = p.add_argument_group("harness")
    o.add_argument(
        "--no-pin",
        action="store_true",
        help="do not pin the server to core 0 and the load side to core 1",
    )
    o.add_argument("--warmup", type=int, default=4)
    o.add_argument(
        "--quiet-cores",
        type=float,
        default=0.3,
        help="before each load, wait until other work on the machine uses fewer cores than this",
    )
    o.add_argument("--quiet-wait", type=float, default=10.0, help="... for at most this long (s)")
    o.add_argument(
        "--nice",
        type=int,
        default=-10,
        help="run our processes at this niceness to shield them from other work on a shared "
        "machine (default -10 where permitted, else 0; the server keeps to one core)",
    )
    o.add_argument("--write", action="store_true", help="with --quick: update RESULTS.md anyway")
    o.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    return p.parse_args(argv)


def _targets(arg: str | None, log) -> list[str]:
    names = arg.split(",") if arg else [*BASELINES, *OURS, *TRACKING]
    out = []
    for n in names:
        if n not in TARGETS:
            raise SystemExit(f"unknown target {n!r}; choose from {', '.join(TARGETS)}")
        why = TARGETS[n].available()
        if why:
            if arg:
                raise SystemExit(f"target {n} unavailable: {why}")
            log(f"skipping {n}: {why}")
            continue
        out.append(n)
    return out


def _at_ref(names: list[str], commit: str, tree: Path, log) -> list[str]:
    """Each of ``names`` that is this server, also as the code at ``commit``, right after it."""
    out = []
    for name in names:
        out.append(name)
        if name in OURS:
            target = register(at_ref(TARGETS[name], commit, tree))
            why = target.available()
            if why:
                raise SystemExit(f"target {target.name} unavailable: {why}")
            out.append(target.name)
    if out == names:
        raise SystemExit("--baseline-ref needs ours or ours-v1 among the targets")
    log(f"baseline: commit {commit} checked out at {tree}")
    return out


def _stop_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so every server, upstream and load generator is stopped."""

    def handler(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def main(argv: list[str] | None = None) -> int:
    a = _args(argv)
    if a.render:
        return _render(Path(a.render))
    _stop_on_sigterm()
    command = "make bench" + (
        f" BENCH_ARGS={shlex.quote(' '.join(sys.argv[1:]))}" if sys.argv[1:] else ""
    )
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_dir = ROOT / "bench" / "runs" / stamp
    run_dir.mkdir(parents=True, exist_ok=True)

    def log(msg: str) -> None:
        print(msg, flush=True)
        with open(run_dir / "bench.log", "a") as f:
            f.write(msg + "\n")

    pin = not a.no_pin
    if pin:
        if len(os.sched_getaffinity(0)) < 2:
            log("fewer than 2 cores available: not pinning")
            pin = False
        else:
            os.sched_setaffinity(0, {1})  # the harness itself sits with the load side
    with ExitStack() as checkouts:
        targets = _targets(a.targets, log)
        if a.baseline_ref:
            commit, tree = checkouts.enter_context(refs.checkout(a.baseline_ref))
            targets = _at_ref(targets, commit, tree, log)
        return _measure(a, targets, pin, run_dir, command, log)


def _measure(a, targets: list[str], pin: bool, run_dir: Path, command: str, log) -> int:
    """Everything after the choice of targets: the scenarios, their reports."""
    machine = report.machine()  # its commit and time: what was measured, from the start
    nice = a.nice
    if nice:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, nice)
        except PermissionError:
            log(f"not permitted to run at niceness {nice}: running at the default priority")
            nice = 0
    opts = runner.Options(
        run_dir=run_dir,
        pin=pin,
        warmup=a.warmup,
        log=log,
        nice=nice,
        quiet_cores=a.quiet_cores,
        quiet_wait=a.quiet_wait,
    )
    write = (not a.no_write) and (a.write or not a.quick)
    log(
        f"niceness {nice}; run directory {run_dir.relative_to(ROOT)}; "
        f"targets {', '.join(targets)}; "
        + ("server on core 0, load side on core 1" if pin else "not pinned")
    )

    budget = runner.Scenario("budget", a.conversations, a.turns, a.deltas, a.pace, a.stagger)
    capacity = runner.Scenario("capacity", 0, a.cap_turns, a.cap_deltas, 1.0 / a.cap_rate)
    levels = [int(x) for x in a.levels.split(",")]
    workers = tuple(int(x) for x in a.workers.split(","))
    if any(n < 1 for n in workers):
        raise SystemExit("--workers: every count must be at least 1")
    repeats = a.repeats
    if a.quick:
        budget = runner.Scenario("budget", 10, 2, 20, a.pace, a.stagger)
        capacity = runner.Scenario("capacity", 0, 1, 30, 1.0 / a.cap_rate)
        levels, repeats = [20, 60], 1

    if a.profile:
        opts.profile = a.profile
        opts.profile_targets = tuple(targets)
        log(f"profiling {', '.join(targets)} with {a.profile} under the budget load")
        files = runner.profile(opts, budget, targets)
        for name, paths in files.items():
            for path in paths:
                if path.endswith(".txt"):
                    from bench import topcosts

                    summary = topcosts.summarize(Path(path).read_text())
                    Path(path[:-4] + "-top.txt").write_text(summary + "\n")
                    log(f"== {name}\n{summary}")
        return 0

    if not a.capacity:
        log(
            f"budget scenario: {budget.conversations} conversations x {budget.turns} turns, "
            f"{budget.deltas} deltas at {budget.pace * 1e3:.0f} ms, {repeats} repetition(s)"
        )
        res = runner.budget(opts, budget, targets, repeats)
        res["command"], res["machine"] = command, machine
        (run_dir / "budget.json").write_text(json.dumps(res, indent=1))
        log("\n" + _write_budget(res, write) + "\n")
    if a.short_replies and not a.capacity:
        turns = a.short_turns or budget.turns * 4
        short = runner.Scenario(
            "short", budget.conversations, turns, a.short_replies, a.pace, a.stagger
        )
        log(
            f"short replies: {short.conversations} conversations x {short.turns} turns, "
            f"{short.deltas} deltas at {short.pace * 1e3:.0f} ms, {repeats} repetition(s)"
        )
        res = runner.budget(opts, short, targets, repeats)
        res["command"], res["machine"] = command, machine
        (run_dir / "short.json").write_text(json.dumps(res, indent=1))
        log("\n" + _write_short(res, write) + "\n")
    if a.capacity or a.all or a.quick:
        log(
            f"capacity ramp: {levels} streams at {a.cap_rate:.0f} deltas/s, "
            f"{capacity.deltas}-delta replies, {capacity.turns} turns; "
            f"this server with {', '.join(map(str, workers))} worker(s)"
        )
        res = runner.capacity(opts, capacity, targets, levels, a.gap_limit, workers)
        res["command"], res["machine"] = command, machine
        (run_dir / "capacity.json").write_text(json.dumps(res, indent=1))
        log("\n" + _write_capacity(res, write, run_dir) + "\n")
    return 0


def _write_budget(res: dict, write: bool) -> str:
    md = report.budget_markdown(res, res["command"])
    if write:
        report.update_results("budget", md)
    return md


def _write_short(res: dict, write: bool) -> str:
    md = report.budget_markdown(res, res["command"], budgets=False)
    if write:
        report.update_results("short", md)
    return md


def _write_capacity(res: dict, write: bool, run_dir: Path) -> str:
    plot = report.plot_capacity(res, report.PLOT if write else run_dir / "capacity.png")
    md = report.capacity_markdown(res, res["command"], plot)
    if write:
        report.update_results("capacity", md)
    return md


def _render(run_dir: Path) -> int:
    """Rewrite RESULTS.md sections from a finished run's JSON (e.g. after a report change)."""
    done = False
    for name, default in (
        ("budget", "make bench"),
        ("short", "make bench BENCH_ARGS='--short-replies 3'"),
        ("capacity", "make bench BENCH_ARGS=--capacity"),
    ):
        path = run_dir / f"{name}.json"
        if path.exists():
            res = json.loads(path.read_text())
            res.setdefault("command", default)
            if name == "budget":
                _write_budget(res, True)
            elif name == "short":
                _write_short(res, True)
            else:
                _write_capacity(res, True, run_dir)
            print(f"rendered {path} into {report.RESULTS.relative_to(ROOT)}")
            done = True
    return 0 if done else 1


if __name__ == "__main__":
    sys.exit(main())
