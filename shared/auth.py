"""Bearer credentials: JSON Web Tokens (HS256) verified locally by each service.

A token's claims are ``sub`` (the tenant it acts for, ``*`` for the cross-tenant sync
credential), ``scope`` (space-separated scopes), ``iss``, ``iat``, ``exp`` and ``jti`` (the token
id); ``exp``, ``jti``, ``sub`` and ``iss`` are required. The HMAC key is derived with HKDF from
``CLIPFUNNEL_SECRET``. No service stores a token: a revoked token is remembered by its ``jti``
alone, in each service's ``revoked_tokens`` table, which every replica re-reads every few seconds.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Annotated, Any

import jwt
import structlog
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.crypto import derive_key
from shared.errors import Forbidden, RevocationListStale, Unauthorized
from shared.metrics import REVOCATION_RELOAD_FAILURES, REVOCATION_RELOADED

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


RevokedLoader = Callable[[], Awaitable[set[tuple[str, str]]]]
Clock = Callable[[], float]

_log = structlog.get_logger("clipfunnel.auth")


@dataclass
class TokenVerifier:
    """Per-app verifier: checks each token against the revoked ``(tenant, token id)`` list.

    The list is re-read when older than ``refresh_seconds`` (one reload at a time; a failed one
    is retried at most every ``retry_seconds``). A failed reload is logged and counted, and
    the last list stays in use, but only up to ``max_staleness_seconds`` after the last
    successful reload: beyond that, or before any list was read at all, a revoked token could
    pass unnoticed, so every authenticated request is refused with 503 until a reload succeeds.
    """

    secret: str
    load_revoked: RevokedLoader
    refresh_seconds: float = 5.0
    max_staleness_seconds: float = 30.0
    retry_seconds: float = 1.0
    clock: Clock = time.monotonic
    _revoked: frozenset[tuple[str, str]] = frozenset()
    _loaded_at: float | None = None
    _failed_at: float | None = None
    _reload_due: bool = True
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def verify(self, token: str) -> Principal:
        principal = decode_token(self.secret, token)
        revoked = await self.revoked()
        if (principal.tenant_id, principal.token_id) in revoked:
            raise Unauthorized("The bearer token has been revoked; mint a new one.")
        return principal

    async def revoked(self) -> frozenset[tuple[str, str]]:
        """The revoked list, reloaded when due; raises RevocationListStale when too old."""
        if self._reload_wanted():
            if not self._lock.locked():
                if self._failed_at is None or self._age(self._failed_at) >= self.retry_seconds:
                    async with self._lock:
                        if self._reload_wanted():
                            await self._reload()
            elif self._reload_due or not self._usable():
                async with self._lock:  # another request is reloading: its outcome decides
                    pass
        if not self._usable():
            raise RevocationListStale(self._stale_detail(), headers={"Retry-After": "5"})
        return self._revoked

    def forget_cache(self) -> None:
        """Reload the list on the next request (staleness still counts from the last load)."""
        self._reload_due = True
        self._failed_at = None

    def _age(self, since: float) -> float:
        return self.clock() - since

    def _reload_wanted(self) -> bool:
        return (
            self._loaded_at is None
            or self._reload_due
            or self._age(self._loaded_at) > self.refresh_seconds
        )

    def _usable(self) -> bool:
        return (
            self._loaded_at is not None and self._age(self._loaded_at) <= self.max_staleness_seconds
        )

    async def _reload(self) -> None:
        try:
            revoked = await self.load_revoked()
        except Exception as exc:  # any failure: logged, counted, and bounded by the staleness
            self._failed_at = self.clock()
            REVOCATION_RELOAD_FAILURES.inc()
            _log.warning(
                "revoked-token list reload failed",
                error=type(exc).__name__,
                seconds_since_last_reload=(
                    round(self._age(self._loaded_at), 1) if self._loaded_at is not None else None
                ),
                refusing=not self._usable(),
            )
            return
        if self._failed_at is not None:
            _log.info("revoked-token list reloaded again", revoked=len(revoked))
        self._revoked = frozenset(revoked)
        self._loaded_at = self.clock()
        self._failed_at = None
        self._reload_due = False
        REVOCATION_RELOADED.set(time.time())

    def _stale_detail(self) -> str:
        if self._loaded_at is None:
            since = "has not been read yet"
        else:
            since = f"was last read {self._age(self._loaded_at):.0f} s ago"
        return (
            f"The list of revoked tokens {since} (the service database does not answer its "
            "query), so no token can be trusted and authenticated requests are refused until "
            "it reads again. Retry in a few seconds; if this persists, check the service's "
            "database connection (GET /readyz)."
        )


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
