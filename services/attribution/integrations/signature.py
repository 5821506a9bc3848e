"""The shops' webhook signatures: base64 HMAC-SHA256 of the raw body, compared in constant time."""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import re
from collections.abc import Iterable

SHOPIFY_HEADER = "X-Shopify-Hmac-Sha256"
WOOCOMMERCE_HEADER = "X-WC-Webhook-Signature"
_PING = re.compile(rb"webhook_id=\d+")


def _mac(key: bytes, raw: bytes) -> bytes:
    return base64.b64encode(hmac.new(key, raw, hashlib.sha256).digest())


def shopify_valid(raw: bytes, header: str | None, secrets: Iterable[str]) -> bool:
    """True if ``header`` signs ``raw`` under any of ``secrets`` (old and new during a rotation)."""
    given = (header or "").encode()
    # Every secret is tried (no early exit) so the time taken says nothing about which matched.
    results = [hmac.compare_digest(_mac(s.encode(), raw), given) for s in secrets]
    return bool(header) and any(results)


def woocommerce_valid(raw: bytes, header: str | None, secrets: Iterable[str]) -> bool:
    """WooCommerce keys the HMAC with the secret after ``wp_specialchars_decode``."""
    given = (header or "").encode()
    results = [hmac.compare_digest(_mac(html.unescape(s).encode(), raw), given) for s in secrets]
    return bool(header) and any(results)


def is_woocommerce_ping(raw: bytes, header: str | None) -> bool:
    """The unsigned ``webhook_id=N`` form post WooCommerce sends when a webhook is saved."""
    return header is None and _PING.fullmatch(raw.strip()) is not None
