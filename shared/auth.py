"""Bearer credentials: HMAC-signed tokens verified locally by each service.

A token is ``cf1.<payload>.<signature>`` where payload is base64url JSON
``{"tid": tenant, "scp": [scopes], "iat": issued, "exp": expiry|null, "jti": token id}`` and the
signature is HMAC-SHA256 under a key derived from ``CLIPFUNNEL_SECRET``. No service stores a
token: a revoked token is remembered by its ``jti`` alone, in each service's ``revoked_tokens``
table, which every replica re-reads every few seconds.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Annotated, Any

import orjson
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.errors import Forbidden, Unauthorized

TOKEN_PREFIX = "cf1"
SCOPES = (
    "catalog:read",
    "catalog:write",
    "events:write",
    "orders:write",
    "reports:read",
    "admin",
    "catalog:sync",
)
# The attribution service's change-feed credential is not bound to one tenant.
ALL_TENANTS = "*"


def _b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signing_key(secret: str) -> bytes:
    # Domain-separated so the same secret can key other things (e.g. secrets at rest).
    return hashlib.sha256(b"clipfunnel/token/v1\x00" + secret.encode()).digest()


@dataclass(frozen=True, slots=True)
class Principal:
    tenant_id: str
    scopes: frozenset[str]
    token_id: str
    expires_at: int | None = None

    def has(self, scope: str) -> bool:
        # admin can do everything within its tenant; catalog:sync is never implied.
        if scope in self.scopes:
            return True
        return "admin" in self.scopes and scope != "catalog:sync"


def mint_token(
    secret: str,
    tenant_id: str,
    scopes: Iterable[str],
    *,
    ttl_seconds: int | None = None,
    now: float | None = None,
    token_id: str | None = None,
) -> str:
    scope_list = sorted(set(scopes))
    unknown = [s for s in scope_list if s not in SCOPES]
    if unknown:
        raise ValueError(f"unknown scope(s) {unknown}; allowed: {', '.join(SCOPES)}")
    if not scope_list:
        raise ValueError("a token needs at least one scope")
    issued = int(now if now is not None else time.time())
    payload = {
        "tid": tenant_id,
        "scp": scope_list,
        "iat": issued,
        "exp": issued + ttl_seconds if ttl_seconds else None,
        "jti": token_id or secrets.token_hex(8),
    }
    body = _b64e(orjson.dumps(payload))
    signed = f"{TOKEN_PREFIX}.{body}"
    sig = hmac.new(_signing_key(secret), signed.encode(), hashlib.sha256).digest()
    return f"{signed}.{_b64e(sig)}"


def decode_token(secret: str, token: str, *, now: float | None = None) -> Principal:
    """Verify a token's signature and expiry; raises Unauthorized with a reason."""
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
        raise Unauthorized("The bearer token is malformed; mint one with `clipfunnel token`.")
    signed = f"{parts[0]}.{parts[1]}"
    expected = hmac.new(_signing_key(secret), signed.encode(), hashlib.sha256).digest()
    try:
        given = _b64d(parts[2])
        payload: dict[str, Any] = orjson.loads(_b64d(parts[1]))
    except (ValueError, orjson.JSONDecodeError):
        raise Unauthorized("The bearer token is malformed.") from None
    if not hmac.compare_digest(expected, given):
        raise Unauthorized("The bearer token's signature is invalid.")
    exp = payload.get("exp")
    current = now if now is not None else time.time()
    if exp is not None and current >= exp:
        raise Unauthorized("The bearer token has expired; mint a new one.")
    return Principal(
        tenant_id=str(payload["tid"]),
        scopes=frozenset(payload.get("scp", ())),
        token_id=str(payload["jti"]),
        expires_at=exp,
    )


RevokedLoader = Callable[[], Awaitable[set[str]]]


@dataclass
class TokenVerifier:
    """Per-app verifier; keeps the revoked token ids cached for a few seconds."""

    secret: str
    load_revoked: RevokedLoader | None = None
    refresh_seconds: float = 5.0
    _revoked: set[str] = field(default_factory=set)
    _loaded_at: float = -1e18

    async def verify(self, token: str) -> Principal:
        principal = decode_token(self.secret, token)
        if (
            self.load_revoked is not None
            and time.monotonic() - self._loaded_at > self.refresh_seconds
        ):
            try:
                self._revoked = await self.load_revoked()
                self._loaded_at = time.monotonic()
            except Exception:
                pass
        if principal.token_id in self._revoked:
            raise Unauthorized("The bearer token has been revoked.")
        return principal

    def forget_cache(self) -> None:
        self._loaded_at = -1e18


_bearer = HTTPBearer(auto_error=False)


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthorized("Missing bearer token: send `Authorization: Bearer <token>`.")
    verifier: TokenVerifier = request.app.state.token_verifier
    principal = await verifier.verify(credentials.credentials)
    request.state.tenant_id = principal.tenant_id
    return principal


def require_scope(scope: str) -> Callable[..., Awaitable[Principal]]:
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope}")

    async def dependency(
        principal: Annotated[Principal, Depends(current_principal)],
    ) -> Principal:
        if not principal.has(scope):
            raise Forbidden(
                f"This token lacks the `{scope}` scope; it has: "
                f"{', '.join(sorted(principal.scopes)) or 'none'}."
            )
        if principal.tenant_id == ALL_TENANTS and scope != "catalog:sync":
            raise Forbidden("A cross-tenant sync token cannot act on a tenant's data.")
        return principal

    dependency.__name__ = f"require_{scope.replace(':', '_')}"
    return dependency
