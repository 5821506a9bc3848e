"""The body of ``POST /v1/events`` → its list of decoded events (the events are not checked)."""

from __future__ import annotations

from typing import Any

import orjson

from shared.errors import BadRequest, PayloadTooLarge, UnprocessableEntity


class MalformedJSON(BadRequest):
    type_slug, title = "malformed-json", "Malformed JSON"


def json_type(value: object) -> str:
    """The JSON name of a decoded value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def parse_batch(body: bytes | bytearray, *, max_events: int) -> list[Any]:
    """The raw body → the list of decoded events; the shape is checked, not the events.

    The events stay decoded JSON values (``Any``): validation looks at each one, whatever it is.
    """
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedJSON(
            f"The request body is not valid JSON: {exc.msg} (at byte {exc.pos}).",
            errors=[{"loc": ["body"], "msg": f"malformed JSON: {exc.msg}"}],
        ) from None
    if type(document) is not dict:
        raise UnprocessableEntity(
            f'The body must be a JSON object {{"events": [...]}} (got {json_type(document)}).',
            errors=[{"loc": ["body"], "msg": "must be an object"}],
        )
    if "events" not in document:
        raise UnprocessableEntity(
            'The body must be a JSON object {"events": [...]}; `events` is missing.',
            errors=[{"loc": ["body", "events"], "msg": "required"}],
        )
    extra = sorted(set(document) - {"events"})
    if extra:
        raise UnprocessableEntity(
            f"Unknown top-level field(s): {', '.join(extra)}; only `events` is allowed.",
            errors=[
                {"loc": ["body", name], "msg": "unknown field (not allowed)"} for name in extra
            ],
        )
    events = document["events"]
    if type(events) is not list:
        raise UnprocessableEntity(
            f"`events` must be a list of events (got {json_type(events)}).",
            errors=[{"loc": ["body", "events"], "msg": "must be a list"}],
        )
    if not events:
        raise UnprocessableEntity(
            f"`events` is empty; send 1 to {max_events:,} events.",
            errors=[{"loc": ["body", "events"], "msg": "must hold at least one event"}],
        )
    if len(events) > max_events:
        raise PayloadTooLarge(
            f"The batch holds {len(events)} events; at most {max_events} are accepted per "
            "request. Split it."
        )
    return events
