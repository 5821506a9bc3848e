"""Bearer credentials: JSON Web Tokens (HS256) verified locally by each service.

A token's claims are ``sub`` (the tenant it acts for, ``*`` for the cross-tenant sync
credential), ``scope`` (space-separated scopes), ``iss``, ``iat``, ``exp`` and ``jti`` (the token
id); ``exp``, ``jti``, ``sub`` and ``iss`` are required. The HMAC key is derived with HKDF from
``CLIPFUNNEL_SECRET``. No service stores a token: a revoked token is remembered by its ``jti``
alone, in each service's ``revoked_tokens`` table (see ``shared.revocation``).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Any, Protocol

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.crypto import derive_key
from shared.errors import Forbidden, Unauthorized

ALGORITHM = "HS256"
ISSUER = "clipfunnel"
REQUIRED_CLAIMS = ("exp", "jti", "sub", "iss")
# Every token expires; without --ttl it lives 90 days (revocation covers a leak before that).
DEFAULT_TTL_SECONDS = 90 * 86_400
# Tolerated clock difference between the host that minted a token and the one verifying it.
LEEWAY_SECONDS = 10
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


def _signing_key(secret: str) -> bytes:
    return derive_key(secret, "clipfunnel/token/v2")


@dataclass(frozen=True, slots=True)
class Principal:
    tenant_id: str
    scopes: frozenset[str]
    token_id: str
    expires_at: int

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
    """A signed token for ``tenant_id``; it expires after ``ttl_seconds`` (default 90 days)."""
    scope_list = sorted(set(scopes))
    unknown = [s for s in scope_list if s not in SCOPES]
    if unknown:
        raise ValueError(f"unknown scope(s) {unknown}; allowed: {', '.join(SCOPES)}")
    if not scope_list:
        raise ValueError("a token needs at least one scope")
    if not tenant_id:
        raise ValueError("a token needs a tenant")
    issued = int(now if now is not None else time.time())
    claims = {
        "iss": ISSUER,
        "sub": tenant_id,
        "scope": " ".join(scope_list),
        "iat": issued,
        "exp": issued + (ttl_seconds or DEFAULT_TTL_SECONDS),
        "jti": token_id or secrets.token_hex(16),
    }
    return jwt.encode(claims, _signing_key(secret), algorithm=ALGORITHM)


def decode_token(secret: str, token: str, *, now: float | None = None) -> Principal:
    """Verify a token's signature, claims and expiry; raises Unauthorized with a reason.

    ``now`` replaces the clock in the expiry check (``clipfunnel revoke`` passes 0, so that a
    token can be revoked whatever its expiry)."""
    own_clock = now is not None
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            _signing_key(secret),
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            leeway=LEEWAY_SECONDS,
            options={
                "require": list(REQUIRED_CLAIMS),
                "verify_exp": not own_clock,
                "verify_iat": not own_clock,
            },
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("The bearer token has expired; mint a new one.") from None
    except jwt.InvalidSignatureError:
        raise Unauthorized("The bearer token's signature is invalid.") from None
    except jwt.ImmatureSignatureError:
        raise Unauthorized(
            "The bearer token is issued in the future; check this host's clock."
        ) from None
    except jwt.InvalidTokenError:
        raise Unauthorized(
            "The bearer token is malformed or not a ClipFunnel token; mint one with "
            "`clipfunnel token`."
        ) from None
    exp, scope = claims["exp"], claims.get("scope", "")
    if not isinstance(exp, int) or not isinstance(scope, str):
        raise Unauthorized("The bearer token is malformed; mint one with `clipfunnel token`.")
    if now is not None and now >= exp + LEEWAY_SECONDS:
        raise Unauthorized("The bearer token has expired; mint a new one.")
    return Principal(
        tenant_id=claims["sub"],
        scopes=frozenset(scope.split()),
        token_id=claims["jti"],
        expires_at=exp,
    )


class Verifier(Protocol):
    """What the auth dependency asks of ``app.state.token_verifier`` (the revocation-aware
    :class:`shared.revocation.TokenVerifier`)."""

    async def verify(self, token: str) -> Principal: ...


_bearer = HTTPBearer(auto_error=False)


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthorized("Missing bearer token: send `Authorization: Bearer <token>`.")
    verifier: Verifier = request.app.state.token_verifier
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


# A route's principal, by the scope it requires: ``principal: ReportsReader``.
CatalogReader = Annotated[Principal, Depends(require_scope("catalog:read"))]
CatalogWriter = Annotated[Principal, Depends(require_scope("catalog:write"))]
CatalogSync = Annotated[Principal, Depends(require_scope("catalog:sync"))]
EventsWriter = Annotated[Principal, Depends(require_scope("events:write"))]
OrdersWriter = Annotated[Principal, Depends(require_scope("orders:write"))]
ReportsReader = Annotated[Principal, Depends(require_scope("reports:read"))]
Admin = Annotated[Principal, Depends(require_scope("admin"))]
