"""Recognising the same person across referrals, and pseudonyms for monitors."""

from __future__ import annotations

import hashlib
import hmac
import unicodedata
from datetime import date
from uuid import UUID


def _letters(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed.lower() if ch.isalpha())


def match_key(first_name: str, last_name: str, date_of_birth: date) -> str:
    """Name and date of birth with case, accents, spaces and punctuation folded away.

    "Seán O'Neil" and "sean oneil" born the same day are the same key.
    """
    return f"{_letters(last_name)}|{_letters(first_name)}|{date_of_birth.isoformat()}"


def pseudonym(person_id: UUID, secret: str) -> str:
    """A stable, non-reversible id for a person, for monitors' eyes."""
    digest = hmac.new(secret.encode(), b"person:" + person_id.bytes, hashlib.sha256)
    return "P-" + digest.hexdigest()[:12].upper()


AGE_BANDS = ((16, 17), (18, 24), (25, 34), (35, 44), (45, 54), (55, 64))


def age_band(age: int) -> str:
    for low, high in AGE_BANDS:
        if low <= age <= high:
            return f"{low}-{high}"
    return "65+" if age >= 65 else "under 16"
