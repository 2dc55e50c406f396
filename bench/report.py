"""Turns run records into medians, ratios, Markdown tables, a plot and RESULTS.md."""

from __future__ import annotations

import datetime as _dt
import platform
import re
import statistics
import subprocess
from importlib import metadata
from pathlib import Path

import psutil

from bench import targets
from bench.procs import ROOT

RESULTS = ROOT / "bench" / "RESULTS.md"
PLOT = ROOT / "bench" / "capacity.png"


def _med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _fmt(v, digits: int = 1) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, int):
        return str(v)
    return f"{v:.{digits}f}"


def machine() -> str:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = []
    for pkg in (
        "apache-burr",
        "fastapi",
        "starlette",
        "uvicorn",
        "openai",
        "httpx",
        "aiohttp",
        "uvloop",
        "httptools",
        "orjson",
        "pydantic",
    ):
        try:
            versions.append(f"{pkg} {metadata.version(pkg)}")
        except metadata.PackageNotFoundError:
            pass
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        commit = "?"
    return (
        f"{psutil.cpu_count()} x {cpu}, {psutil.virtual_memory().total / 2**30:.0f} GiB, "
        f"Linux {platform.release()}, Python {platform.python_version()}; "
        f"{', '.join(versions)}; commit {commit}; "
        f"{_dt.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}"
    )


def placement(result: dict) -> str:
    where = (
        "server pinned to core 0; fake upstream, load generator and harness on core 1"
        if result.get("pin")
        else "processes not pinned"
    )
    if result.get("pin") and any(n > 1 for n in result.get("workers", ())):
        where += " (this server with several workers: its processes on every core)"
    return f"Placement: {where}; all at niceness {result.get('nice', 0)}."


# --- the budget scenario -----------------------------------------------------------------

COLUMNS = [
    ("TTFD p50 ms", "ttfd_p50_ms", 1),
    ("TTFD p99 ms", "ttfd_p99_ms", 1),
    ("gap p99 ms", "gap_p99_ms", 1),
    ("end tail p99 ms", "tail_p99_ms", 1),
    ("CPU/delta µs", "cpu_per_delta_us", 1),
    ("CPU/turn ms", "cpu_per_turn_ms", 2),
    ("server cores", "server_cores", 2),
    ("peak RSS MiB", "rss_peak_mb", 0),
    ("RSS/stream KiB", "rss_per_stream_kb", 0),
    ("upstream req/turn", "req_per_turn", 2),
    ("errors", "errors", 0),
    ("other procs' cores (on server's core)", "other_cores", 2),
]


def provenance(result: dict, command: str) -> list[str]:
    """The lines every section starts with: how to reproduce it and where it ran (the
    machine, versions, commit and time the run recorded; ``--render`` keeps them)."""
    where = result.get("machine") or f"{machine()} (at rendering: the run recorded none)"
    return [f"Command: `{command}`", "", f"Machine: {where}", "", placement(result), ""]


def series(run: dict) -> str:
    """A target at one worker count: ``ours``, or ``ours x2`` for two worker processes."""
    workers = run.get("workers", 1)
    return run["target"] if workers == 1 else f"{run['target']} x{workers}"


def label(name: str) -> str:
    target, _, workers = name.partition(" x")
    return targets.label(target) + (f", {workers} workers" if workers else "")


def _by(runs: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in runs:
        r.setdefault("req_per_turn", r["upstream_requests"] / max(1, r["turns_planned"]))
        out.setdefault(series(r), []).append(r)
    return out


def _rep_ratios(runs: list[dict], a: str, b: str, key: str) -> list[float]:
    """a/b in each repetition that measured both."""
    reps: dict[int, dict[str, float]] = {}
    for r in runs:
        if r.get(key):
            reps.setdefault(r["rep"], {})[r["target"]] = r[key]
    return [v[a] / v[b] for v in reps.values() if a in v and b in v and v[b]]


def _ratio(runs: list[dict], a: str, b: str, key: str) -> float | None:
    """Median over repetitions of a/b, each pair measured in the same repetition."""
    vals = _rep_ratios(runs, a, b, key)
    return statistics.median(vals) if vals else None


def _each_repetition(values: list[float], met: list[bool], unit: str, digits: int) -> str:
    """A verdict's spread: the lowest and highest of its repetitions, and how many of them
    were within the budget. On a shared machine a median near its bound can go either way
    in the next run; this says how near."""
    if not values:
        return "n/a"
    low, high = _fmt(min(values), digits), _fmt(max(values), digits)
    return f"{low} to {high}{unit}, met in {sum(met)} of {len(met)}"


def budget_summary(result: dict) -> dict:
    runs = result["runs"]
    by = _by(runs)
    med = {
        t: {key: _med([r.get(key) for r in rs]) for _, key, _ in COLUMNS} for t, rs in by.items()
    }
    for t, rs in by.items():
        med[t]["other_on_server_core"] = _med([r.get("other_on_server_core") for r in rs])
    for t, rs in by.items():
        med[t]["errors"] = sum(r["errors"] for r in rs)
        med[t]["loadgen_cores"] = _med([r["loadgen_cores"] for r in rs])
        med[t]["upstream_cores"] = _med([r["upstream_cores"] for r in rs])
        med[t]["loadgen_lag_p99_ms"] = _med([r["loadgen_lag_p99_ms"] for r in rs])
    rtt = _med([x["classifier_rtt_p50"] for x in result["rtt"]]) * 1e3
    ratios = {}
    pairs = [
        ("ours", "floor"),
        ("ours", "lean"),
        ("ours", "naive"),
        ("burr", "ours"),
        ("ours-v1", "ours"),
        ("lean", "floor"),
        ("naive", "floor"),
        ("burr", "floor"),
        ("ours-v1", "floor"),
        ("ours-v1", "floor-v1"),
        ("litellm", "ours-v1"),
        ("ours-v1", "litellm"),
        ("litellm", "floor-v1"),
        ("ours-trackdb", "ours"),
        ("ours", "ours-untracked"),
        ("ours-trackdb", "ours-untracked"),
    ]
    # This server against itself at an earlier commit (``--baseline-ref``): after / before.
    pairs += [(t.partition("@")[0], t) for t in by if "@" in t]
    for a, b in pairs:
        if a in by and b in by:
            ratios[f"{a}/{b}"] = {key: _ratio(runs, a, b, key) for key in RATIO_KEYS}
    checks = _budget_checks(runs, ratios) if "ours" in by else []
    return {"median": med, "ratios": ratios, "rtt_ms": rtt, "checks": checks}


RATIO_KEYS = ("cpu_per_delta_us", "cpu_per_turn_ms", "ttfd_p50_ms", "gap_p99_ms", "rss_peak_mb")

BUDGETS = (
    # (name, target, ratio, key, bound, at most?)
    ("CPU per delta vs the floor", "≤ 2×", "ours/floor", "cpu_per_delta_us", 2.0, True),
    (
        "CPU per delta: Burr's example / this server",
        "≥ 8×",
        "burr/ours",
        "cpu_per_delta_us",
        8.0,
        False,
    ),
    ("Median TTFD vs the naive relay", "≤ 1.0×", "ours/naive", "ttfd_p50_ms", 1.0, True),
    (
        "CPU per delta: tracking in the database vs in Burr's files (within 5 %)",
        "≤ 1.05×",
        "ours-trackdb/ours",
        "cpu_per_delta_us",
        1.05,
        True,
    ),
    (
        "CPU per delta: the /v1 route vs the Burr-UI route (within 10 %)",
        "≤ 1.1×",
        "ours-v1/ours",
        "cpu_per_delta_us",
        1.1,
        True,
    ),
    (
        "/v1: CPU per delta vs the /v1 byte relay",
        "≤ 2.5×",
        "ours-v1/floor-v1",
        "cpu_per_delta_us",
        2.5,
        True,
    ),
    (
        "/v1: CPU per delta, LiteLLM's proxy / this server",
        "≥ 3×",
        "litellm/ours-v1",
        "cpu_per_delta_us",
        3.0,
        False,
    ),
    (
        "/v1: median time to first token vs LiteLLM's proxy",
        "< 1.0×",
        "ours-v1/litellm",
        "ttfd_p50_ms",
        1.0,
        True,
    ),
)
"""The budgets this server is held to on the budget load (issue 23, which supersedes
issue 12's ratio to the floor; the /v1 route's within 10 % of the other, issue 11)."""
SHORT_TURN_BUDGET_MS = 4.0
"""CPU per turn of this server on the short-reply load (issue 23)."""


def _budget_checks(runs: list[dict], ratios: dict) -> list[tuple[str, str, str, str, bool | None]]:
    """Each budget with its measured ratio (the median of the repetitions'), the spread of
    the repetitions, and whether it is met (None: not measured)."""
    checks = []
    for name, target, pair, key, bound, at_most in BUDGETS:
        r = ratios.get(pair, {}).get(key)

        def within(x: float, bound: float = bound, at_most: bool = at_most) -> bool:
            return x <= bound if at_most else x >= bound

        ok = None if r is None else within(r)
        each = _rep_ratios(runs, *pair.split("/"), key)
        spread = _each_repetition(each, [within(x) for x in each], "×", 2)
        checks.append((name, target, _fmt(r, 2) + "×" if r is not None else "n/a", spread, ok))
    return checks


def _tracking_costs(summary: dict) -> list[str]:
    """What each tracking writer adds to a turn: this server with its tracking in Burr's
    files (``ours``, the default on SQLite) and in the database, each less the same server
    with tracking off."""
    med = summary["median"]
    if "ours-untracked" not in med:
        return []
    off = med["ours-untracked"]
    rows = []
    for name in ("ours", "ours-trackdb"):
        if name not in med or med[name]["cpu_per_turn_ms"] is None:
            continue
        turn, delta = med[name]["cpu_per_turn_ms"], med[name]["cpu_per_delta_us"]
        rows.append(
            f"| {label(name)} | {_fmt(turn, 2)} | {_fmt(delta)} | "
            f"{_fmt(turn - off['cpu_per_turn_ms'], 2)} |"
        )
    if not rows:
        return []
    return [
        "",
        "Tracking writers (same run; cost per turn: CPU per turn less this server's with "
        f"tracking off, {_fmt(off['cpu_per_turn_ms'], 2)} ms):",
        "",
        "| tracking | CPU per turn (ms) | CPU per delta (µs) | tracking's cost per turn (ms) |",
        "| --- | ---: | ---: | ---: |",
        *rows,
    ]


def _before_after(summary: dict) -> list[str]:
    """One line per ``--baseline-ref`` target: its CPU figures next to today's code's."""
    lines = []
    for pair, r in summary["ratios"].items():
        after, before = pair.split("/")
        if "@" not in before:
            continue
        now, then = summary["median"][after], summary["median"][before]
        lines += [
            "",
            f"Before/after, {label(after)} against {label(before)} (same run, same machine; "
            f"medians, ratio after/before): CPU per delta "
            f"{_fmt(then['cpu_per_delta_us'])} → {_fmt(now['cpu_per_delta_us'])} µs "
            f"(**{_fmt(r['cpu_per_delta_us'], 2)}×**), CPU per turn "
            f"{_fmt(then['cpu_per_turn_ms'], 2)} → {_fmt(now['cpu_per_turn_ms'], 2)} ms "
            f"(**{_fmt(r['cpu_per_turn_ms'], 2)}×**).",
        ]
    return lines


def budget_markdown(result: dict, command: str, budgets: bool = True) -> str:
    """The budget scenario's section; ``budgets=False`` for another load (the short
    replies), which the budgets do not speak of."""
    s = budget_summary(result)
    sc = result["scenario"]
    spread = sc["stagger"] if sc["stagger"] is not None else sc["deltas"] * sc["pace"]
    lines = [
        f"Scenario: {sc['conversations']} concurrent conversations × {sc['turns']} turns, "
        f"{sc['deltas']}-delta replies at {sc['pace'] * 1e3:.0f} ms per delta, conversation "
        f"starts spread over {spread:.2f} s, "
        f"no think time; {result['repeats']} repetitions, servers interleaved (order rotated), "
        f"each on a fresh process after a {result.get('warmup', 4)}-conversation warm-up. "
        f"Figures are medians over repetitions; ratios are medians of the per-repetition ratios.",
        "",
        *provenance(result, command),
        f"One classifier round trip against the fake upstream (openai SDK, shared client, "
        f"includes the upstream's one-token delay of {sc['pace'] * 1e3:.0f} ms): "
        f"**{s['rtt_ms']:.1f} ms** (median).",
        "",
        "| server | " + " | ".join(c for c, _, _ in COLUMNS) + " |",
        "| --- | " + " | ".join("---:" for _ in COLUMNS) + " |",
    ]
    for t in result["targets"]:
        if t not in s["median"]:
            continue
        m = s["median"][t]
        cells = [_fmt(m[key], d) for _, key, d in COLUMNS]
        if m.get("other_on_server_core") is not None:
            cells[-1] += f" ({_fmt(m['other_on_server_core'], 2)})"
        lines.append(f"| {label(t)} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Ratios (median of per-repetition ratios; < 1 means the first is cheaper/faster):",
        "",
        "| ratio | CPU/delta | CPU/turn | TTFD p50 | gap p99 | peak RSS |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for pair, r in s["ratios"].items():
        a, b = pair.split("/")
        lines.append(
            f"| {label(a)} / {label(b)} | {_fmt(r['cpu_per_delta_us'], 2)} | "
            f"{_fmt(r.get('cpu_per_turn_ms'), 2)} | "
            f"{_fmt(r['ttfd_p50_ms'], 2)} | {_fmt(r['gap_p99_ms'], 2)} | "
            f"{_fmt(r['rss_peak_mb'], 2)} |"
        )
    lines += _before_after(s)
    lines += _tracking_costs(s)
    if budgets and s["checks"]:
        lines += [
            "",
            "Budgets for this server (issue 23; the /v1 route within 10 % of the other, issue 11):",
            "",
            "| budget | target | measured | each repetition | |",
            "| --- | --- | --- | --- | --- |",
        ]
        for name, target, value, spread, ok in s["checks"]:
            verdict = "not measured" if ok is None else "met" if ok else "**not met**"
            lines.append(f"| {name} | {target} | {value} | {spread} | {verdict} |")
    elif budgets:
        lines += ["", "_This server was not measured in this run (see `--targets`)._"]
    if not budgets and "ours" in s["median"]:  # the short replies: what a turn costs
        per_turn = s["median"]["ours"]["cpu_per_turn_ms"]
        met = per_turn is not None and per_turn <= SHORT_TURN_BUDGET_MS
        each = [
            r["cpu_per_turn_ms"] for r in _by(result["runs"])["ours"] if r.get("cpu_per_turn_ms")
        ]
        spread = _each_repetition(each, [x <= SHORT_TURN_BUDGET_MS for x in each], " ms", 2)
        lines += [
            "",
            f"Budget (issue 23): this server's CPU per turn at most "
            f"{SHORT_TURN_BUDGET_MS:.0f} ms: {_fmt(per_turn, 2)} ms, "
            + ("met" if met else "**not met**")
            + f" (each repetition: {spread}).",
        ]
    load = [s["median"][t] for t in s["median"]]
    lines += [
        "",
        f"Load side, median over the runs: load generator "
        f"{max(m['loadgen_cores'] for m in load):.2f} cores at most (event-loop lag p99 ≤ "
        f"{max(m['loadgen_lag_p99_ms'] for m in load):.1f} ms), "
        f"fake upstream {max(m['upstream_cores'] for m in load):.2f} cores at most.",
    ]
    errs = {t: m["errors"] for t, m in s["median"].items() if m["errors"]}
    if errs:
        kinds = {}
        for r in result["runs"]:
            for k, v in r["error_kinds"].items():
                kinds.setdefault(r["target"], {}).setdefault(k, 0)
                kinds[r["target"]][k] += v
        lines.append(f"Errors (all repetitions): {kinds}")
    return "\n".join(lines)


# --- capacity ------------------------------------------------------------------------------


PACE_KEPT = 0.8


def _passes(r: dict, gap_limit: float, strict: bool = False) -> bool:
    ok = r["gap_p99_ms"] < gap_limit and r["errors"] <= 0.01 * r["turns_planned"]
    return ok and (not strict or r.get("pace_kept", 0.0) >= PACE_KEPT)


def capacity_summary(result: dict) -> dict[str, dict]:
    limit = result["gap_limit_ms"]
    out = {}
    for t, rs in _by(result["runs"]).items():
        ok = [r for r in rs if _passes(r, limit)]
        bad = [r for r in rs if r not in ok]
        best = max(ok, key=lambda r: r["level"]) if ok else None
        ok_both = [r for r in rs if _passes(r, limit, strict=True)]
        last = max(rs, key=lambda r: r["level"])
        out[t] = {
            "sustained": best["level"] if best else 0,
            "sustained_strict": max((r["level"] for r in ok_both), default=0),
            # The ramp ran out of levels before this server failed the strict criterion.
            "strict_unbounded": _passes(last, limit, strict=True),
            "first_failing": min(r["level"] for r in bad) if bad else None,
            "at_sustained": best,
            "runs": rs,
        }
    return out


def _ordered(result: dict, summ: dict) -> list[str]:
    """The series in the order of ``--targets``, each target's worker counts ascending."""
    out = []
    for t in result["targets"]:
        out += sorted((k for k in summ if k.partition(" x")[0] == t), key=_workers_of)
    return out


def _workers_of(name: str) -> int:
    return int(name.partition(" x")[2] or 1)


WORKERS_GOAL = 0.85
"""Streams per extra worker that count as scaling: 1.7× one worker's with two (issue 12)."""


def _workers_lines(summ: dict) -> list[str]:
    """This server's strict capacity per worker count, against one worker's."""
    ours = sorted((k for k in summ if k.partition(" x")[0] == "ours"), key=_workers_of)
    if len(ours) < 2 or "ours" not in summ:
        return []
    one = summ["ours"]["sustained_strict"]
    lines = [
        "",
        "This server by worker processes (strict criterion):",
        "",
        "| workers | strict streams | × one worker | goal | |",
        "| ---: | ---: | ---: | ---: | --- |",
    ]
    for k in ours:
        n = _workers_of(k)
        streams = summ[k]["sustained_strict"]
        ratio = streams / one if one else None
        if n == 1:
            lines.append(f"| 1 | {streams} | 1.00 | | |")
            continue
        goal = WORKERS_GOAL * n
        if ratio is None:
            verdict = "n/a"
        elif summ[k]["strict_unbounded"] or summ["ours"]["strict_unbounded"]:
            verdict = "ramp too short to tell"  # a count never failed: add --levels
        else:
            verdict = "met" if ratio >= goal else "**not met**"
        lines.append(f"| {n} | {streams} | {_fmt(ratio, 2)} | ≥ {goal:.2f}× | {verdict} |")
    return lines


def capacity_markdown(result: dict, command: str, plot: Path | None) -> str:
    sc = result["scenario"]
    summ = capacity_summary(result)
    gap_limit = result["gap_limit_ms"]
    lines = [
        f"Ramp: {', '.join(map(str, result['levels']))} concurrent streams; each stream is a "
        f"conversation running {sc['turns']} back-to-back turns of {sc['deltas']} deltas at "
        f"{1 / sc['pace']:.0f} deltas/s (starts spread over one reply, "
        f"{sc['deltas'] * sc['pace']:.1f} s). "
        f"One server process per target for the whole ramp; a target stops at the first level "
        f"whose p99 gap reaches {gap_limit:.0f} ms or whose errors exceed 1 % (such a level "
        f"is run again, up to 3 times, when other work disturbed it; the last attempt counts).",
        "",
        *provenance(result, command),
        "A level can keep its gaps short and still not carry its streams: a server that "
        "queues new turns or finishes each reply late (the end frame after storing state) "
        "leaves conversations waiting between replies. *Pace kept* is the load's duration "
        "against a server with no cost divided by its actual duration; *mean open streams* "
        "is the time-averaged number of turns in flight. The strict column also asks for "
        f"pace kept ≥ {PACE_KEPT:.0%}.",
        "",
        f"| server | sustained streams (p99 gap < {gap_limit:.0f} ms) | strict (and pace kept "
        f"≥ {PACE_KEPT:.0%}) | first level over the gap limit | at the sustained level: "
        "TTFD p50 ms | end tail p99 ms | pace kept | mean open streams | server cores | "
        "upstream cores | load generator cores |",
        "| --- |" + " ---: |" * 10,
    ]
    for t in _ordered(result, summ):
        s = summ[t]
        b = s["at_sustained"] or {}
        lines.append(
            f"| {label(t)} | {s['sustained']} | {s['sustained_strict']} | "
            f"{s['first_failing'] or '—'} | {_fmt(b.get('ttfd_p50_ms'), 0)} | "
            f"{_fmt(b.get('tail_p99_ms'), 0)} | {_fmt(b.get('pace_kept'), 2)} | "
            f"{_fmt(b.get('mean_open_streams'), 0)} | "
            f"{_fmt(b.get('server_cores'), 2)} | {_fmt(b.get('upstream_cores'), 2)} | "
            f"{_fmt(b.get('loadgen_cores'), 2)} |"
        )
    lines += _workers_lines(summ)
    lines += [
        "",
        "Every level:",
        "",
        "| server | streams | gap p99 ms | TTFD p50 ms | TTFD p99 ms | end tail p99 ms | "
        "pace kept | mean open streams | CPU/delta µs | server cores | upstream cores | "
        "loadgen cores | peak RSS MiB | RSS/stream KiB | errors | other procs' cores "
        "(on server's core) |",
        "| --- |" + " ---: |" * 15,
    ]
    for r in result["runs"]:
        lines.append(
            f"| {label(series(r))} | {r['level']} | {_fmt(r['gap_p99_ms'])} | "
            f"{_fmt(r['ttfd_p50_ms'])} | {_fmt(r['ttfd_p99_ms'])} | "
            f"{_fmt(r.get('tail_p99_ms'))} | {_fmt(r.get('pace_kept'), 2)} | "
            f"{_fmt(r.get('mean_open_streams'), 0)} | "
            f"{_fmt(r['cpu_per_delta_us'])} | "
            f"{_fmt(r['server_cores'], 2)} | {_fmt(r['upstream_cores'], 2)} | "
            f"{_fmt(r['loadgen_cores'], 2)} | {_fmt(r['rss_peak_mb'], 0)} | "
            f"{_fmt(r['rss_per_stream_kb'], 0)} | {r['errors']} | "
            f"{_fmt(r.get('other_cores'), 2)} ({_fmt(r.get('other_on_server_core'), 2)}) |"
        )
    if plot is not None:
        lines += ["", f"![streams vs p99 gap and CPU]({plot.name})"]
    return "\n".join(lines)


def plot_capacity(result: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(17, 4.8))
    colors = {
        "floor": "tab:olive",
        "lean": "tab:green",
        "naive": "tab:blue",
        "burr": "tab:red",
        "ours": "tab:purple",
        "ours-v1": "tab:cyan",
    }
    for t, rs in _by(result["runs"]).items():
        xs = [r["level"] for r in rs]
        target, _, workers = t.partition(" x")
        c = colors.get(target) if not workers else "tab:pink"
        name = label(t)
        ax1.plot(xs, [r["gap_p99_ms"] for r in rs], "o-", color=c, label=name)
        ax2.plot(xs, [r["server_cores"] for r in rs], "o-", color=c, label=f"{name}: server")
        if all(r.get("pace_kept") is not None for r in rs):
            ax3.plot(xs, [r["pace_kept"] for r in rs], "o-", color=c, label=name)
        ax2.plot(
            xs,
            [r["upstream_cores"] + r["loadgen_cores"] for r in rs],
            "x:",
            color=c,
            label=f"{name}: upstream + load generator",
        )
    ax1.axhline(result["gap_limit_ms"], color="grey", ls="--", lw=1)
    ax1.set_yscale("log")
    ax1.set_xlabel("concurrent streams (30 deltas/s each)")
    ax1.set_ylabel("p99 gap between deltas (ms, log)")
    ax1.set_title("Delta gap p99 vs streams")
    ax1.legend()
    ax2.axhline(1.0, color="grey", ls="--", lw=1)
    ax2.set_xlabel("concurrent streams (30 deltas/s each)")
    ax2.set_ylabel("CPU (cores)")
    ax2.set_title("CPU: server (one core unless several workers) and load side")
    ax2.legend(fontsize=7)
    ax3.axhline(PACE_KEPT, color="grey", ls="--", lw=1)
    ax3.set_ylim(0, 1.05)
    ax3.set_xlabel("concurrent streams (30 deltas/s each)")
    ax3.set_ylabel("pace kept (ideal duration / actual)")
    ax3.set_title("Did the conversations keep their pace?")
    ax3.legend(fontsize=7)
    for ax in (ax1, ax2, ax3):
        ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# --- RESULTS.md ---------------------------------------------------------------------------

SKELETON = """# Benchmark results

<!-- BEGIN budget -->
<!-- END budget -->

<!-- BEGIN capacity -->
<!-- END capacity -->
"""


def update_results(section: str, body: str, path: Path = RESULTS) -> None:
    """Replace the text between ``<!-- BEGIN section -->`` and its END marker."""
    text = path.read_text() if path.exists() else SKELETON
    begin, end = f"<!-- BEGIN {section} -->", f"<!-- END {section} -->"
    if begin not in text:
        text = text.rstrip() + f"\n\n{begin}\n{end}\n"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: f"{begin}\n{body.strip()}\n{end}", text)
    path.write_text(text)
