"""The SDK's client, building each upstream request from a template made once.

Every turn sends the same two requests but for their bodies: one POST to one URL, with
the same headers (the key, the SDK's platform headers, its read timeout). The SDK builds
each anew: its header merge, two parses of the URL, the HTTP library's own merge of the
client's headers and URL, about a seventh of a turn's CPU in the short-reply profile
(``bench/RESULTS.md``). ``TemplatedOpenAI`` lets the SDK build the first request of each
kind (method, URL, timeout) and reuses its URL, headers and extensions for the next ones,
with the new body. Everything else (sending, auth hooks, error mapping, responses) is the
SDK's, unchanged.

This overrides the SDK's private ``_build_request``, which is why ``openai`` is pinned to
one release; ``tests/unit/test_request_templates.py`` checks that a templated request is
the one the SDK itself builds. Any request the template could not reproduce faithfully
(query parameters, custom headers, files, JSON left for the SDK to encode, a key that can
change, cookies the upstream set) is built by the SDK as before.
"""

from __future__ import annotations

from typing import Any

import openai
from openai._models import FinalRequestOptions

from chatbot.llm.http import httpx

_DEFAULT_SECURITY = FinalRequestOptions.model_fields["security"].default
_MAX_TEMPLATES = 16


class _Template:
    __slots__ = ("method", "url", "headers", "extensions", "timeout", "api_key")

    def __init__(self, request: httpx.Request, timeout: Any, api_key: str) -> None:
        self.method = request.method
        self.url = request.url
        headers = request.headers.copy()
        headers.pop("content-length", None)  # the body's own is added per request
        self.headers = headers
        self.extensions = request.extensions
        self.timeout = timeout  # the options' own object: the key holds its id
        self.api_key = api_key


class TemplatedOpenAI(openai.AsyncOpenAI):
    """``openai.AsyncOpenAI`` that builds repeated requests from a template (see above)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._templates: dict[tuple, _Template] = {}

    @property
    def user_agent(self) -> str:
        # The SDK names itself after the client's class: say what it would say.
        return f"{openai.AsyncOpenAI.__name__}/Python {self._version}"

    def _build_request(
        self, options: FinalRequestOptions, *, retries_taken: int = 0
    ) -> httpx.Request:
        content = options.content
        if not self._templatable(options, content):
            return super()._build_request(options, retries_taken=retries_taken)
        timeout = options.timeout
        # The client's own timeout, or one the caller keeps and passes each time (its
        # identity, not its value: an ``httpx.Timeout`` is not hashable).
        default = isinstance(timeout, openai.NotGiven)
        key = (options.method, options.url, None if default else id(timeout), retries_taken)
        template = self._templates.get(key)
        if (
            template is None
            or not (default or template.timeout is timeout)
            or template.api_key != self.api_key
        ):
            request = super()._build_request(options, retries_taken=retries_taken)
            if len(self._templates) >= _MAX_TEMPLATES:  # callers building timeouts anew
                self._templates.clear()
            self._templates[key] = _Template(request, timeout, self.api_key)
            return request
        return httpx.Request(
            template.method,
            template.url,
            headers=template.headers,
            content=content,
            extensions=template.extensions,
        )

    def _templatable(self, options: FinalRequestOptions, content: Any) -> bool:
        return (
            isinstance(content, bytes)
            and not options.params
            and isinstance(options.headers, openai.NotGiven)
            and options.files is None
            and options.json_data is None
            and options.extra_json is None
            and options.security == _DEFAULT_SECURITY
            and self._provider_runtime is None
            and self._api_key_provider is None
            and not self._client.cookies
        )
