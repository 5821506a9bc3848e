"""Wire formats of the events API.

``EventIn`` documents one event for OpenAPI. Ingest does not run it: each event is validated
by the hand-written checks in ``validation.py`` (faster on the hot path, and with exact
messages). Both take their enumerations from ``shared.vocabulary``, and a test holds them in
step.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from shared.schemas import ClientId, Schema, UTCDatetime
from shared.vocabulary import EventType, Platform

MAX_PROPERTIES_BYTES = 4096


class EventIn(Schema):
    """One thing a viewer did. Unknown fields are refused."""

    event_id: ClientId = Field(description="The sender's idempotency key, unique per tenant")
    type: EventType
    occurred_at: UTCDatetime = Field(
        description="ISO-8601 with an offset (naive is refused), from 1970 to at most 5 minutes "
        "ahead"
    )
    user_id: ClientId = Field(
        description="The viewer's pseudonymous key: SHA-256 hex of the normalised platform id"
    )
    content_id: ClientId | None = Field(
        default=None,
        description="Required except for `add_to_cart`, `follow`, `reply`, `dm` and `dm_reply`, "
        "or when `click_id` names a known click (its content, product and ad are then "
        "inherited)",
    )
    product_id: ClientId | None = Field(default=None, description="Required for `add_to_cart`")
    ad_id: ClientId | None = None
    click_id: ClientId | None = None
    session_id: ClientId | None = None
    platform: Platform | None = None
    properties: dict[str, Any] | None = Field(
        default=None,
        description=f"A small JSON object (at most {MAX_PROPERTIES_BYTES} bytes serialised), "
        'e.g. {"watch_seconds": 12.5}',
    )
    reply_to: ClientId | None = Field(
        default=None,
        description="`reply` and `dm_reply` only (required): the `event_id` of the comment or "
        "dm answered. It need not be stored yet: a reply that arrives first is kept and "
        "listed as unmatched until its comment arrives.",
    )
    account_id: ClientId | None = Field(
        default=None,
        description="`reply`, `dm` and `dm_reply` only (required for `reply` and `dm`): the "
        "creator account that answers or is written to",
    )


class RejectedItem(BaseModel):
    index: int = Field(description="Position of the event in the posted `events` list")
    event_id: str | None = Field(description="The event's `event_id` as sent, when a string")
    errors: list[str] = Field(description="Why the event was refused, one reason per entry")


class IngestResult(BaseModel):
    received: int
    accepted: int = Field(description="Events stored by this request")
    duplicates: int = Field(
        description="Events already stored (or repeated within the batch): success, stored once"
    )
    rejected: list[RejectedItem]


class ErrorItem(BaseModel):
    loc: list[str | int]
    msg: str


class IngestProblem(BaseModel):
    """The 422 problem+json of ``POST /v1/events``.

    When every event was rejected it carries the fields of a 200 answer besides ``errors``;
    when the body itself has the wrong shape, only the problem fields and ``errors``.
    """

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[ErrorItem]
    received: int | None = None
    accepted: int | None = None
    duplicates: int | None = None
    rejected: list[RejectedItem] | None = None


class RejectedEventOut(BaseModel):
    id: str = Field(description="The rejected record's id (arrival-ordered)")
    index: int = Field(description="Position of the event in the batch it came in")
    event_id: str | None
    errors: list[str]
    payload: Any = Field(description="The event exactly as it was received")
    received_at: UTCDatetime


def batch_request_schema() -> dict[str, Any]:
    """OpenAPI schema of the ``POST /v1/events`` body (the body is parsed by hand)."""
    event = EventIn.model_json_schema()
    assert "$defs" not in event, "EventIn must stay flat to be inlined"
    return {
        "title": "EventBatch",
        "type": "object",
        "required": ["events"],
        "additionalProperties": False,
        "properties": {
            "events": {"type": "array", "minItems": 1, "maxItems": 1000, "items": event},
        },
    }
