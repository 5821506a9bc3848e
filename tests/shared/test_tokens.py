"""Bearer tokens: PyJWT (HS256) under a key derived with HKDF, required claims, expiry."""

from __future__ import annotations

import datetime as dt
from typing import Any

import jwt
import pytest
import time_machine

from shared.auth import (
    ALGORITHM,
    DEFAULT_TTL_SECONDS,
    ISSUER,
    LEEWAY_SECONDS,
    decode_token,
    mint_token,
)
from shared.crypto import derive_key
from shared.errors import Unauthorized

SECRET = "token-test-secret-0123456789abcdef"
ISSUED = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
KEY = derive_key(SECRET, "clipfunnel/token/v2")


def signed(claims: dict[str, Any], key: bytes = KEY, algorithm: str = ALGORITHM) -> str:
    return jwt.encode(claims, key, algorithm=algorithm)


def unsigned(claims: dict[str, Any]) -> str:
    # alg "none" takes no key at all; PyJWT's annotations do not allow None.
    return jwt.encode(claims, None, algorithm="none")  # type: ignore[arg-type]


def full_claims(**changes: Any) -> dict[str, Any]:
    issued = int(ISSUED.timestamp())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "shop1",
        "scope": "catalog:read",
        "iat": issued,
        "exp": issued + 60,
        "jti": "j1",
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def refusal(token: str) -> str:
    with pytest.raises(Unauthorized) as caught:
        decode_token(SECRET, token)
    return caught.value.detail


def test_a_minted_token_is_an_hs256_jwt_with_the_tenant_as_subject() -> None:
    token = mint_token(SECRET, "shop1", ["reports:read", "catalog:read"], token_id="j1")
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    claims = jwt.decode(token, KEY, algorithms=["HS256"], issuer=ISSUER)
    assert claims["sub"] == "shop1"
    assert claims["jti"] == "j1"
    assert claims["scope"] == "catalog:read reports:read"
    principal = decode_token(SECRET, token)
    assert (principal.tenant_id, principal.token_id) == ("shop1", "j1")
    assert principal.scopes == {"catalog:read", "reports:read"}


def test_token_ids_are_unique_and_every_token_expires() -> None:
    with time_machine.travel(ISSUED, tick=False):
        tokens = [mint_token(SECRET, "shop1", ["admin"]) for _ in range(50)]
        principals = [decode_token(SECRET, t) for t in tokens]
    assert len({p.token_id for p in principals}) == 50
    assert {p.expires_at for p in principals} == {int(ISSUED.timestamp()) + DEFAULT_TTL_SECONDS}


def test_the_key_is_derived_with_hkdf_not_the_raw_secret() -> None:
    token = mint_token(SECRET, "shop1", ["admin"])
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, SECRET.encode(), algorithms=["HS256"], issuer=ISSUER)
    assert derive_key(SECRET, "clipfunnel/token/v2") != derive_key(SECRET, "another/purpose")
    assert len(KEY) == 32


def test_a_token_is_valid_until_exp_then_refused() -> None:
    with time_machine.travel(ISSUED, tick=False):
        token = mint_token(SECRET, "shop1", ["admin"], ttl_seconds=60)
    with time_machine.travel(ISSUED + dt.timedelta(seconds=59), tick=False):
        assert decode_token(SECRET, token).tenant_id == "shop1"
    # The leeway tolerates a small clock difference between hosts, no more.
    late = dt.timedelta(seconds=60 + LEEWAY_SECONDS + 1)
    with time_machine.travel(ISSUED + late, tick=False):
        assert "expired" in refusal(token)


def test_an_explicit_clock_replaces_the_systems() -> None:
    token = mint_token(SECRET, "shop1", ["admin"], ttl_seconds=60, now=ISSUED.timestamp())
    expired_at = ISSUED.timestamp() + 60 + LEEWAY_SECONDS
    assert decode_token(SECRET, token, now=0).token_id
    with pytest.raises(Unauthorized, match="expired"):
        decode_token(SECRET, token, now=expired_at)


@pytest.mark.parametrize("claim", ["exp", "jti", "sub", "iss"])
def test_each_required_claim_is_required(claim: str) -> None:
    with time_machine.travel(ISSUED, tick=False):
        assert decode_token(SECRET, signed(full_claims())).tenant_id == "shop1"
        assert "malformed" in refusal(signed(full_claims(**{claim: None})))


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (signed(full_claims(), key=b"k" * 32), "signature"),
        (signed(full_claims(), key=KEY * 2, algorithm="HS512"), "malformed"),
        (unsigned(full_claims()), "malformed"),
        (signed(full_claims(iss="someone-else")), "malformed"),
        (signed(full_claims(sub=7)), "malformed"),
        (signed(full_claims(scope=["admin"])), "malformed"),
        (signed(full_claims(exp="tomorrow")), "malformed"),
        (signed(full_claims(iat=int(ISSUED.timestamp()) + 3600)), "future"),
        ("cf1.eyJ0aWQiOiJ4In0.AAAA", "malformed"),
        ("not-a-token", "malformed"),
    ],
)
def test_tokens_we_did_not_mint_as_given_are_refused(token: str, reason: str) -> None:
    with time_machine.travel(ISSUED, tick=False):
        assert reason in refusal(token)


def test_minting_refuses_unknown_scopes_no_scope_and_no_tenant() -> None:
    with pytest.raises(ValueError, match="unknown scope"):
        mint_token(SECRET, "shop1", ["catalog:everything"])
    with pytest.raises(ValueError, match="at least one scope"):
        mint_token(SECRET, "shop1", [])
    with pytest.raises(ValueError, match="tenant"):
        mint_token(SECRET, "", ["admin"])
