"""The servers under comparison: how each one is started and where it answers.

All of them serve ``POST /api/v0/streaming_chatbot/response/{project}/{app}`` and
are pointed at the same fake upstream through ``OPENAI_API_KEY`` and
``OPENAI_BASE_URL``, with ``HOME`` set to a fresh temporary directory per start.
A target is driven through that route unless its ``protocol`` says otherwise:
``ours-v1`` is this same server driven through its OpenAI-compatible route.

``at_ref`` derives ``ours@<commit>`` (and ``ours-v1@<commit>``) from them: the same server
as it was at a git commit, run from a checkout of it (``bench.refs``), for before/after
figures from one run.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from bench.procs import PYTHON, ROOT

CHATBOT = Path(PYTHON).parent / "chatbot"
# LiteLLM's proxy lives in a virtual environment of its own (``make bench`` builds it from
# ``bench/litellm``): its pins would otherwise move the libraries this server is measured on.
LITELLM = ROOT / ".venv-litellm" / "bin" / "litellm"
# LiteLLM's configuration: one model, the name the load generator asks for, at the fake
# upstream the harness starts (from the environment every target gets); no database, no
# spend logs, no telemetry. No master key: the proxy answers loopback only, like ours.
LITELLM_CONFIG = """\
model_list:
  - model_name: {model}
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: os.environ/OPENAI_BASE_URL
      api_key: os.environ/OPENAI_API_KEY
litellm_settings:
  telemetry: false
general_settings:
  disable_spend_logs: true
  dangerously_permit_weak_or_unset_master_key: true
"""


def _uvicorn(app: str, *extra: str) -> Callable[[int], list[str]]:
    def argv(port: int) -> list[str]:
        return [PYTHON, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port), *extra]

    return argv


def _ours(port: int) -> list[str]:
    return [str(CHATBOT), "serve", "--host", "127.0.0.1", "--port", str(port)]


def _litellm(port: int) -> list[str]:
    """LiteLLM's proxy, one worker, with its configuration written by the harness."""
    from bench.loadgen import V1_MODEL

    config = Path(tempfile.mkdtemp(prefix="bench-litellm-")) / "config.yaml"
    config.write_text(LITELLM_CONFIG.format(model=V1_MODEL))
    return [str(LITELLM), "--config", str(config), "--host", "127.0.0.1", "--port", str(port),
            "--num_workers", "1"]  # fmt: skip


def _litellm_available() -> str | None:
    return None if LITELLM.exists() else f"{LITELLM} does not exist (make bench builds it)"


def _bare_relay(app: str) -> Callable[[int], list[str]]:
    """Our hand-written relays run as lean as uvicorn goes: uvloop, httptools, no access log."""
    return _uvicorn(
        app, "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning"
    )


def _ours_available(env: dict[str, str] | None = None, cwd: Path = ROOT) -> str | None:
    """None when ``chatbot serve`` exists in this venv, else why not."""
    if not CHATBOT.exists():
        return f"{CHATBOT} does not exist (run make setup-dev after the server lands)"
    try:
        r = subprocess.run(
            [str(CHATBOT), "serve", "--help"],
            capture_output=True,
            timeout=60,
            cwd=cwd,
            env={**os.environ, **(env or {})},
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"`chatbot serve --help` failed: {e}"
    if r.returncode != 0:
        tail = (r.stderr or r.stdout).decode(errors="replace").strip().splitlines()[-1:]
        return f"`chatbot serve --help` exited {r.returncode}: {' '.join(tail)}"
    return None


@dataclass(frozen=True)
class Target:
    name: str
    label: str
    argv: Callable[[int], list[str]]
    description: str
    available: Callable[[], str | None] = lambda: None
    # Every conversation's first turn is preceded by this call; it doubles as the readiness probe.
    create_path: str = "/api/v0/streaming_chatbot/create/bench/ready"
    # Accepts ``--workers N`` (several processes sharing the port).
    has_workers: bool = False
    # How the load generator talks to it (``bench.loadgen.PROTOCOLS``).
    protocol: str = "burr-ui"
    # Added to the environment it runs in, and its working directory (None: the repository).
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None

    def command(self, port: int, workers: int = 1) -> list[str]:
        if workers == 1:
            return self.argv(port)
        if not self.has_workers:
            raise ValueError(f"{self.name} runs one process only")
        return [*self.argv(port), "--workers", str(workers)]


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target(
            "naive",
            "naive relay",
            _uvicorn("bench.servers.naive:app"),
            "FastAPI + one shared openai.AsyncOpenAI, StreamingResponse (uvicorn defaults)",
        ),
        Target(
            "lean",
            "lean relay",
            _bare_relay("bench.servers.lean:app"),
            "bare ASGI + shared httpx client + orjson, uvloop/httptools, no access log",
        ),
        Target(
            "floor",
            "floor (aiohttp relay)",
            _bare_relay("bench.servers.floor:app"),
            "bare ASGI + shared aiohttp session + orjson, uvloop/httptools, no access log",
        ),
        Target(
            "burr",
            "Burr example",
            _uvicorn("bench.servers.burr_example:app"),
            "burr.examples.streaming-fastapi router from the installed burr package",
        ),
        Target(
            "floor-v1",
            "/v1 floor (aiohttp byte relay)",
            _bare_relay("bench.servers.floor_v1:app"),
            "bare ASGI + shared aiohttp session, POST /v1/chat/completions relayed byte for "
            "byte, uvloop/httptools, no access log",
            create_path="/ready",
            protocol="v1",
        ),
        Target(
            "litellm",
            "LiteLLM proxy",
            _litellm,
            "LiteLLM's proxy server (`litellm[proxy]`, its own venv), one worker, no database",
            available=_litellm_available,
            create_path="/health/liveliness",
            protocol="v1",
            # Its model prices from the installed package, never fetched from the network.
            env={"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR"},
        ),
        Target(
            "ours",
            "this server",
            _ours,
            "`chatbot serve` (default persistence and tracking)",
            available=_ours_available,
            has_workers=True,
        ),
        Target(
            "ours-trackdb",
            "this server, tracking in the database",
            _ours,
            "`chatbot serve` as `ours`, with Burr's tracking written to its database "
            "(CHATBOT_TRACKING=database) instead of Burr's files",
            available=_ours_available,
            env={"CHATBOT_TRACKING": "database"},
        ),
        Target(
            "ours-untracked",
            "this server, no tracking",
            _ours,
            "`chatbot serve` as `ours`, with Burr's tracking off (CHATBOT_TRACKING=off): "
            "what the tracking writers' costs are measured from",
            available=_ours_available,
            env={"CHATBOT_TRACKING": "off"},
        ),
        Target(
            "ours-v1",
            "this server (/v1 route)",
            _ours,
            "`chatbot serve` as `ours`, driven through POST /v1/chat/completions (stream: true)",
            available=_ours_available,
            protocol="v1",
        ),
    )
}


def _imports_from(tree: Path) -> str | None:
    """None when the server's packages are imported from ``tree`` under its environment."""
    probe = "import chatbot, server; print(chatbot.__file__); print(server.__file__)"
    r = subprocess.run(
        [PYTHON, "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree)},
    )
    if r.returncode != 0:
        return f"importing the server from {tree} failed: {r.stderr.strip()[-300:]}"
    stray = [f for f in r.stdout.split() if not Path(f).is_relative_to(tree)]
    return f"imported from outside {tree}: {stray}" if stray else None


def at_ref(base: Target, commit: str, tree: Path) -> Target:
    """``base`` as the code at ``commit`` (checked out at ``tree``) runs it: ``ours@<commit>``.

    The same console script and venv; ``PYTHONPATH`` and the working directory point at the
    checkout so its ``chatbot`` and ``server`` packages are the ones imported.
    """
    env = {"PYTHONPATH": str(tree)}
    return replace(
        base,
        name=f"{base.name}@{commit}",
        label=f"{base.label} at {commit}",
        description=f"{base.description}, the code at commit {commit}",
        available=lambda: _imports_from(tree) or _ours_available(env, tree),
        env=env,
        cwd=tree,
    )


def register(target: Target) -> Target:
    """Make a derived target (``at_ref``) known to the runner and the report."""
    TARGETS[target.name] = target
    return target


def label(name: str) -> str:
    """A target's label, also for a ``base@commit`` target this process did not register
    (a run rendered again from its JSON)."""
    if name in TARGETS:
        return TARGETS[name].label
    base, _, commit = name.partition("@")
    return f"{TARGETS[base].label} at {commit}" if commit and base in TARGETS else name


BASELINES = ("floor", "lean", "naive", "burr", "floor-v1", "litellm")
OURS = ("ours", "ours-v1")
"""This server, through each route the budgets hold it to."""
TRACKING = ("ours-trackdb", "ours-untracked")
"""This server with its tracking elsewhere: what each tracking writer costs."""
