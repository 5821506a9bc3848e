"""Key material derived from ``CLIPFUNNEL_SECRET``, and secrets at rest encrypted under it."""

from __future__ import annotations

import base64
import functools
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


@functools.lru_cache(maxsize=16)
def derive_key(secret: str, purpose: str, *, length: int = 32) -> bytes:
    """A key for one ``purpose`` (HKDF-SHA256, the purpose as ``info``): keys for different
    purposes are independent even though they come from the one shared secret."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=purpose.encode())
    return hkdf.derive(secret.encode())


def _fernet(secret: str) -> Fernet:
    # Not HKDF: secrets already stored were encrypted under this key, and must stay readable.
    key = hashlib.sha256(b"clipfunnel/at-rest/v1\x00" + secret.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt_secret(secret: str, plaintext: str) -> str:
    return _fernet(secret).encrypt(plaintext.encode()).decode("ascii")


def decrypt_secret(secret: str, ciphertext: str) -> str:
    try:
        return _fernet(secret).decrypt(ciphertext.encode("ascii")).decode()
    except InvalidToken as exc:
        raise ValueError(
            "stored secret cannot be decrypted with the current CLIPFUNNEL_SECRET"
        ) from exc
