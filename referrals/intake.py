"""Checking a submitted referral: consent, completeness, appropriateness, quality.

Pure functions over a mapping of raw values (JSON values from the API, strings
from a CSV file), so the API and the importer apply exactly the same rules.
Every check runs on every submission and every failure is reported; nothing
here touches the database.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any, TypeVar

from outcomes.victim_checks import VictimDetails, check_victims
from programme.platform.errors import FieldError
from referrals.phones import dialable_uk_number
from referrals.rules import (
    DOMESTIC_RELATIONSHIPS,
    MINIMUM_AGE,
    ConsentMethod,
    Gender,
    Relationship,
    ReturnReason,
    RiskLevel,
)

E = TypeVar("E", bound=StrEnum)

SUBMISSION_FIELDS = (
    "reference",
    "received_on",
    "first_name",
    "last_name",
    "date_of_birth",
    "gender",
    "phone",
    "local_authority",
    "relationship",
    "risk_level",
    "prior_incidents",
    "substance_misuse",
    "mental_health",
    "children_in_household",
    "on_probation_programme",
    "consent_given",
    "consent_obtained_on",
    "consent_method",
    "notes",
    "victims",
)

REFERENCE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9/_-]{2,39}$")
MAX_NAME = 100
MAX_NOTES = 4000
_TRUE = {"true", "yes", "y", "1"}
_FALSE = {"false", "no", "n", "0"}


@dataclass(frozen=True)
class Submission:
    """A referral that passed every check, with values in their proper types."""

    reference: str | None
    received_on: date
    first_name: str
    last_name: str
    date_of_birth: date
    gender: Gender
    phone: str
    """E.164, e.g. +447700900123."""
    local_authority: str
    relationship: Relationship
    risk_level: RiskLevel | None
    prior_incidents: int | None
    substance_misuse: bool | None
    mental_health: bool | None
    children_in_household: bool | None
    on_probation_programme: bool
    consent_obtained_on: date
    consent_method: ConsentMethod
    notes: str | None
    victims: tuple[VictimDetails, ...] = ()
    """Victims/survivors named by the referrer; kept for victim workers' eyes only."""


QUALITY_WHY = {
    "risk_level": "The DASH risk level sets how urgently to act.",
    "prior_incidents": "Prior police-recorded incidents shape the assessment.",
    "complex_needs": "Say whether substance misuse, mental health needs or children are involved.",
    "victims": "Victim details with consent to contact let partner support keep them safe.",
    "notes": "A few lines of context help the first contact.",
}
"""The useful optional details of a good referral, and why each matters."""


@dataclass(frozen=True)
class MissingDetail:
    field: str
    why: str


@dataclass(frozen=True)
class Quality:
    """What a good referral looks like, and how far this one is from it."""

    score: int
    """Percentage of the useful optional details that were given."""
    missing: list[MissingDetail]


@dataclass
class Checked:
    """The outcome of checking one submission."""

    submission: Submission | None
    errors: list[FieldError] = field(default_factory=list)
    malformed: bool = False
    """True when a value could not be read at all (a bad date, an unknown
    choice), as opposed to a readable referral that fails a rule."""
    received_on: date | None = None
    """The received date if it could be read, even for a refused submission."""

    @property
    def reasons(self) -> list[ReturnReason]:
        seen: list[ReturnReason] = []
        for error in self.errors:
            if error.code in ReturnReason.__members__ and error.code not in seen:
                seen.append(ReturnReason(error.code))
        return seen


class _Reader:
    """Reads raw values, collecting every problem instead of stopping at the first."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw
        self.errors: list[FieldError] = []
        self.malformed = False

    def problem(self, code: str | ReturnReason, name: str, message: str) -> None:
        self.errors.append(FieldError(str(code), name, message))

    def bad_value(self, name: str, message: str) -> None:
        self.malformed = True
        self.problem(ReturnReason.incomplete, name, message)

    def present(self, name: str) -> Any:
        value = self.raw.get(name)
        if isinstance(value, str):
            value = value.strip()
            return value or None
        return value

    def text(self, name: str, *, required: bool, max_length: int = MAX_NAME) -> str | None:
        value = self.present(name)
        if value is None:
            if required:
                self.problem(ReturnReason.incomplete, name, "This is required.")
            return None
        if not isinstance(value, str):
            self.bad_value(name, "Expected text.")
            return None
        if len(value) > max_length:
            self.bad_value(name, f"At most {max_length} characters.")
            return None
        return value

    def day(self, name: str, *, required: bool, code: str = ReturnReason.incomplete) -> date | None:
        value = self.present(name)
        if value is None:
            if required:
                self.problem(code, name, "This date is required.")
            return None
        if isinstance(value, str):
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        self.malformed = True
        self.problem(code, name, "Expected a date as YYYY-MM-DD.")
        return None

    def choice(self, name: str, kind: type[E], *, required: bool) -> E | None:
        value = self.present(name)
        if value is None:
            if required:
                self.problem(ReturnReason.incomplete, name, "This is required.")
            return None
        try:
            return kind(str(value).lower() if isinstance(value, str) else value)
        except ValueError:
            options = ", ".join(member.value for member in kind)
            self.bad_value(name, f"Expected one of: {options}.")
            return None

    def flag(
        self, name: str, *, required: bool, code: str = ReturnReason.incomplete
    ) -> bool | None:
        value = self.present(name)
        if value is None:
            if required:
                self.problem(code, name, "Answer yes or no.")
            return None
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        self.malformed = True
        self.problem(code, name, "Expected yes or no (true or false).")
        return None

    def count(self, name: str) -> int | None:
        value = self.present(name)
        if value is None:
            return None
        if isinstance(value, str) and re.fullmatch(r"\d{1,6}", value):
            return int(value)
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1_000_000:
            return value
        self.bad_value(name, "Expected a whole number, 0 or more.")
        return None


def age_on(born: date, on: date) -> int:
    """Age in whole years on a day (a 29 February birthday counts from 1 March)."""
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def check(
    raw: Mapping[str, Any],
    *,
    today: date,
    commissioned_areas: tuple[str, ...],
    extra_fields: frozenset[str] = frozenset(),
) -> Checked:
    """Run every intake check on one submission.

    ``extra_fields`` names keys the caller handles itself (the importer's
    agency and milestone columns); any other unknown key is an error, so a
    misspelt field is never silently dropped.
    """
    read = _Reader(raw)
    for name in raw:
        if name not in SUBMISSION_FIELDS and name not in extra_fields:
            read.malformed = True
            read.problem("unknown_field", str(name), "This field is not recognised.")

    reference = read.text("reference", required=False, max_length=40)
    if reference is not None and not REFERENCE_PATTERN.match(reference):
        read.bad_value("reference", "Use 3-40 letters, digits, '-', '_' or '/'.")
        reference = None

    received_on = read.day("received_on", required=False) if "received_on" in raw else today
    if received_on is not None and received_on > today:
        read.bad_value("received_on", "Cannot be in the future.")

    first_name = read.text("first_name", required=True)
    last_name = read.text("last_name", required=True)
    born = read.day("date_of_birth", required=True)
    if born is not None and born > today:
        read.bad_value("date_of_birth", "Cannot be in the future.")
    elif born is not None and received_on is not None and age_on(born, received_on) < MINIMUM_AGE:
        read.problem(
            ReturnReason.under_16,
            "date_of_birth",
            f"The programme is for people aged {MINIMUM_AGE} and over on the day of referral.",
        )
    gender = read.choice("gender", Gender, required=True)

    phone_raw = read.present("phone")
    phone = dialable_uk_number(phone_raw) if isinstance(phone_raw, str) else None
    if phone is None:
        read.problem(
            ReturnReason.no_contact_number,
            "phone",
            "A UK phone number the programme can ring is needed to make contact.",
        )

    area = read.text("local_authority", required=True)
    if area is not None:
        known = {a.lower(): a for a in commissioned_areas}
        if area.lower() in known:
            area = known[area.lower()]
        else:
            read.problem(
                ReturnReason.out_of_area,
                "local_authority",
                "The programme is commissioned in: " + ", ".join(commissioned_areas) + ".",
            )

    relationship = read.choice("relationship", Relationship, required=True)
    if relationship is not None and relationship not in DOMESTIC_RELATIONSHIPS:
        read.problem(
            ReturnReason.not_domestic_abuse,
            "relationship",
            "Domestic abuse is between partners, ex-partners or family members.",
        )

    risk_level = read.choice("risk_level", RiskLevel, required=False)
    prior_incidents = read.count("prior_incidents")
    substance_misuse = read.flag("substance_misuse", required=False)
    mental_health = read.flag("mental_health", required=False)
    children = read.flag("children_in_household", required=False)
    on_probation = read.flag("on_probation_programme", required=True)
    if on_probation:
        read.problem(
            ReturnReason.on_mandated_programme,
            "on_probation_programme",
            "People on a probation programme go to Building Better Relationships instead.",
        )

    consent = read.flag("consent_given", required=True, code=ReturnReason.consent_missing)
    if consent is False:
        read.problem(
            ReturnReason.consent_missing,
            "consent_given",
            "The programme is voluntary: the person must agree to be referred.",
        )
    consent_on = read.day("consent_obtained_on", required=True, code=ReturnReason.consent_missing)
    if consent_on is not None and consent_on > today:
        read.problem(
            ReturnReason.consent_missing, "consent_obtained_on", "Cannot be in the future."
        )
    elif consent_on is not None and received_on is not None and consent_on > received_on:
        read.problem(
            ReturnReason.consent_missing,
            "consent_obtained_on",
            "Consent must be obtained before the referral is made.",
        )
    method_raw = read.present("consent_method")
    method: ConsentMethod | None = None
    if method_raw is None:
        read.problem(ReturnReason.consent_missing, "consent_method", "Say how consent was given.")
    else:
        try:
            method = ConsentMethod(str(method_raw).lower())
        except ValueError:
            read.malformed = True
            read.problem(
                ReturnReason.consent_missing, "consent_method", "Expected verbal or written."
            )

    notes = read.text("notes", required=False, max_length=MAX_NOTES)
    victims, victim_problems = check_victims(raw.get("victims"), today=today)
    read.errors.extend(victim_problems)

    checked = Checked(
        submission=None,
        errors=read.errors,
        malformed=read.malformed,
        received_on=received_on,
    )
    if read.errors:
        return checked
    assert first_name and last_name and born and gender and phone and area and relationship
    assert received_on and on_probation is not None and consent_on and method
    checked.submission = Submission(
        reference=reference,
        received_on=received_on,
        first_name=first_name,
        last_name=last_name,
        date_of_birth=born,
        gender=gender,
        phone=phone,
        local_authority=area,
        relationship=relationship,
        risk_level=risk_level,
        prior_incidents=prior_incidents,
        substance_misuse=substance_misuse,
        mental_health=mental_health,
        children_in_household=children,
        on_probation_programme=on_probation,
        consent_obtained_on=consent_on,
        consent_method=method,
        notes=notes,
        victims=tuple(victims),
    )
    return checked


def assess_quality(submission: Submission) -> Quality:
    """Which useful optional details are missing: the 'good referral' feedback."""
    missing: list[MissingDetail] = []
    victims_with_consent = sum(v.consent_to_contact for v in submission.victims)
    if submission.risk_level is None:
        missing.append(MissingDetail("risk_level", QUALITY_WHY["risk_level"]))
    if submission.prior_incidents is None:
        missing.append(
            MissingDetail(
                "prior_incidents", "Prior police-recorded incidents shape the assessment."
            )
        )
    complex_needs = (
        submission.substance_misuse,
        submission.mental_health,
        submission.children_in_household,
    )
    if any(answer is None for answer in complex_needs):
        missing.append(MissingDetail("complex_needs", QUALITY_WHY["complex_needs"]))
    if victims_with_consent == 0:
        missing.append(MissingDetail("victims", QUALITY_WHY["victims"]))
    if not submission.notes:
        missing.append(MissingDetail("notes", QUALITY_WHY["notes"]))
    total = len(QUALITY_WHY)
    return Quality(score=round(100 * (total - len(missing)) / total), missing=missing)
