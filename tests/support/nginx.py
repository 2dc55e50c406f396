"""Debian's nginx, started from the repository's own deploy/nginx.conf, in front of replicas.

The shipped file is a template (its header documents the ``${...}`` placeholders); it is
rendered here exactly as an operator's ``envsubst`` would, so the tests run the config that
ships, not a copy of it. nginx runs as a real foreground process (``daemon off``) with its
pid file, logs and temporary files in a fresh directory, on a free loopback port.

Under root nginx's workers drop to ``nobody``: the directory is made traversable so they can
reach the temporary paths the master creates (and hands to them) inside it.

A missing nginx is a failure, never a skip: ``make nginx`` installs it.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.server_process import REPO

NGINX = Path(os.environ.get("CHATBOT_TEST_NGINX", "/usr/sbin/nginx"))
TEMPLATE = REPO / "deploy" / "nginx.conf"
# Ours are upper case and start with CHATBOT_ (nginx's own variables are lower case);
# envsubst fills in both spellings, $NAME and ${NAME}.
_PLACEHOLDER = re.compile(r"\$(?:\{(CHATBOT_[A-Z0-9_]*)\}|(CHATBOT_[A-Z0-9_]*))")
# The failure detection each replica's line asks for (the template's documented form).
MAX_FAILS = 1
FAIL_TIMEOUT = "10s"


class NginxMissing(RuntimeError):
    """nginx is not installed here."""


def render(template: str, values: Mapping[str, str]) -> str:
    """The template with each ``${NAME}`` replaced, as ``envsubst`` with those names does.

    A placeholder without a value is an error rather than an empty string, so a template
    that grows a new placeholder cannot be run half-rendered.
    """
    names = {braced or bare for braced, bare in _PLACEHOLDER.findall(template)}
    missing = sorted(names - set(values))
    if missing:
        raise KeyError(f"no value for the placeholders {missing} of {TEMPLATE}")
    return _PLACEHOLDER.sub(lambda match: values[match.group(1) or match.group(2)], template)


def server_lines(addresses: Sequence[str]) -> str:
    """``${CHATBOT_UPSTREAM_SERVERS}``: one ``server`` line per replica address."""
    return "\n".join(
        f"        server {address} max_fails={MAX_FAILS} fail_timeout={FAIL_TIMEOUT};"
        for address in addresses
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Nginx:
    process: subprocess.Popen
    base_dir: Path
    port: int
    _stopped: bool = field(default=False, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api(self) -> str:
        return f"{self.base_url}/api/v0/streaming_chatbot"

    def access_log(self) -> str:
        return _read(self.base_dir / "access.log")

    def error_log(self) -> str:
        return _read(self.base_dir / "error.log") + _read(self.base_dir / "stderr.log")

    def stop(self, timeout: float = 15.0) -> None:
        """Fast shutdown (SIGTERM: the master stops its workers), then the directory goes."""
        if self._stopped:
            return
        self._stopped = True
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                # Its own process group (start_new_session): the master and its workers.
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        shutil.rmtree(self.base_dir, ignore_errors=True)


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def check_installed() -> None:
    if not os.access(NGINX, os.X_OK):
        raise NginxMissing(f"{NGINX} is missing: run 'make nginx' (Debian's nginx package)")


def start_nginx(upstreams: Sequence[str], timeout: float = 30.0) -> Nginx:
    """nginx from the shipped template, proxying ``upstreams`` (``host:port`` each).

    The port is chosen free and then bound by nginx; another process may take it in
    between, so a start that fails to bind is tried again on another port.
    """
    check_installed()
    template = TEMPLATE.read_text()
    last_error = ""
    for _ in range(3):
        base_dir = Path(tempfile.mkdtemp(prefix="chatbot-nginx-"))
        try:
            nginx = _launch(template, upstreams, base_dir)
        except BaseException:
            shutil.rmtree(base_dir, ignore_errors=True)
            raise
        if _wait_listening(nginx, timeout):
            atexit.register(nginx.stop)  # even if the test run itself is cut short
            return nginx
        last_error = nginx.error_log()
        nginx.stop()
        if "Address already in use" not in last_error:
            break
    raise RuntimeError(f"nginx did not start:\n{last_error}")


def _launch(template: str, upstreams: Sequence[str], base_dir: Path) -> Nginx:
    """Render the config into ``base_dir`` and start nginx on it, in the foreground."""
    base_dir.chmod(0o755)
    port = _free_port()
    config = render(
        template,
        {
            "CHATBOT_LISTEN": f"127.0.0.1:{port}",
            "CHATBOT_NGINX_DIR": str(base_dir),
            "CHATBOT_UPSTREAM_SERVERS": server_lines(upstreams),
        },
    )
    (base_dir / "nginx.conf").write_text(config)
    with (base_dir / "stderr.log").open("wb") as stderr:
        process = subprocess.Popen(
            [str(NGINX), "-p", str(base_dir), "-c", str(base_dir / "nginx.conf")]
            + ["-e", "stderr", "-g", "daemon off;"],
            stdout=stderr,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Nginx(process, base_dir, port)


def _wait_listening(nginx: Nginx, timeout: float) -> bool:
    """True once nginx answers on its port; False if it exited (or never answered)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if nginx.process.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", nginx.port), timeout=1):
                return True
        except OSError:
            time.sleep(0.05)
    return False


@contextlib.contextmanager
def running_nginx(upstreams: Sequence[str]) -> Iterator[Nginx]:
    """nginx in front of ``upstreams`` for the ``with`` block (a fixture's body)."""
    nginx = start_nginx(upstreams)
    try:
        yield nginx
    finally:
        nginx.stop()
