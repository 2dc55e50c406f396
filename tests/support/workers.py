"""Which ``chatbot serve --workers N`` process answers a request, seen from outside.

uvicorn's workers share one listening socket and the kernel hands each new connection to
whichever worker accepts it first. A connection then stays with that worker, so an
``httpx.Client`` whose kept-alive connection was accepted by a given worker sends every
request to it. The worker that owns a connection is read from the operating system's
socket table (``psutil``), with no help from the server.
"""

from __future__ import annotations

import time

import httpx
import psutil

from tests.support.server_process import ServerProcess

# A generous bound on waiting for the kernel to spread connections over the workers.
_PIN_DEADLINE_S = 60.0


def worker_pids(server: ServerProcess, count: int, timeout: float = 60.0) -> list[int]:
    """The pids of the server's ``count`` workers, once each has finished starting."""
    deadline = time.monotonic() + timeout
    while True:
        workers = [
            child.pid
            for child in psutil.Process(server.process.pid).children()
            if any("spawn_main" in part for part in _cmdline(child))
        ]
        started = server.log().count("Application startup complete")
        if len(workers) == count and started >= count:
            return sorted(workers)
        assert time.monotonic() < deadline, f"{len(workers)} worker(s) up:\n{server.log()}"
        time.sleep(0.1)


def replacement_worker(server: ServerProcess, gone: list[int], timeout: float = 60.0) -> int:
    """The pid of the worker uvicorn started in place of a dead one (not in ``gone``)."""
    deadline = time.monotonic() + timeout
    while True:
        fresh = [pid for pid in worker_pids(server, 2, timeout) if pid not in gone]
        if fresh:
            return fresh[0]
        assert time.monotonic() < deadline, f"no worker replaced {gone}:\n{server.log()}"
        time.sleep(0.1)


def _cmdline(process: psutil.Process) -> list[str]:
    try:
        return process.cmdline()
    except psutil.Error:
        return []


def client_port(response: httpx.Response) -> int:
    """The local port of the connection a response came over (ask before it is closed)."""
    return response.extensions["network_stream"].get_extra_info("client_addr")[1]


def serving_worker(server: ServerProcess, port: int) -> int | None:
    """The pid of the worker holding the server end of the connection from ``port``."""
    server_port = int(server.base_url.rsplit(":", 1)[1])
    for child in psutil.Process(server.process.pid).children():
        try:
            connections = child.connections(kind="tcp")
        except psutil.Error:
            continue
        for conn in connections:
            if conn.laddr and conn.raddr and conn.laddr.port == server_port:
                if conn.raddr.port == port:
                    return child.pid
    return None


def clients_on_each_worker(server: ServerProcess, pids: list[int]) -> dict[int, httpx.Client]:
    """One client per worker, each with a kept-alive connection that worker accepted.

    Opens fresh clients until every worker has one; the others are closed.
    """
    pinned: dict[int, httpx.Client] = {}
    deadline = time.monotonic() + _PIN_DEADLINE_S
    while len(pinned) < len(pids):
        assert time.monotonic() < deadline, f"connections never reached all of {pids}"
        client = httpx.Client(timeout=60)
        response = client.get(f"{server.base_url}/healthz")
        assert response.status_code == 200
        owner = serving_worker(server, client_port(response))
        if owner in pids and owner not in pinned:
            pinned[owner] = client
        else:
            client.close()
    return pinned
