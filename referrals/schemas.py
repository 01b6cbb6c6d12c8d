"""Request and response bodies for referrals.

A referral is shown in one of three views, by role: ``status`` (referrers:
their own agency's referrals, no personal details once accepted), ``named``
(facilitators and admins) and ``pseudonymous`` (monitors: no name, date of
birth or phone number). The ``view`` field says which one a body is.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated
from uuid import UUID

import msgspec

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


class TimelineStep(msgspec.Struct):
    type: str
    on: date


class TimelineEntry(msgspec.Struct):
    type: str
    on: date
    note: str | None
    recorded_by: str | None


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


class ReferralPage(msgspec.Struct):
    items: list[ReferralView]
    total: int
    limit: int
    offset: int
