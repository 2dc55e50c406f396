"""Builds the one ``openai.AsyncOpenAI`` client the whole process shares.

A client owns a connection pool and an SSL context; building one per call (as Burr's
reference example does) opens a new upstream connection for every request. Its transport
is the SDK's aiohttp one (``openai[aiohttp]``): aiohttp reads a token stream with its C
HTTP parser, where the default httpx transport runs h11 and anyio in Python for every
chunk, the largest share of a relay's CPU per token. ``chatbot.llm.errors`` maps its
failures to the same codes as httpx's.

With no API key the client is wired to the embedded offline model through an in-process
httpx transport, so the offline path runs exactly the production code above the socket.
"""

from __future__ import annotations

import logging

import openai

from chatbot.llm.http import httpx
from chatbot.llm.offline.transport import OfflineModelTransport
from chatbot.llm.request_templates import TemplatedOpenAI
from chatbot.settings import Settings

OFFLINE_BASE_URL = "http://offline-model.invalid/v1"


def build_openai_client(settings: Settings) -> openai.AsyncOpenAI:
    """The process's one client (``TemplatedOpenAI``: the SDK, its repeated requests
    built from a template)."""
    # The HTTP library logs every request at INFO: two lines per turn (classification,
    # reply) written synchronously to stderr from the event loop, saying what the access
    # log and the metrics already say. Its warnings still show.
    logging.getLogger(httpx.__name__).setLevel(logging.WARNING)
    timeout = httpx.Timeout(
        connect=settings.upstream_connect_timeout_s,
        read=settings.upstream_read_timeout_s,
        write=settings.upstream_connect_timeout_s,
        pool=settings.upstream_connect_timeout_s,
    )
    if settings.offline:
        transport = OfflineModelTransport(
            pace_s=settings.offline_pace_ms / 1000,
            words_per_chunk=settings.offline_words_per_chunk,
        )
        return TemplatedOpenAI(
            api_key="offline",
            base_url=OFFLINE_BASE_URL,
            max_retries=0,
            timeout=timeout,
            http_client=httpx.AsyncClient(transport=transport, timeout=timeout),
        )
    assert settings.openai_api_key is not None
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=200)
    return TemplatedOpenAI(
        api_key=settings.openai_api_key.get_secret_value(),
        base_url=settings.openai_base_url or None,
        # Retries are ours: only the classifier call is retried, never a started stream.
        max_retries=0,
        timeout=timeout,
        http_client=openai.DefaultAioHttpClient(
            timeout=timeout, limits=limits, follow_redirects=False
        ),
    )
