"""Keys derived from the configured secrets, and field encryption.

Victims' details and notes are encrypted with Fernet (AES-128-CBC with
HMAC-SHA256, from the ``cryptography`` package) under a key derived from
``INSPIRE_ENCRYPTION_KEY`` by HKDF, so any long random string can serve as the
key. Several comma-separated keys allow rotation: the first encrypts, all
decrypt.

Keyed digests that must stay stable for the life of the data (monitors'
pseudonyms, import fingerprints, generated references) each use their own key,
derived by the same HKDF from ``INSPIRE_PSEUDONYM_KEY``. None of them depends on
the token signing key, so that key can be changed after a leak without
changing a pseudonym or making an imported file look new.
"""

from __future__ import annotations

import base64
from enum import StrEnum
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from programme.platform.settings import (
    ConfigurationError,
    Settings,
    encryption_keys,
    get_settings,
)


class KeyPurpose(StrEnum):
    """What a keyed digest is for; each purpose has a key of its own.

    Separate keys keep one purpose's digests from being matched against
    another's (a pseudonym against a fingerprint, say). The values are HKDF
    inputs: renaming one changes every digest made for that purpose.
    """

    pseudonym = "monitor pseudonym"
    import_fingerprint = "import fingerprint"
    generated_reference = "generated reference"
    returned_person = "returned referral person"


@lru_cache(maxsize=64)
def derive_key(secret: str, salt: bytes, info: bytes) -> bytes:
    """32 bytes for one use of ``secret``; a different ``info`` gives an unrelated key.

    Kept once worked out: pages and routes ask for the same few keys on every request.
    """
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(secret.encode())


def purpose_key(settings: Settings, purpose: KeyPurpose) -> str:
    """The key for ``purpose``'s digests, as hex for the HMAC helpers that take text."""
    return derive_key(settings.pseudonym_key(), b"inspire-keyed-digests", purpose.encode()).hex()


def _fernet(secret: str) -> Fernet:
    key = derive_key(secret, b"inspire-field-encryption", b"v1")
    return Fernet(base64.urlsafe_b64encode(key))


class FieldCipher:
    """Encrypts and decrypts single text values."""

    def __init__(self, secrets: str) -> None:
        self._fernet = MultiFernet([_fernet(key) for key in encryption_keys(secrets)])

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
