"""The referral rules, in the domain's words: pure decisions, no database, no HTTP.

- The lifecycle: ``received`` -> ``accepted`` or ``returned`` -> ``contacted`` ->
  ``engaged`` -> ``started`` -> ``completed``; at any point after acceptance a
  referral can end as ``disengaged``, ``withdrawn`` (consent withdrawn) or
  ``closed`` (found inappropriate at assessment).
- Intake: consent, completeness, appropriateness and quality of a submission,
  over a mapping of raw values (JSON values from the API, strings from a CSV
  file), so the API and the importer apply exactly the same rules. Every check
  runs on every submission and every failure is reported.
- Victims named in a referral (and later by victim workers): their details are
  checked here too. A problem with them is reported (422) but is not a reason
  to return the referral: victim details are optional and help partner
  support, they do not make the referral appropriate or not.
- People: recognising the same person across referrals (folded name and date
  of birth), phone numbers a person can be rung on, age bands and pseudonyms
  for monitors.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any, TypeVar
from uuid import UUID

import phonenumbers
from phonenumbers.phonenumberutil import _number_type_helper

from programme.platform.errors import FieldError
from programme.platform.validation import DATE, FUTURE, REQUIRED, UNKNOWN_FIELD, one_of


class Status(StrEnum):
    accepted = "accepted"
    contacted = "contacted"
    engaged = "engaged"
    started = "started"
    completed = "completed"
    disengaged = "disengaged"
    withdrawn = "withdrawn"
    closed = "closed"


class Gender(StrEnum):
    male = "male"
    female = "female"
    other = "other"
    unknown = "unknown"


class Relationship(StrEnum):
    partner = "partner"
    ex_partner = "ex_partner"
    family_member = "family_member"
    other = "other"


class RiskLevel(StrEnum):
    standard = "standard"
    medium = "medium"
    high = "high"


class ConsentMethod(StrEnum):
    verbal = "verbal"
    written = "written"


class ReturnReason(StrEnum):
    """Why a referral was not accepted; reported per agency to coach referrers."""

    consent_missing = "consent_missing"
    incomplete = "incomplete"
    no_contact_number = "no_contact_number"
    under_16 = "under_16"
    not_domestic_abuse = "not_domestic_abuse"
    on_mandated_programme = "on_mandated_programme"
    out_of_area = "out_of_area"


PROGRESS = (Status.accepted, Status.contacted, Status.engaged, Status.started, Status.completed)
"""The forward milestones, in order."""

EXITS = (Status.disengaged, Status.withdrawn, Status.closed)
"""Ways a referral ends early; possible from any open status."""

OPEN = frozenset({Status.accepted, Status.contacted, Status.engaged, Status.started})
"""Statuses in which the person is still being worked with."""

ENDED = frozenset({Status.completed, *EXITS})

DOMESTIC_RELATIONSHIPS = frozenset(
    {Relationship.partner, Relationship.ex_partner, Relationship.family_member}
)
"""The relationships a referral may name: those the programme is for.

``other`` is read (old records and imported files hold it) but never offered:
an answer listing it as a choice and then refusing it would send referrers
round in circles. Nor is it accepted with further questions: the programme is
commissioned for abuse between partners, ex-partners and family members (the
Domestic Abuse Act 2021's "personally connected"), and each of those has its
own choice, so a relationship that is none of them is not domestic abuse. A
referral naming it is returned as ``not_domestic_abuse``, which the
referral-quality report counts so that agencies can be coached.
"""

OFFERED_RELATIONSHIPS = tuple(r.value for r in Relationship if r in DOMESTIC_RELATIONSHIPS)
"""The choices a referral's relationship offers (``DOMESTIC_RELATIONSHIPS``, in order)."""

MINIMUM_AGE = 16

EARLIEST_BIRTH = date(1900, 1, 1)
"""Nobody referred was born before this: an earlier date of birth is a typo (e.g. 0001-01-01)."""

EARLIEST_RECORD = date(2015, 1, 1)
"""No referral, consent or programme event predates this. South Yorkshire's perpetrator work
before Inspire to Change reaches back to 2018; 2015 leaves room for older exports while
refusing typed years like 0201 or 1926, which would otherwise sit in every report."""


def too_early(earliest: date) -> str:
    return f"Cannot be before {earliest.isoformat()}: check the year."


def day_problem(field: str, on: date, today: date) -> FieldError | None:
    """A recorded day must have happened, and not before the tracker's records could begin."""
    if on > today:
        return FieldError("future_date", field, FUTURE)
    if on < EARLIEST_RECORD:
        return FieldError("too_early", field, too_early(EARLIEST_RECORD))
    return None


def backdated(field: str, on: date | None, today: date, days: int) -> FieldError | None:
    """A referral received, or a lifecycle event dated, more than ``days`` before today,
    typed over the API, is refused (``INSPIRE_BACKDATE_DAYS``).

    A quarter's figures are reported soon after it ends; a record typed in today
    but dated long ago changes figures already published, and is more often a
    mistyped year than a late record. Records that really are old come in
    through the import, which checks a whole file at once and says how many
    of its rows are older than this bound (``programme.imports.rules.older_than``).
    """
    if on is None or (today - on).days <= days:
        return None
    earliest = date.fromordinal(today.toordinal() - days)
    return FieldError(
        "backdated",
        field,
        f"Cannot be more than {days} days ago (before {earliest.isoformat()}): "
        "older records come in through the import (POST /imports/referrals).",
    )


def allowed_next(status: Status) -> list[Status]:
    """The event types that may follow ``status``, in lifecycle order."""
    if status in ENDED:
        return []
    following = PROGRESS[PROGRESS.index(status) + 1]
    return [following, *EXITS]


Dated = Sequence[tuple[Status, date]]


def milestone_order_problems(dated: Dated) -> list[tuple[Status, str]]:
    """What is out of lifecycle order in a referral's recorded milestones, as (milestone, why).

    For records made elsewhere (an import): forward milestones must not go back
    in time, a referral ends once, a completed one does not also end early, and
    an ending comes after the last forward milestone. Gaps are allowed here
    (``skipped_milestones`` names them), unlike ``allowed_next`` for live events.
    """
    problems: list[tuple[Status, str]] = []
    progress = [(s, on) for s, on in dated if s in PROGRESS]
    exits = [(s, on) for s, on in dated if s in EXITS]
    for (before, before_on), (after, after_on) in itertools.pairwise(progress):
        if after_on < before_on:
            problems.append((after, f"Cannot be before {before.value}_on."))
    if len(exits) > 1:
        problems.append(
            (exits[1][0], "A referral ends only once: give one of disengaged, withdrawn, closed.")
        )
    if exits and any(s in ENDED for s, _ in progress):
        problems.append((exits[0][0], "A completed referral cannot also have ended early."))
    if exits and progress and exits[0][1] < progress[-1][1]:
        problems.append((exits[0][0], f"Cannot be before {progress[-1][0].value}_on."))
    return problems


def skipped_milestones(dated: Dated) -> list[Status]:
    """Forward milestones missing below the furthest one recorded."""
    reached = {s for s, _ in dated if s in PROGRESS}
    if not reached:
        return []
    furthest = max(PROGRESS.index(s) for s in reached)
    return [s for s in PROGRESS[1:furthest] if s not in reached]


_LIFECYCLE_POSITION = {status: index for index, status in enumerate((*PROGRESS, *EXITS))}


def in_lifecycle_order(dated: Dated) -> list[tuple[Status, date]]:
    """Milestones by date, and on one day in lifecycle order."""
    return sorted(dated, key=lambda item: (item[1], _LIFECYCLE_POSITION[item[0]]))


_PERSONAL_LINES = {
    phonenumbers.PhoneNumberType.FIXED_LINE,
    phonenumbers.PhoneNumberType.MOBILE,
    phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    phonenumbers.PhoneNumberType.VOIP,
    phonenumbers.PhoneNumberType.PERSONAL_NUMBER,
}
"""Lines a person answers; not freephone, premium-rate, pager or company numbers."""


PHONE_NEEDED = "A UK phone number the programme can ring is needed to make contact."
PHONE_INVALID = "Expected a UK landline or mobile number that can be rung, such as 0114 496 0123."


def dialable_uk_number(value: str) -> str | None:
    """The number in E.164 if it is a valid UK number someone could ring, else None."""
    try:
        number = phonenumbers.parse(value, "GB")
    except phonenumbers.NumberParseException:
        return None
    if number.country_code != 44 or uk_line_type(number) not in _PERSONAL_LINES:
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


_UK_REGIONS = tuple(
    (metadata, None if metadata.leading_digits is None else re.compile(metadata.leading_digits))
    for metadata in (
        phonenumbers.PhoneMetadata.metadata_for_region(region, None)
        for region in phonenumbers.COUNTRY_CODE_TO_REGION_CODE[44]
    )
    if metadata is not None
)


def uk_line_type(number: phonenumbers.PhoneNumber) -> int:
    """``phonenumbers.number_type`` of a +44 number (UNKNOWN when invalid), worked out once.

    number_type first finds the number's region (the UK, Guernsey, Jersey, the Isle
    of Man) by working out its type against each region's patterns, then works the
    type out again against the region found: half the time of the whole phone check,
    which is most of an import's checking. This is the same walk, keeping the type
    the region was found by (``tests/referrals/test_uk_line_type.py`` holds it to
    number_type).
    """
    national = phonenumbers.national_significant_number(number)
    for metadata, leading_digits in _UK_REGIONS:
        if leading_digits is not None:
            if leading_digits.match(national):
                return _number_type_helper(national, metadata)
            continue
        found = _number_type_helper(national, metadata)
        if found != phonenumbers.PhoneNumberType.UNKNOWN:
            return found
    return phonenumbers.PhoneNumberType.UNKNOWN


def _letters(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed.lower() if ch.isalpha())


def match_key(first_name: str, last_name: str, date_of_birth: date) -> str:
    """Name and date of birth with case, accents, spaces and punctuation folded away.

    "Seán O'Neil" and "sean oneil" born the same day are the same key.
    """
    return f"{_letters(last_name)}|{_letters(first_name)}|{date_of_birth.isoformat()}"


MIN_NAME_LETTERS = 2
"""A searched name must hold at least this many letters: one letter finds almost everyone."""


@dataclass(frozen=True)
class Search:
    """What a search for referrals asks for, folded as people are matched.

    ``name_words`` are the searched name's words, each folded like ``match_key``
    (case, accents, punctuation away), and ``name_letters`` all of them run
    together. A person is found when every word appears somewhere in their
    folded first or last name (so part of a name finds them: "jord test" finds
    Jordan Testperson, "o neil" finds O'Neil), or when the letters run together
    appear in their first and last names run together, either way round (so
    spacing does not matter: "mcdonald" finds "Mc Donald", "jordantestperson"
    finds Jordan Testperson). A reference is matched whole, whatever its case
    and surrounding spaces; a date of birth exactly. Every term given must match.
    """

    reference: str | None = None
    name_words: tuple[str, ...] = ()
    name_letters: str | None = None
    date_of_birth: date | None = None

    @property
    def identifying(self) -> bool:
        """Whether it asks by who the person is (name or date of birth), not by reference."""
        return self.name_letters is not None or self.date_of_birth is not None

    @property
    def fields(self) -> list[str]:
        """The fields searched by, for the audit trail (names, never values)."""
        given = (
            ("reference", self.reference),
            ("name", self.name_letters),
            ("date_of_birth", self.date_of_birth),
        )
        return [name for name, value in given if value is not None]


def search_terms(
    reference: str | None, name: str | None, date_of_birth: date | None
) -> tuple[Search | None, list[FieldError]]:
    """The search asked for, or every problem with it: at least one term, a name with letters."""
    problems: list[FieldError] = []
    reference = reference.strip() if reference is not None else None
    if reference == "":
        problems.append(FieldError("required", "reference", REQUIRED))
    words: tuple[str, ...] = ()
    letters = None
    if name is not None:
        words = tuple(w for w in (_letters(part) for part in name.split()) if w)
        letters = "".join(words)
        if len(letters) < MIN_NAME_LETTERS:
            problems.append(
                FieldError(
                    "invalid",
                    "name",
                    f"Expected a name of at least {MIN_NAME_LETTERS} letters.",
                )
            )
    if reference is None and name is None and date_of_birth is None:
        problems.append(
            FieldError("required", "", "Give at least one of reference, name and date_of_birth.")
        )
    if problems:
        return None, problems
    return Search(reference, words, letters, date_of_birth), []


def returned_person_fingerprint(
    key: str, agency_id: UUID, first_name: Any, last_name: Any, date_of_birth: Any
) -> str | None:
    """A keyed digest of who a submission is about and which agency sent it, or None.

    A referrer who fixes a refused referral and sends it again has made one
    referral, not two: the resubmission replaces the return it fixes, so the
    referral-quality report counts each refused person once per agency and
    quarter. Returns keep nothing about the person, so they are matched by this
    digest alone: the folded name and date of birth (``match_key``) under a key
    of its own, which cannot be turned back into either. Values are taken as
    given (a refused submission may hold anything); without a name and a
    readable date of birth there is nothing to match, and None.
    """
    if not all(isinstance(v, str) and v.strip() for v in (first_name, last_name)):
        return None
    try:
        born = date.fromisoformat(date_of_birth.strip())
    except (AttributeError, TypeError, ValueError):
        if not isinstance(date_of_birth, date):
            return None
        born = date_of_birth
    text = f"{agency_id}|{match_key(first_name, last_name, born)}"
    return hmac.new(key.encode(), text.encode(), hashlib.sha256).hexdigest()


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
        return None, [FieldError("invalid", where, "Expected a JSON object.")]
    errors = [
        FieldError("unknown_field", f"{where}.{name}", UNKNOWN_FIELD)
        for name in raw
        if name not in FIELDS
    ]
    given = raw.get("first_name")
    first_name = _text(raw, "first_name", where, errors)
    # A value of the wrong kind has had its problem reported already.
    if given is None or (isinstance(given, str) and not given.strip()):
        errors.append(FieldError("required", f"{where}.first_name", REQUIRED))
    last_name = _text(raw, "last_name", where, errors)
    phone_raw = _text(raw, "phone", where, errors)
    phone = dialable_uk_number(phone_raw) if phone_raw else None
    if phone_raw and phone is None:
        errors.append(FieldError("invalid", f"{where}.phone", PHONE_INVALID))
    relationship = raw.get("relationship")
    if isinstance(relationship, str):
        relationship = relationship.strip().lower()
    if relationship is None or relationship == "":
        errors.append(FieldError("required", f"{where}.relationship", REQUIRED))
    elif relationship not in RELATIONSHIPS:
        errors.append(FieldError("invalid", f"{where}.relationship", one_of(RELATIONSHIPS)))
    consent = raw.get("consent_to_contact")
    if consent is None:
        errors.append(FieldError("required", f"{where}.consent_to_contact", REQUIRED))
    elif not isinstance(consent, bool):
        errors.append(
            FieldError("invalid", f"{where}.consent_to_contact", "Expected true or false.")
        )
    obtained_on = None
    raw_on = raw.get("consent_obtained_on")
    if raw_on is not None:
        try:
            obtained_on = date.fromisoformat(str(raw_on))
        except ValueError:
            errors.append(FieldError("invalid", f"{where}.consent_obtained_on", DATE))
        else:
            if obtained_on > today:
                errors.append(FieldError("future_date", f"{where}.consent_obtained_on", FUTURE))
            elif obtained_on < EARLIEST_RECORD:
                errors.append(
                    FieldError(
                        "too_early", f"{where}.consent_obtained_on", too_early(EARLIEST_RECORD)
                    )
                )
    if consent is True and raw_on is None:
        errors.append(
            FieldError(
                "required",
                f"{where}.consent_obtained_on",
                "Say when consent to contact was given.",
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


E = TypeVar("E", bound=StrEnum)


class FieldKind(StrEnum):
    """What a field of a referral holds, as intake reads it."""

    text = "text"
    date = "date"
    choice = "choice"
    yes_no = "yes_no"
    whole_number = "whole_number"
    phone = "phone"
    people = "people"


@dataclass(frozen=True)
class FieldSpec:
    """How intake reads one field: ``check`` reads each field by its spec, and the
    import's data dictionary is made from the same specs, so the two cannot disagree."""

    name: str
    kind: FieldKind
    required: bool
    meaning: str
    reason: ReturnReason = ReturnReason.incomplete
    """Why the referral is returned when a required value is missing or unreadable."""
    choices: type[StrEnum] | None = None
    offered: tuple[str, ...] | None = None
    """The choices shown (all of ``choices`` when None); others may be read but returned."""
    max_length: int | None = None
    earliest: date | None = None
    returned_when: str = ""
    """A readable value that still returns the referral, in words."""
    example: str = ""


REFERENCE_RULE = "Use 3-40 letters, digits, '-', '_' or '/'."
MAX_NAME = 100
MAX_NOTES = 4000

SUBMISSION_SPECS = (
    FieldSpec("reference", FieldKind.text, False, "The referrer's own reference for the "
              "referral; one is generated when left blank.", max_length=40,
              example="SYP-2024-0001"),
    FieldSpec("received_on", FieldKind.date, False, "The day the referral was received "
              "(an API submission without it is received today).", earliest=EARLIEST_RECORD,
              example="2024-05-01"),
    FieldSpec("first_name", FieldKind.text, True, "The person's first name.",
              max_length=MAX_NAME, example="Alex"),
    FieldSpec("last_name", FieldKind.text, True, "The person's last name.",
              max_length=MAX_NAME, example="Example"),
    FieldSpec("date_of_birth", FieldKind.date, True, "The person's date of birth.",
              earliest=EARLIEST_BIRTH, returned_when=f"under {MINIMUM_AGE} on the received date "
              "(under_16)", example="1985-03-27"),
    FieldSpec("gender", FieldKind.choice, True, "The person's gender.", choices=Gender,
              example="male"),
    FieldSpec("phone", FieldKind.phone, True, "A UK landline or mobile number the programme "
              "can ring.", reason=ReturnReason.no_contact_number, example="0114 496 0123"),
    FieldSpec("local_authority", FieldKind.text, True, "The area the person lives in.",
              max_length=MAX_NAME, returned_when="not an area the programme is commissioned "
              "in (out_of_area)", example="Sheffield"),
    FieldSpec("relationship", FieldKind.choice, True, "The person's relationship to the "
              "victim.", choices=Relationship, offered=OFFERED_RELATIONSHIPS,
              returned_when="other (not_domestic_abuse)", example="partner"),
    FieldSpec("risk_level", FieldKind.choice, False, "The DASH risk level.", choices=RiskLevel,
              example="medium"),
    FieldSpec("prior_incidents", FieldKind.whole_number, False, "How many prior "
              "police-recorded incidents.", example="2"),
    FieldSpec("substance_misuse", FieldKind.yes_no, False, "Substance misuse.", example="no"),
    FieldSpec("mental_health", FieldKind.yes_no, False, "Mental health needs.", example="no"),
    FieldSpec("children_in_household", FieldKind.yes_no, False, "Children in the household.",
              example="yes"),
    FieldSpec("on_probation_programme", FieldKind.yes_no, True, "Whether the person is on a "
              "probation programme.", returned_when="yes (on_mandated_programme)", example="no"),
    FieldSpec("consent_given", FieldKind.yes_no, True, "Whether the person agreed to be "
              "referred.", reason=ReturnReason.consent_missing,
              returned_when="no (consent_missing)", example="yes"),
    FieldSpec("consent_obtained_on", FieldKind.date, True, "The day the person agreed.",
              reason=ReturnReason.consent_missing, earliest=EARLIEST_RECORD,
              returned_when="after the received date (consent_missing)", example="2024-04-30"),
    FieldSpec("consent_method", FieldKind.choice, True, "How the person agreed.",
              reason=ReturnReason.consent_missing, choices=ConsentMethod, example="verbal"),
    FieldSpec("notes", FieldKind.text, False, "Context for the first contact.",
              max_length=MAX_NOTES, example=""),
    FieldSpec("victims", FieldKind.people, False, "Victims/survivors named by the referrer "
              "(the API only: a list of people)."),
)  # fmt: skip
SPEC = {spec.name: spec for spec in SUBMISSION_SPECS}
SUBMISSION_FIELDS = tuple(SPEC)

REFERENCE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9/_-]{2,39}$")
_TRUE = ("yes", "true", "y", "1")
_FALSE = ("no", "false", "n", "0")
YES_NO = (*_TRUE, *_FALSE)
"""Every way a yes-or-no value may be written."""
MAX_COUNT = 999_999


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
    """The outcome of checking one submission.

    ``errors`` say what is wrong with each field, in the one vocabulary of
    ``programme.platform.validation`` (``required``, ``invalid``, ``future_date``,
    or the rule broken); ``reasons`` say why the referral is returned, as
    reported per agency: a missing and an unreadable phone number are different
    errors but one reason, no contact number.
    """

    submission: Submission | None
    errors: list[FieldError] = field(default_factory=list)
    reasons: list[ReturnReason] = field(default_factory=list)
    malformed: bool = False
    """True when a value could not be read at all (a bad date, an unknown
    choice), as opposed to a readable referral that fails a rule."""
    received_on: date | None = None
    """The received date if it could be read, even for a refused submission."""


class _Reader:
    """Reads raw values, collecting every problem instead of stopping at the first."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw
        self.errors: list[FieldError] = []
        self.reasons: list[ReturnReason] = []
        self.malformed = False

    def problem(self, code: str, name: str, message: str, reason: ReturnReason | None) -> None:
        self.errors.append(FieldError(code, name, message))
        if reason is not None and reason not in self.reasons:
            self.reasons.append(reason)

    def refuse(self, reason: ReturnReason, name: str, message: str) -> None:
        """A readable value that breaks a rule: the rule is the code and the reason."""
        self.problem(reason.value, name, message, reason)

    def missing(self, name: str, reason: ReturnReason, message: str = REQUIRED) -> None:
        self.problem("required", name, message, reason)

    def bad_value(
        self,
        name: str,
        message: str,
        reason: ReturnReason = ReturnReason.incomplete,
        code: str = "invalid",
    ) -> None:
        self.malformed = True
        self.problem(code, name, message, reason)

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
                self.missing(name, ReturnReason.incomplete)
            return None
        if not isinstance(value, str) or len(value) > max_length:
            self.bad_value(name, f"Expected text of up to {max_length} characters.")
            return None
        return value

    def day(
        self,
        name: str,
        *,
        required: bool,
        earliest: date,
        reason: ReturnReason = ReturnReason.incomplete,
    ) -> date | None:
        value = self.present(name)
        if value is None:
            if required:
                self.missing(name, reason)
            return None
        if isinstance(value, str):
            try:
                parsed = date.fromisoformat(value)
            except ValueError:
                pass
            else:
                if parsed >= earliest:
                    return parsed
                self.bad_value(name, too_early(earliest), reason, code="too_early")
                return None
        self.bad_value(name, DATE, reason)
        return None

    def choice(
        self,
        name: str,
        kind: type[E],
        *,
        required: bool,
        reason: ReturnReason = ReturnReason.incomplete,
        offered: Sequence[str] | None = None,
    ) -> E | None:
        """A value of ``kind``; an unreadable one is told the ``offered`` choices (all, if None)."""
        value = self.present(name)
        if value is None:
            if required:
                self.missing(name, reason)
            return None
        try:
            return kind(str(value).lower() if isinstance(value, str) else value)
        except ValueError:
            choices = offered if offered is not None else [member.value for member in kind]
            self.bad_value(name, one_of(choices), reason)
            return None

    def flag(
        self, name: str, *, required: bool, reason: ReturnReason = ReturnReason.incomplete
    ) -> bool | None:
        value = self.present(name)
        if value is None:
            if required:
                self.missing(name, reason)
            return None
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in YES_NO:
            return value.lower() in _TRUE
        self.bad_value(name, "Expected yes or no (true or false).", reason)
        return None

    def count(self, name: str) -> int | None:
        value = self.present(name)
        if value is None:
            return None
        if isinstance(value, str) and re.fullmatch(r"\d{1,6}", value):
            return int(value)
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_COUNT:
            return value
        self.bad_value(name, f"Expected a whole number from 0 to {MAX_COUNT}.")
        return None

    def read(self, spec: FieldSpec, *, required: bool | None = None) -> Any:
        """The field's value read as its spec says (``required`` overrides the spec's)."""
        must = spec.required if required is None else required
        if spec.kind is FieldKind.text:
            return self.text(spec.name, required=must, max_length=spec.max_length or MAX_NAME)
        if spec.kind is FieldKind.date:
            assert spec.earliest is not None
            return self.day(spec.name, required=must, earliest=spec.earliest, reason=spec.reason)
        if spec.kind is FieldKind.choice:
            assert spec.choices is not None
            return self.choice(
                spec.name, spec.choices, required=must, reason=spec.reason, offered=spec.offered
            )
        if spec.kind is FieldKind.yes_no:
            return self.flag(spec.name, required=must, reason=spec.reason)
        if spec.kind is FieldKind.whole_number:
            return self.count(spec.name)
        raise ValueError(f"{spec.name} is not read by a plain reader")


def whole_years(born_year: Any, born_month_day: Any, on_year: Any, on_month_day: Any) -> Any:
    """Age in whole years, each day given as its year and month * 100 + day.

    Plain numbers or numpy arrays alike, so intake's check on one person and the
    analysis over a million use the one rule. A 29 February birthday counts
    from 1 March in other years.
    """
    return on_year - born_year - (on_month_day < born_month_day)


def age_on(born: date, on: date) -> int:
    """Age in whole years on a day."""
    return int(
        whole_years(born.year, born.month * 100 + born.day, on.year, on.month * 100 + on.day)
    )


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
        if name not in SPEC and name not in extra_fields:
            read.malformed = True
            read.problem("unknown_field", str(name), UNKNOWN_FIELD, None)

    reference = read.read(SPEC["reference"])
    if reference is not None and not REFERENCE_PATTERN.match(reference):
        read.bad_value("reference", REFERENCE_RULE)
        reference = None

    # Left out, a referral is received today; given, it must be a date (an explicit
    # null or blank is a mistake, not a request for today).
    received_on = read.read(SPEC["received_on"], required=True) if "received_on" in raw else today
    if received_on is not None and received_on > today:
        read.bad_value("received_on", FUTURE, code="future_date")

    first_name = read.read(SPEC["first_name"])
    last_name = read.read(SPEC["last_name"])
    born = read.read(SPEC["date_of_birth"])
    if born is not None and born > today:
        read.bad_value("date_of_birth", FUTURE, code="future_date")
    elif born is not None and received_on is not None and age_on(born, received_on) < MINIMUM_AGE:
        read.refuse(
            ReturnReason.under_16,
            "date_of_birth",
            f"The programme is for people aged {MINIMUM_AGE} and over on the day of referral.",
        )
    gender = read.read(SPEC["gender"])

    # Missing or unreadable, the programme cannot ring them: one reason, two problems.
    phone_raw = read.present("phone")
    phone = dialable_uk_number(phone_raw) if isinstance(phone_raw, str) else None
    if phone_raw is None:
        read.missing("phone", SPEC["phone"].reason, PHONE_NEEDED)
    elif phone is None:
        read.problem("invalid", "phone", PHONE_INVALID, SPEC["phone"].reason)

    area = read.read(SPEC["local_authority"])
    if area is not None:
        known = {a.lower(): a for a in commissioned_areas}
        if area.lower() in known:
            area = known[area.lower()]
        else:
            read.refuse(
                ReturnReason.out_of_area,
                "local_authority",
                "The programme is commissioned in: " + ", ".join(commissioned_areas) + ".",
            )

    relationship = read.read(SPEC["relationship"])
    if relationship is not None and relationship not in DOMESTIC_RELATIONSHIPS:
        read.refuse(
            ReturnReason.not_domestic_abuse,
            "relationship",
            "The programme is for abuse between partners, ex-partners or family members; "
            "choose one of: " + ", ".join(OFFERED_RELATIONSHIPS) + ".",
        )

    risk_level = read.read(SPEC["risk_level"])
    prior_incidents = read.read(SPEC["prior_incidents"])
    substance_misuse = read.read(SPEC["substance_misuse"])
    mental_health = read.read(SPEC["mental_health"])
    children = read.read(SPEC["children_in_household"])
    on_probation = read.read(SPEC["on_probation_programme"])
    if on_probation:
        read.refuse(
            ReturnReason.on_mandated_programme,
            "on_probation_programme",
            "People on a probation programme go to Building Better Relationships instead.",
        )

    # Consent not given, not dated or not said how: each a different problem, one reason.
    consent = read.read(SPEC["consent_given"])
    if consent is False:
        read.refuse(
            ReturnReason.consent_missing,
            "consent_given",
            "The programme is voluntary: the person must agree to be referred.",
        )
    consent_on = read.read(SPEC["consent_obtained_on"])
    if consent_on is not None and consent_on > today:
        read.problem("future_date", "consent_obtained_on", FUTURE, ReturnReason.consent_missing)
    elif consent_on is not None and received_on is not None and consent_on > received_on:
        read.refuse(
            ReturnReason.consent_missing,
            "consent_obtained_on",
            "Consent must be obtained before the referral is made.",
        )
    method = read.read(SPEC["consent_method"])

    notes = read.read(SPEC["notes"])
    victims, victim_problems = check_victims(raw.get("victims"), today=today)
    read.errors.extend(victim_problems)

    checked = Checked(
        submission=None,
        errors=read.errors,
        reasons=read.reasons,
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
    return _quality(
        risk_level=submission.risk_level is not None,
        prior_incidents=submission.prior_incidents is not None,
        complex_needs=(
            submission.substance_misuse,
            submission.mental_health,
            submission.children_in_household,
        ),
        victims_with_consent=sum(v.consent_to_contact for v in submission.victims),
        notes=bool(submission.notes),
    )


def draft_quality(raw: Mapping[str, Any]) -> Quality:
    """The same feedback on a referral still being written (the web form's quality panel).

    Reads the answers as given so far, before every check passes: a detail
    counts as given once it has a value, as ``assess_quality`` will count it
    when the referral is accepted.
    """

    def given(name: str) -> Any:
        value = raw.get(name)
        return None if value is None or (isinstance(value, str) and not value.strip()) else value

    victims = raw.get("victims")
    with_consent = (
        sum(isinstance(v, dict) and v.get("consent_to_contact") is True for v in victims)
        if isinstance(victims, list)
        else 0
    )
    return _quality(
        risk_level=given("risk_level") is not None,
        prior_incidents=given("prior_incidents") is not None,
        complex_needs=tuple(
            given(name) for name in ("substance_misuse", "mental_health", "children_in_household")
        ),
        victims_with_consent=with_consent,
        notes=given("notes") is not None,
    )


def _quality(
    *,
    risk_level: bool,
    prior_incidents: bool,
    complex_needs: Sequence[Any],
    victims_with_consent: int,
    notes: bool,
) -> Quality:
    missing: list[MissingDetail] = []
    if not risk_level:
        missing.append(MissingDetail("risk_level", QUALITY_WHY["risk_level"]))
    if not prior_incidents:
        missing.append(MissingDetail("prior_incidents", QUALITY_WHY["prior_incidents"]))
    if any(answer is None for answer in complex_needs):
        missing.append(MissingDetail("complex_needs", QUALITY_WHY["complex_needs"]))
    if victims_with_consent == 0:
        missing.append(MissingDetail("victims", QUALITY_WHY["victims"]))
    if not notes:
        missing.append(MissingDetail("notes", QUALITY_WHY["notes"]))
    total = len(QUALITY_WHY)
    return Quality(score=round(100 * (total - len(missing)) / total), missing=missing)


def person_values(sub: Submission, key: str | None = None) -> dict[str, Any]:
    """The stored person, column by column: the one list both intake and the import write.

    ``key``: the submission's ``match_key``, when the caller has worked it out already
    (the import has, for every row: folding the names again cost it half a second).
    """
    return {
        "first_name": sub.first_name,
        "last_name": sub.last_name,
        "date_of_birth": sub.date_of_birth,
        "phone": sub.phone,
        "gender": sub.gender.value,
        "match_key": key or match_key(sub.first_name, sub.last_name, sub.date_of_birth),
    }


def referral_values(sub: Submission, quality: Quality) -> dict[str, Any]:
    """The stored referral's details from a submission and its quality, column by column.

    Identity, agency, status and dates of the lifecycle are the caller's to add.
    """
    return {
        "received_on": sub.received_on,
        "local_authority": sub.local_authority,
        "relationship": sub.relationship.value,
        "risk_level": sub.risk_level.value if sub.risk_level else None,
        "prior_incidents": sub.prior_incidents,
        "substance_misuse": sub.substance_misuse,
        "mental_health": sub.mental_health,
        "children_in_household": sub.children_in_household,
        "consent_obtained_on": sub.consent_obtained_on,
        "consent_method": sub.consent_method.value,
        "notes": sub.notes,
        "quality_score": quality.score,
        "missing_details": json.dumps([m.field for m in quality.missing]),
    }


# Corrections: a referral's details put right, and mistaken lifecycle steps voided.

NOT_CORRECTABLE = {
    "reference": "A referral's reference is how everyone finds it: it is never changed.",
    "consent_given": "An accepted referral had consent; if it is withdrawn, record 'withdrawn'.",
    "on_probation_programme": "Someone found to be on a probation programme is closed "
    "('closed'), not corrected.",
    "victims": "Victims' details are corrected by victim workers (PATCH /victims/{id}).",
}
"""Fields a correction may not change, each with what to do instead."""

CORRECTABLE = tuple(name for name in SUBMISSION_FIELDS if name not in NOT_CORRECTABLE)
"""The details of an accepted referral a correction may change: every detail a
submission gives but those above."""

IDENTITY_FIELDS = frozenset({"first_name", "last_name", "date_of_birth", "phone"})
"""The fields by which the same person is recognised (``match_key`` and the phone
check of intake): changing one re-runs the same-person check."""

CORRECTION_CONTROL = frozenset({"reason", "override_reason"})
MAX_REASON = 2000


def reason_problems(raw: Mapping[str, Any]) -> list[FieldError]:
    """A correction says why (``reason``, required); ``override_reason`` is optional text.

    A record that others have relied on is changed only with the reason kept
    beside the earlier value, so whoever reads it later can see what happened.
    """
    problems: list[FieldError] = []
    for name, required in (("reason", True), ("override_reason", False)):
        value = raw.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                problems.append(FieldError("required", name, "Say why the record is corrected."))
        elif not isinstance(value, str) or len(value) > MAX_REASON:
            problems.append(
                FieldError("invalid", name, f"Expected text of up to {MAX_REASON} characters.")
            )
    return problems


def submitted_form(stored: Mapping[str, Any]) -> dict[str, Any]:
    """A stored referral's correctable details as the JSON values a submission would carry."""
    raw: dict[str, Any] = {}
    for name in CORRECTABLE:
        value = stored.get(name)
        raw[name] = value.isoformat() if isinstance(value, date) else value
    return raw


def stored_form(sub: Submission) -> dict[str, Any]:
    """The correctable details of a checked submission as they are stored."""
    return {
        name: value.value if isinstance(value, StrEnum) else value
        for name, value in ((name, getattr(sub, name)) for name in CORRECTABLE)
    }


@dataclass(frozen=True)
class CheckedCorrection:
    submission: Submission | None
    """The corrected record, when it passes every intake rule."""
    changed: dict[str, tuple[Any, Any]]
    """Each field whose stored value changes: (earlier, new)."""
    errors: list[FieldError]


def check_correction(
    stored: Mapping[str, Any],
    raw: Mapping[str, Any],
    *,
    today: date,
    commissioned_areas: tuple[str, ...],
) -> CheckedCorrection:
    """A correction of an accepted referral: the same intake rules, on the corrected record.

    ``stored`` is the referral's current details (by ``CORRECTABLE`` name); ``raw``
    the changed fields, as JSON values, with ``reason``. The corrected record must
    pass every check ``check`` makes of a new referral (an under-16 date of birth,
    consent after the referral, an area not commissioned are refused as they are at
    intake); every problem is reported at once. Fields outside ``CORRECTABLE`` are
    refused, saying what to do instead.

    The quality score is not worked out again: it measures what the referrer sent,
    and the referral-quality report coaches referrers by it, so details learned
    later do not raise it.
    """
    errors = reason_problems(raw)
    for name in raw:
        if name in CORRECTION_CONTROL or name in CORRECTABLE:
            continue
        if name in NOT_CORRECTABLE:
            errors.append(FieldError("not_correctable", str(name), NOT_CORRECTABLE[name]))
        else:
            errors.append(FieldError("unknown_field", str(name), UNKNOWN_FIELD))
    given = {name: raw[name] for name in CORRECTABLE if name in raw}
    if not given and not errors:
        errors.append(FieldError("required", "", "Give at least one field to correct."))
    merged = {
        **submitted_form(stored),
        **given,
        "consent_given": True,
        "on_probation_programme": False,
    }
    checked = check(merged, today=today, commissioned_areas=commissioned_areas)
    errors.extend(checked.errors)
    if errors or checked.submission is None:
        return CheckedCorrection(None, {}, errors)
    after = stored_form(checked.submission)
    changed = {
        name: (stored.get(name), after[name])
        for name in CORRECTABLE
        if stored.get(name) != after[name]
    }
    return CheckedCorrection(checked.submission, changed, [])


def identity_changed(changed: Mapping[str, Any]) -> bool:
    """Whether a correction changes who the person is, so the same-person check runs again."""
    return bool(IDENTITY_FIELDS & set(changed))


def received_on_problem(received_on: date, next_step_on: date | None) -> FieldError | None:
    """A corrected received date moves the acceptance with it, so it must stay before the
    steps that followed (a referral is contacted after it is received)."""
    if next_step_on is not None and received_on > next_step_on:
        return FieldError(
            "after_later_milestone",
            "received_on",
            f"Cannot be after the next milestone ({next_step_on.isoformat()}).",
        )
    return None


@dataclass(frozen=True)
class Step:
    """One recorded lifecycle step, as voiding sees it."""

    id: int
    type: Status
    on: date
    source: str
    voided: bool = False


def standing(steps: Sequence[Step]) -> Step | None:
    """The latest step that still counts: the referral's status and its date follow from it.

    Voided steps count for nothing; on one day steps are in lifecycle order.
    """
    counted = [s for s in steps if not s.voided]
    if not counted:
        return None
    return max(counted, key=lambda s: (s.on, _LIFECYCLE_POSITION[s.type], s.id))


def void_problem(steps: Sequence[Step], step: Step) -> FieldError | None:
    """Why a step may not be voided, or None.

    - Never the acceptance: it is the referral itself (and the referral-quality and
      quarterly reports count it as one referral received). A referral that should
      not have been accepted is ``closed``; wrong details are corrected.
    - Not twice.
    - Not ``started`` or ``completed`` derived from the register: they follow from
      the marks, so the register is what is corrected.
    - Only the latest step still counting: the lifecycle goes one step at a time,
      so voiding one below a later step would leave that later step following
      nothing (engaged without contact). Later mistakes are voided first.
    """
    if step.voided:
        return FieldError("already_voided", "", "This step is already voided.")
    if step.type == Status.accepted:
        return FieldError(
            "cannot_void_acceptance",
            "",
            "The acceptance is the referral itself and cannot be voided: correct its details, "
            "or record 'closed' if it should not have been accepted.",
        )
    if step.source == "register":
        return FieldError(
            "derived_from_register",
            "",
            f"'{step.type.value}' follows from the register: correct the register instead.",
        )
    latest = standing(steps)
    if latest is not None and latest.id != step.id:
        return FieldError(
            "not_latest",
            "",
            f"Only the latest step can be voided: void '{latest.type.value}' "
            f"({latest.on.isoformat()}) first.",
        )
    return None


def affected_days(*days: date | None) -> list[date]:
    """The days whose figures a change touches (each quarter holding one may be reported)."""
    return sorted({day for day in days if day is not None})
