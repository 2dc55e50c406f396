"""Turn events as JSON values, for a reply read by another process than the one writing it.

Each event kind is defined once, in ``_KINDS``: its tag, its class and the two functions
that turn it into a JSON object and back. ``encode_event`` and ``decode_event`` are the
only ways in or out, so a field added to an event fails the round-trip test until its
line here is updated.

A delta stays a bare JSON string, as it is a bare ``str`` in memory: it is nearly every
event of a reply, and a wrapper object around each would only make the rows longer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chatbot.domain import events
from chatbot.domain.chat_items import as_history
from chatbot.domain.errors import TurnError

JsonObject = dict[str, Any]


def _error(error: TurnError | None) -> JsonObject | None:
    if error is None:
        return None
    return {
        "code": error.code,
        "message": error.message,
        "retryable": error.retryable,
        "status": error.status,
        "retry_after_s": error.retry_after_s,
    }


def _turn_error(value: JsonObject | None) -> TurnError | None:
    if value is None:
        return None
    return TurnError(
        value["code"],
        value["message"],
        value["retryable"],
        status=value["status"],
        retry_after_s=value["retry_after_s"],
    )


def _usage(usage: events.Usage | None) -> JsonObject | None:
    if usage is None:
        return None
    return {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens}


def _decode_usage(value: JsonObject | None) -> events.Usage | None:
    if value is None:
        return None
    return events.Usage(value["prompt_tokens"], value["completion_tokens"])


def _encode_started(event: events.TurnStarted) -> JsonObject:
    return {"history": list(event.history), "prompt": event.prompt}


def _decode_started(value: JsonObject) -> events.TurnStarted:
    return events.TurnStarted(as_history(value["history"]), value["prompt"])


def _encode_step(event: events.StepStarted) -> JsonObject:
    return {"action": event.action}


def _decode_step(value: JsonObject) -> events.StepStarted:
    return events.StepStarted(value["action"])


def _encode_completed(event: events.TurnCompleted) -> JsonObject:
    return {
        "item": event.item,
        "mode": event.mode,
        "timings": {
            "first_delta_ms": event.timings.first_delta_ms,
            "total_ms": event.timings.total_ms,
        },
        "usage": _usage(event.usage),
    }


def _decode_completed(value: JsonObject) -> events.TurnCompleted:
    timings = value["timings"]
    return events.TurnCompleted(
        value["item"],
        value["mode"],
        events.Timings(timings["first_delta_ms"], timings["total_ms"]),
        _decode_usage(value["usage"]),
    )


def _encode_failed(event: events.TurnFailed) -> JsonObject:
    return {"error": _error(event.error), "mode": event.mode, "partial": event.partial}


def _decode_failed(value: JsonObject) -> events.TurnFailed:
    error = _turn_error(value["error"])
    if error is None:
        raise TypeError("a failed turn names its error")
    return events.TurnFailed(error, value["mode"], value["partial"])


def _encode_interrupted(event: events.TurnInterrupted) -> JsonObject:
    return {"partial": event.partial, "mode": event.mode, "error": _error(event.error)}


def _decode_interrupted(value: JsonObject) -> events.TurnInterrupted:
    return events.TurnInterrupted(value["partial"], value["mode"], _turn_error(value["error"]))


_Kind = tuple[str, type, Callable[[Any], JsonObject], Callable[[JsonObject], events.TurnEvent]]

_KINDS: tuple[_Kind, ...] = (
    ("started", events.TurnStarted, _encode_started, _decode_started),
    ("step", events.StepStarted, _encode_step, _decode_step),
    ("completed", events.TurnCompleted, _encode_completed, _decode_completed),
    ("failed", events.TurnFailed, _encode_failed, _decode_failed),
    ("interrupted", events.TurnInterrupted, _encode_interrupted, _decode_interrupted),
)
_ENCODERS = {cls: (tag, encode) for tag, cls, encode, _ in _KINDS}
_DECODERS = {tag: decode for tag, _, _, decode in _KINDS}


def encode_event(event: events.TurnEvent) -> str | JsonObject:
    """The event as a JSON value: a delta as its text, any other event as a tagged object."""
    if type(event) is str:
        return event
    tag, encode = _ENCODERS[type(event)]
    return {"type": tag, **encode(event)}


def decode_event(value: str | JsonObject) -> events.TurnEvent:
    """The event ``encode_event`` made ``value`` from; ``ValueError`` for anything else."""
    if type(value) is str:
        return value
    if not isinstance(value, dict):
        raise ValueError(f"not an encoded turn event: {value!r}")
    decode = _DECODERS.get(value.get("type"))  # type: ignore[arg-type]
    if decode is None:
        raise ValueError(f"unknown turn event type {value.get('type')!r}")
    try:
        return decode(value)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"malformed {value['type']!r} event: {exc!r}") from None
