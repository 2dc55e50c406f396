"""``TemplatedOpenAI`` sends what the SDK itself sends: the same URL, headers and body.

Each test drives a templated client and a plain ``openai.AsyncOpenAI`` through the SDK's
own ``request`` flow and compares what reached the transport, so an SDK release that
changes how a request is built fails here before it reaches the upstream.
"""

from __future__ import annotations

import openai
import pytest
from openai._models import FinalRequestOptions

from chatbot.llm.http import httpx
from chatbot.llm.request_templates import TemplatedOpenAI

URL = "http://upstream.invalid/v1/chat/completions"


def _clients(**kwargs: object) -> tuple[list[httpx.Request], openai.AsyncOpenAI, TemplatedOpenAI]:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"choices": []})

    def client(cls: type[openai.AsyncOpenAI]) -> openai.AsyncOpenAI:
        transport = httpx.MockTransport(answer)
        return cls(
            api_key="sk-test",
            base_url="http://upstream.invalid/v1",
            max_retries=0,
            http_client=httpx.AsyncClient(transport=transport),
            **kwargs,
        )

    return seen, client(openai.AsyncOpenAI), client(TemplatedOpenAI)


def _wire(request: httpx.Request) -> tuple:
    return request.method, str(request.url), list(request.headers.multi_items()), request.content


def _options(body: bytes, **extra: object) -> FinalRequestOptions:
    return FinalRequestOptions.construct(method="post", url=URL, content=body, **extra)


async def test_every_templated_request_is_the_sdks_own() -> None:
    seen, plain, templated = _clients()
    timeout = httpx.Timeout(5.0, read=None)
    bodies = [b'{"n":1}', b'{"messages":[{"role":"user","content":"' + b"x" * 300 + b'"}]}']
    for body in bodies * 2:  # the first of each kind builds the template, the next use it
        for extra in ({}, {"timeout": timeout}):
            await plain.request(httpx.Response, _options(body, **extra))
            await templated.request(httpx.Response, _options(body, **extra))
            sdk, ours = seen[-2], seen[-1]
            assert _wire(ours) == _wire(sdk)
            assert ours.extensions == sdk.extensions
            assert ours.headers["content-length"] == str(len(body))
    assert len(templated._templates) == 2  # one per kind of request, reused


async def test_a_new_key_rebuilds_the_template() -> None:
    seen, _, templated = _clients()
    await templated.request(httpx.Response, _options(b"{}"))
    templated.api_key = "sk-rotated"
    await templated.request(httpx.Response, _options(b"{}"))
    assert seen[-1].headers["authorization"] == "Bearer sk-rotated"


@pytest.mark.parametrize(
    "extra",
    [
        {"params": {"api-version": "1"}},
        {"headers": {"X-Custom": "yes"}},
    ],
)
async def test_requests_a_template_cannot_reproduce_are_the_sdks(extra: dict) -> None:
    seen, plain, templated = _clients()
    for _ in range(2):
        await plain.request(httpx.Response, _options(b"{}", **extra))
        await templated.request(httpx.Response, _options(b"{}", **extra))
        assert _wire(seen[-1]) == _wire(seen[-2])
    assert templated._templates == {}
