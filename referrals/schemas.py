"""Request and response bodies for referrals.

A referral is shown in one of three views, by role: ``status`` (referrers:
their own agency's referrals, no personal details once accepted), ``named``
(facilitators and admins) and ``pseudonymous`` (monitors: no name, date of
birth or phone number). The ``view`` field says which one a body is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Annotated, Any, get_args, get_type_hints
from uuid import UUID

import msgspec

from programme.platform.paging import Page
from referrals import rules
from referrals.rules import Status


class MissingDetail(msgspec.Struct):
    field: str
    why: str


class QualityAssessment(msgspec.Struct):
    score: int
    """Percentage of the useful optional details that were given."""
    missing: list[MissingDetail]


class ReferralAccepted(msgspec.Struct):
    id: UUID
    reference: str
    status: str
    received_on: date
    quality: QualityAssessment
    previous_referrals: int
    """Earlier referrals of the same person (a repeat referral when above 0)."""
    victims_recorded: int = 0
    """How many victims/survivors were recorded; their details are never echoed back."""


class EventCreate(msgspec.Struct, forbid_unknown_fields=True):
    type: Status
    on: date
    note: Annotated[str, msgspec.Meta(max_length=2000)] | None = None
    override_reason: Annotated[str, msgspec.Meta(max_length=500)] | None = None
    """Admins only: why this step is dated in a quarter already reported (locked).
    Kept in the audit trail; the quarter is then marked revised since reported."""


class TimelineStep(msgspec.Struct):
    type: str
    on: date


class TimelineEntry(msgspec.Struct):
    type: str
    on: date
    note: str | None
    recorded_by: str | None
    id: int | None = None
    """The step's id, to void it by (``POST /referrals/{id}/events/{event_id}/void``)."""
    voided: bool = False
    """A mistake, voided: shown struck through; it counts for nothing."""
    voided_at: datetime | None = None
    voided_by: str | None = None
    void_reason: str | None = None


class VoidRequest(msgspec.Struct, forbid_unknown_fields=True):
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
    override_reason: Annotated[str, msgspec.Meta(max_length=2000)] | None = None


Value = str | int | bool | None
"""A field's value in a correction's history; dates as YYYY-MM-DD."""


class FieldChange(msgspec.Struct):
    field: str
    old: Value
    new: Value


class HistoryEntry(msgspec.Struct):
    """One change to a record: a correction of its details, or a voided step."""

    kind: str
    """'correction' or 'void'."""
    at: datetime
    by: str | None
    reason: str | None
    changes: list[FieldChange]
    """A correction's fields, earlier and new values (values withheld while restricted)."""
    event_id: int | None = None
    event_type: str | None = None
    event_on: date | None = None


class ReferralHistory(msgspec.Struct):
    referral_id: UUID
    restricted: bool
    """Consent withdrawn: earlier and new values are withheld, as in the record itself."""
    entries: list[HistoryEntry]


class ReferralStatusView(msgspec.Struct, tag_field="view", tag="status"):
    id: UUID
    reference: str
    agency: str
    received_on: date
    status: str
    status_on: date
    timeline: list[TimelineStep]


class ReferralPseudonymousView(msgspec.Struct, tag_field="view", tag="pseudonymous"):
    id: UUID
    pseudonym: str
    """Stable per person, so repeat referrals show, but not reversible."""
    age_band: str
    gender: str
    agency: str
    local_authority: str
    risk_level: str | None
    received_on: date
    status: str
    status_on: date
    timeline: list[TimelineStep]


class ReferralNamedView(msgspec.Struct, tag_field="view", tag="named"):
    id: UUID
    reference: str
    agency: str
    received_on: date
    status: str
    status_on: date
    restricted: bool
    """Consent withdrawn: personal details are withheld and nothing more is recorded."""
    first_name: str | None
    last_name: str | None
    date_of_birth: date | None
    phone: str | None
    gender: str
    local_authority: str
    relationship: str
    risk_level: str | None
    prior_incidents: int | None
    """As the referrer gave it."""
    police_recorded_prior_incidents: int | None
    """Imported police-recorded incidents before the referral date, to check the referrer's
    figure against (shown on a single referral, not in lists)."""
    substance_misuse: bool | None
    mental_health: bool | None
    children_in_household: bool | None
    consent_obtained_on: date
    consent_method: str
    notes: str | None
    quality: QualityAssessment
    previous_references: list[str]
    timeline: list[TimelineEntry]


ReferralView = ReferralStatusView | ReferralPseudonymousView | ReferralNamedView


ReferralPage = Page[ReferralView]


class ReferralSearch(msgspec.Struct, forbid_unknown_fields=True):
    """Find referrals: every term given must match; at least one term.

    Names and dates of birth go in a body, never a URL (URLs are logged by
    proxies and kept in browser histories). Facilitators and admins may search
    by any term; victim workers by any term, among the referrals of the victims
    they support; referrers by reference only, within their own agency.
    """

    reference: Annotated[str, msgspec.Meta(max_length=40)] | None = None
    """Matched whole, whatever its case."""
    name: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    """Any part of the person's first or last name, or both: case, accents, spaces and
    punctuation do not matter."""
    date_of_birth: date | None = None


class ReturnedReferralView(msgspec.Struct):
    """A refused referral as its agency and admins see it: why, when and from whom;
    nothing about the person, which was never kept."""

    id: UUID
    agency: str
    received_on: date
    reasons: list[str]
    """Return reason codes, e.g. consent_missing."""
    source: str
    """'api' or 'import'."""
    submitted_by: str | None
    """The account that submitted it, while it exists."""


# The bodies of a referral and of a victim, for the OpenAPI document only. The
# handlers take the raw JSON, because the intake checks must see every value as
# sent to report every problem at once (and to record a returned referral); so
# these types are never used to decode a request. They are derived from the
# rules, never written out again: the field names from the rules' lists, the
# types from what a passing submission holds, and which fields are required
# from the problems the rules report for an empty body.


def _leave_out_none(kind: Any) -> Any:
    """``X | None`` as ``X``: an optional field is one a client leaves out."""
    kinds = [k for k in get_args(kind) if k is not type(None)]
    return kinds[0] if len(kinds) == 1 and type(None) in get_args(kind) else kind


def _body(
    name: str, about: str, names: Sequence[str], types: Mapping[str, Any], required: set[str]
) -> type[msgspec.Struct]:
    fields = [
        (field, types[field])
        if field in required
        else (field, _leave_out_none(types[field]) | msgspec.UnsetType, msgspec.UNSET)
        for field in names
    ]
    body = msgspec.defstruct(name, fields, kw_only=True, forbid_unknown_fields=True)
    body.__doc__ = about
    return body


_victim_types = get_type_hints(rules.VictimDetails)
VictimSubmission = _body(
    "VictimSubmission",
    "A victim/survivor named by a referrer or a victim worker. Every problem is reported at "
    "once; phone numbers must be UK numbers someone can ring.",
    sorted(rules.FIELDS, key=list(_victim_types).index),
    {
        **_victim_types,
        # Kept as text, but the rules accept only these.
        "relationship": Annotated[
            str, msgspec.Meta(extra_json_schema={"enum": list(rules.RELATIONSHIPS)})
        ],
    },
    {
        problem.field.removeprefix("victim.")
        for problem in rules.check_victim({}, "victim", today=date.min)[1]
    },
)

ReferralSubmission = _body(
    "ReferralSubmission",
    "A referral as submitted. Every consent, completeness and appropriateness check runs and "
    "every failure is reported at once; a refused referral keeps no personal details. "
    "Yes/no answers may also be given as yes/no text, numbers as digits.",
    rules.SUBMISSION_FIELDS,
    {
        **get_type_hints(rules.Submission),
        # Asked, never kept: a referral that passes always has it true.
        "consent_given": bool,
        # Kept as text so that 'other' is read (and refused), but only these are offered.
        "relationship": Annotated[
            str, msgspec.Meta(extra_json_schema={"enum": list(rules.OFFERED_RELATIONSHIPS)})
        ],
        "victims": Annotated[list[VictimSubmission], msgspec.Meta(max_length=10)],  # type: ignore[valid-type]
    },
    {problem.field for problem in rules.check({}, today=date.min, commissioned_areas=()).errors},
)


ReferralCorrection = _body(
    "ReferralCorrection",
    "A correction of an accepted referral: the fields to change, and why. The intake rules "
    "run on the corrected record and every problem is reported at once; a new name or date "
    "of birth runs the same-person check again. The earlier values are kept in its history.",
    [*rules.CORRECTABLE, "reason", "override_reason"],
    {
        **get_type_hints(rules.Submission),
        "reason": Annotated[str, msgspec.Meta(min_length=1, max_length=rules.MAX_REASON)],
        "override_reason": Annotated[str, msgspec.Meta(max_length=rules.MAX_REASON)],
    },
    {"reason"},
)
