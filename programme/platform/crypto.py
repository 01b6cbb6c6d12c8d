"""Application-level authenticated encryption for victims' details and notes.

Fernet (AES-128-CBC with HMAC-SHA256, from the ``cryptography`` package) with
a key derived from ``INSPIRE_ENCRYPTION_KEY`` by HKDF, so any long random
string can serve as the key. Several comma-separated keys allow rotation: the
first encrypts, all decrypt.
"""

from __future__ import annotations

import base64
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from programme.platform.settings import ConfigurationError, get_settings


def _fernet(secret: str) -> Fernet:
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"inspire-field-encryption", info=b"v1"
    ).derive(secret.encode())
    return Fernet(base64.urlsafe_b64encode(key))


class FieldCipher:
    """Encrypts and decrypts single text values."""

    def __init__(self, secrets: str) -> None:
        keys = [part.strip() for part in secrets.split(",") if part.strip()]
        if not keys or any(len(key) < 16 for key in keys):
            raise ConfigurationError("INSPIRE_ENCRYPTION_KEY must be at least 16 characters")
        self._fernet = MultiFernet([_fernet(key) for key in keys])

    def encrypt(self, value: str | None) -> str | None:
        if value is None:
            return None
        return self._fernet.encrypt(value.encode()).decode()

    def decrypt(self, token: str | None) -> str | None:
        if token is None:
            return None
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise ConfigurationError(
                "an encrypted value cannot be read with INSPIRE_ENCRYPTION_KEY (wrong key?)"
            ) from None


@lru_cache(maxsize=1)
def cipher() -> FieldCipher:
    return FieldCipher(get_settings().encryption_key())
