"""The WebSocket channel: several turns of one conversation on one long-lived connection.

Each prompt starts a reply exactly as ``POST /response`` does (the same checks, the same
frames). The reply runs in a task of its own and a second task forwards its frames, so
the socket keeps reading while it streams: a ``stop`` acts at once, and a prompt sent
meanwhile is refused, not queued behind it. Closing the socket is a disconnect, not a
stop: the reply is written and stored all the same (unless CHATBOT_ON_DISCONNECT=cancel).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect, WebSocketDisconnected

from chatbot.conversations.service import ConversationService
from chatbot.domain.events import OUTCOMES
from chatbot.domain.owners import LOCAL, Caller
from chatbot.turns.registry import TurnRegistry
from chatbot.turns.replies import Reply
from server.authentication import CALLER, Authenticator
from server.deps import ID_PATTERN
from server.error_tables import DOMAIN_ERRORS
from server.errors import ApiError
from server.limits import RateLimiter
from server.oidc import ProviderUnavailable, TokenRefused
from server.protocols.burr_ui import delta_payload
from server.protocols.websocket import (
    MessageRefused,
    event_message,
    parse_message,
    refusal_message,
    refusal_of,
)
from server.routes.chat import check_prompt
from server.routes.replies import stop
from server.schemas import SocketAuthIn, SocketPromptIn, SocketStopIn
from server.settings import ServerSettings

logger = logging.getLogger(__name__)
router = APIRouter(tags=["chat"])

_VALID_ID = re.compile(ID_PATTERN)
# The close code for a socket refused for what it is (bad IDs, no key), not for a message.
POLICY_VIOLATION = 1008
# How long a socket that needs a key may stay open without sending one.
AUTH_TIMEOUT_S = 30.0


@router.websocket("/ws/{project_id}/{app_id}")
async def chat_socket(websocket: WebSocket, project_id: str, app_id: str) -> None:
    settings: ServerSettings = websocket.app.state.settings
    if not origin_allowed(websocket, settings.cors_origins):
        await websocket.close(POLICY_VIOLATION)  # before accept: the handshake gets a 403
        return
    await websocket.accept()
    socket = ChatSocket(
        websocket,
        websocket.app.state.chatbot.conversations,
        websocket.app.state.chatbot.turns,
        settings,
        websocket.app.state.authenticator,
        websocket.app.state.rate_limiter,
        project_id,
        app_id,
    )
    await socket.run()


def origin_allowed(websocket: WebSocket, allowed: list[str]) -> bool:
    """Whether a browser page may open this socket: the UI's own origin or a CORS one.

    A WebSocket is not subject to CORS, so without this any web page could drive the
    chatbot through a visitor's browser (and, for its origin, their session cookie).
    Clients that are not browsers send no Origin and have nothing to forge.
    """
    origin = websocket.headers.get("origin")
    if origin is None or origin in allowed or "*" in allowed:
        return True
    host = websocket.headers.get("host", "")
    return urlsplit(origin).netloc.lower() == host.lower()


@dataclass(eq=False)
class ChatSocket:
    """One accepted socket: authentication, then client messages until it closes."""

    websocket: WebSocket
    conversations: ConversationService
    turns: TurnRegistry
    settings: ServerSettings
    authenticator: Authenticator
    limiter: RateLimiter | None
    # The project as its user named it in the URL; once authenticated, as stored for them.
    project_id: str
    app_id: str
    # The reply whose frames this socket is sending, until its outcome goes out.
    _reply: Reply | None = field(default=None, init=False)
    _forwarder: asyncio.Task[None] | None = field(default=None, init=False)
    # Frames (the forwarder) and refusals (the reading loop) come from two tasks.
    _sending: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)

    async def run(self) -> None:
        if not (_VALID_ID.fullmatch(self.project_id) and _VALID_ID.fullmatch(self.app_id)):
            await self._close(
                MessageRefused(
                    "invalid_id",
                    "Project and conversation IDs are 1-64 of A-Z a-z 0-9 _ -.",
                    reply_to=None,
                )
            )
            return
        try:
            if not await self._authenticate():
                return
            while (data := await self._receive()) is not None:
                try:
                    await self._handle(data)
                except MessageRefused as refused:
                    await self._send(refusal_message(refused))
        except WebSocketDisconnect:
            pass  # the client left while we were answering it
        finally:
            await self._detach()

    async def _receive(self) -> str | bytes | None:
        """The next client message, or None once the client has gone."""
        message = await self.websocket.receive()
        if message["type"] == "websocket.disconnect":
            return None
        return message.get("text") or message.get("bytes") or ""

    async def _authenticate(self) -> bool:
        """True when the socket may be used: no key needed, a header or cookie had it, or
        the first message is ``{"type": "auth", "key": <the key>}``. Else closes it.
        From then on the socket acts for that user, in their own projects."""
        scope = self.websocket.scope
        caller = scope.get(CALLER) if self.authenticator.enabled else LOCAL
        if caller is None:
            caller = await self._key_message()
        if caller is None:
            return False
        self.project_id = caller.project(self.project_id)
        return True

    async def _key_message(self) -> Caller | None:
        """The user whose key is the socket's first message (None: closed, no such key)."""
        try:
            data = await asyncio.wait_for(self._receive(), AUTH_TIMEOUT_S)
        except TimeoutError:
            data = b""
        if data is None:
            return None
        try:
            message = parse_message(data)
        except MessageRefused:
            message = None
        if isinstance(message, SocketAuthIn):
            try:
                caller = await self.authenticator.from_key(message.key)
            except (TokenRefused, ProviderUnavailable):
                caller = None  # a token of the OpenID provider that is not valid (or unknown)
            if caller is not None:
                return caller
        await self._close(
            MessageRefused(
                "unauthorized",
                'This server needs an API key: send {"type": "auth", "key": "<key>"} first '
                "(or the Authorization header, or the session cookie).",
                reply_to=message.type if message is not None else None,
            )
        )
        return None

    async def _handle(self, data: str | bytes) -> None:
        message = parse_message(data)
        if isinstance(message, SocketPromptIn):
            await self._prompt(message.prompt)
        elif isinstance(message, SocketStopIn):
            await self._stop()
        # An auth message on a socket already allowed changes nothing.

    async def _prompt(self, prompt: str) -> None:
        if self._reply is not None:
            raise MessageRefused(
                "reply_in_progress",
                "A reply is streaming on this socket; send the next prompt after its end "
                "(or stop it first).",
                reply_to="prompt",
                retryable=True,
            )
        try:
            self._take_rate_token()
            prompt = check_prompt(prompt, self.settings.max_prompt_chars)
            reply = await self.conversations.start_reply(self.project_id, self.app_id, prompt)
        except (ApiError, *DOMAIN_ERRORS) as error:
            raise refusal_of(error, "prompt") from None
        self._reply = reply
        self._forwarder = asyncio.create_task(self._forward(reply))

    def _take_rate_token(self) -> None:
        if self.limiter is None:
            return
        client = self.websocket.client
        if self.limiter.check(client.host if client else "unknown") > 0:
            raise ApiError(429, "rate_limited", "Too many prompts from this client; wait a moment.")

    async def _stop(self) -> None:
        """Stop the reply being written in this conversation, whoever started it (as
        ``POST /stop``). The socket streaming it hears its ``error`` frame."""
        try:
            await stop(self.turns, self.conversations, self.project_id, self.app_id)
        except (ApiError, *DOMAIN_ERRORS) as error:
            raise refusal_of(error, "stop") from None

    async def _forward(self, reply: Reply) -> None:
        try:
            async for event in reply.log.read():
                if type(event) is str:  # the hot path: one delta, one message
                    await self._send(delta_payload(event).decode())
                    continue
                if isinstance(event, OUTCOMES):
                    # Free before the last frame goes out: a prompt sent in answer to it
                    # is a new turn, not one "while a reply streams".
                    self._reply = None
                text = event_message(event)
                if text is not None:
                    await self._send(text)
        except (WebSocketDisconnect, WebSocketDisconnected):
            pass  # the reading loop sees the client go

    async def _send(self, text: str) -> None:
        async with self._sending:
            await self.websocket.send_text(text)

    async def _close(self, refused: MessageRefused) -> None:
        with contextlib.suppress(WebSocketDisconnect, WebSocketDisconnected):
            await self._send(refusal_message(refused))
            await self.websocket.close(POLICY_VIOLATION, refused.code)

    async def _detach(self) -> None:
        """The socket is done: stop forwarding; a reply still running is a client gone."""
        forwarder, self._forwarder = self._forwarder, None
        if forwarder is not None:
            forwarder.cancel()
            await asyncio.wait([forwarder])
            if not forwarder.cancelled() and (error := forwarder.exception()) is not None:
                logger.error("sending a reply on a WebSocket failed", exc_info=error)
        reply, self._reply = self._reply, None
        if reply is not None and not reply.done:
            self.turns.client_left(reply)
