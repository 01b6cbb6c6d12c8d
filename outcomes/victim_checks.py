"""Checking victims'/survivors' details as a referrer or victim worker gives them.

Pure functions, shared by referral intake and the victim workers' routes. A
problem here is reported (422) but is not a reason to return the referral:
victim details are optional and help partner support, they do not make the
referral appropriate or not.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from programme.platform.errors import FieldError
from referrals.phones import dialable_uk_number

RELATIONSHIPS = ("partner", "ex_partner", "family_member", "other")
FIELDS = frozenset(
    {
        "first_name",
        "last_name",
        "phone",
        "relationship",
        "consent_to_contact",
        "consent_obtained_on",
    }
)


@dataclass(frozen=True)
class VictimDetails:
    first_name: str
    last_name: str | None
    phone: str | None
    """E.164."""
    relationship: str
    consent_to_contact: bool
    consent_obtained_on: date | None


def _text(raw: dict[str, Any], name: str, where: str, errors: list[FieldError]) -> str | None:
    value = raw.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str) or len(value) > 100:
        errors.append(
            FieldError("invalid", f"{where}.{name}", "Expected text of up to 100 characters.")
        )
        return None
    return value.strip()


def check_victim(
    raw: Any, where: str, *, today: date
) -> tuple[VictimDetails | None, list[FieldError]]:
    """One victim's details, or every problem with them."""
    if not isinstance(raw, dict):
        return None, [FieldError("invalid", where, "Expected an object.")]
    errors = [
        FieldError("unknown_field", f"{where}.{name}", "This field is not recognised.")
        for name in raw
        if name not in FIELDS
    ]
    first_name = _text(raw, "first_name", where, errors)
    if first_name is None:
        errors.append(FieldError("invalid", f"{where}.first_name", "This is required."))
    last_name = _text(raw, "last_name", where, errors)
    phone_raw = _text(raw, "phone", where, errors)
    phone = dialable_uk_number(phone_raw) if phone_raw else None
    if phone_raw and phone is None:
        errors.append(FieldError("invalid", f"{where}.phone", "Not a UK number that can be rung."))
    relationship = raw.get("relationship")
    if relationship not in RELATIONSHIPS:
        errors.append(
            FieldError(
                "invalid",
                f"{where}.relationship",
                "Expected one of: " + ", ".join(RELATIONSHIPS) + ".",
            )
        )
    consent = raw.get("consent_to_contact")
    if not isinstance(consent, bool):
        errors.append(FieldError("invalid", f"{where}.consent_to_contact", "Answer true or false."))
    obtained_on = None
    raw_on = raw.get("consent_obtained_on")
    if raw_on is not None:
        try:
            obtained_on = date.fromisoformat(str(raw_on))
        except ValueError:
            errors.append(
                FieldError(
                    "invalid", f"{where}.consent_obtained_on", "Expected a date as YYYY-MM-DD."
                )
            )
        else:
            if obtained_on > today:
                errors.append(
                    FieldError(
                        "invalid", f"{where}.consent_obtained_on", "Cannot be in the future."
                    )
                )
    if consent is True and raw_on is None:
        errors.append(
            FieldError(
                "invalid", f"{where}.consent_obtained_on", "Say when consent to contact was given."
            )
        )
    if errors:
        return None, errors
    assert first_name is not None and isinstance(consent, bool)
    return VictimDetails(
        first_name=first_name,
        last_name=last_name,
        phone=phone,
        relationship=str(relationship),
        consent_to_contact=consent,
        consent_obtained_on=obtained_on,
    ), []


def check_victims(raw: Any, *, today: date) -> tuple[list[VictimDetails], list[FieldError]]:
    if raw is None:
        return [], []
    if not isinstance(raw, list) or len(raw) > 10:
        return [], [FieldError("invalid", "victims", "Expected a list of up to 10 people.")]
    victims, errors = [], []
    for i, item in enumerate(raw):
        victim, problems = check_victim(item, f"victims[{i}]", today=today)
        errors.extend(problems)
        if victim is not None:
            victims.append(victim)
    return victims, errors
