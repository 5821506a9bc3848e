"""Signed order posts: `X-ClipFunnel-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>`."""

from __future__ import annotations

import hashlib
import hmac
import time

from shared.errors import Unauthorized

HEADER = "X-ClipFunnel-Signature"


def sign(secret: str, body: bytes, timestamp: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def verify(
    secret: str, header: str | None, body: bytes, *, tolerance: int, now: float | None = None
) -> None:
    """Raise Unauthorized unless ``header`` signs ``body`` with ``secret`` within tolerance."""
    if not header:
        raise Unauthorized(
            f"This tenant requires signed order posts: send {HEADER}: t=<unix seconds>,"
            "v1=<hex HMAC-SHA256 of '<t>.<raw body>' under the webhook secret>."
        )
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1" and value:
            candidates.append(value)
    if timestamp is None or not candidates:
        raise Unauthorized(f"The {HEADER} header is malformed; expected t=<unix>,v1=<hex>.")
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise Unauthorized(
            f"The {HEADER} timestamp is more than {tolerance} seconds from now; "
            "sign each request when you send it."
        )
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    # Every candidate is compared (several v1 values allow secret rotation).
    matched = False
    for candidate in candidates:
        matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise Unauthorized(f"The {HEADER} signature does not match the body.")
