"""Secrets at rest (e.g. webhook secrets) encrypted under a key derived from CLIPFUNNEL_SECRET."""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken


def _fernet(secret: str) -> Fernet:
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
