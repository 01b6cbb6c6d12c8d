"""Request and response bodies for victims/survivors, feedback and reoffending."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated
from uuid import UUID

import msgspec

from outcomes.tables import Behaviour, FeelsSafer, Stage
from referrals.rules import RELATIONSHIPS


class ConsentRecord(msgspec.Struct):
    given: bool
    obtained_on: date
    withdrawn_on: date | None


class Victim(msgspec.Struct):
    id: UUID
    referral_id: UUID
    first_name: str
    last_name: str | None
    phone: str | None
    relationship: str
    consent: ConsentRecord | None
    """The latest consent-to-contact record."""
    may_contact: bool


class ConsentChange(msgspec.Struct, forbid_unknown_fields=True):
    given: bool
    on: date
    """When consent was given or refused; for a withdrawal, when it was withdrawn."""
    withdraw: bool = False


Reason = Annotated[str, msgspec.Meta(max_length=2000)]


class FeedbackCreate(msgspec.Struct, forbid_unknown_fields=True):
    stage: Stage
    collected_on: date
    behaviour: Behaviour
    feels_safer: FeelsSafer
    note: Annotated[str, msgspec.Meta(max_length=4000)] | None = None
    reason: Reason | None = None
    """Why a stage already recorded is recorded again (a correction); kept with the
    version it replaces."""
    override_reason: Reason | None = None


class FeedbackVersion(msgspec.Struct):
    """A version of a stage's feedback that a correction replaced."""

    collected_on: date
    behaviour: str
    feels_safer: str
    note: str | None
    recorded_by: str | None
    recorded_at: datetime
    replaced_by: str | None
    replaced_at: datetime
    reason: str | None
    """Why it was replaced, when the correction said."""


class Feedback(msgspec.Struct):
    victim_id: UUID
    stage: str
    collected_on: date
    behaviour: str
    feels_safer: str
    note: str | None
    recorded_by: str | None
    earlier: list[FeedbackVersion] = []
    """The versions it replaced, newest first."""


class VictimCorrection(msgspec.Struct, forbid_unknown_fields=True):
    """A correction of a victim's/survivor's details; consent has its own record."""

    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
    first_name: Annotated[str, msgspec.Meta(max_length=100)] | msgspec.UnsetType = msgspec.UNSET
    last_name: Annotated[str, msgspec.Meta(max_length=100)] | msgspec.UnsetType | None = (
        msgspec.UNSET
    )
    phone: Annotated[str, msgspec.Meta(max_length=100)] | msgspec.UnsetType | None = msgspec.UNSET
    relationship: (
        Annotated[str, msgspec.Meta(extra_json_schema={"enum": list(RELATIONSHIPS)})]
        | msgspec.UnsetType
    ) = msgspec.UNSET


class FieldChange(msgspec.Struct):
    field: str
    old: str | None
    new: str | None


class VictimHistoryEntry(msgspec.Struct):
    at: datetime
    by: str | None
    reason: str | None
    changes: list[FieldChange]


class VictimHistory(msgspec.Struct):
    victim_id: UUID
    entries: list[VictimHistoryEntry]


class Alert(msgspec.Struct):
    kind: str
    raised_on: date
    withdrawn_on: date | None = None
    """Set when the step that raised it was voided as recorded in error: it no longer
    stands (a disengagement that did not happen)."""


class Case(msgspec.Struct):
    """A victim/survivor in a victim worker's caseload, with what support needs at a glance."""

    victim: Victim
    """Their record, with the latest consent to contact and whether contact may be made."""
    reference: str
    """The perpetrator's referral."""
    status: str
    """Where the perpetrator's referral has got to."""
    status_on: date
    latest_alert: Alert | None
    """The perpetrator's latest disengagement or at-risk alert, if any."""


class CaseAlert(msgspec.Struct):
    """A perpetrator's alert, with the caseload's victims it concerns."""

    kind: str
    raised_on: date
    referral_id: UUID
    reference: str
    victim_ids: list[UUID]
    withdrawn_on: date | None = None
    """Set when the step that raised it was voided as recorded in error."""


class PerpetratorProgress(msgspec.Struct):
    """What partner support may know of the referred person's programme."""

    referral_id: UUID
    reference: str
    status: str
    status_on: date
    alerts: list[Alert]


class FeedbackCell(msgspec.Struct):
    quarter: str
    stage: str
    responded: int | str
    """A count, or '<5' when small numbers are suppressed."""
    stopped_or_reduced: int | str
    share: float | None
    ci_low: float | None
    ci_high: float | None
    group: str | None = None
    """The agency or local authority of the perpetrator's referral, when asked ``by`` one."""


class FeedbackReport(msgspec.Struct):
    rows: list[FeedbackCell]
    total_responded: int | str
    total_stopped_or_reduced: int | str
    total_share: float | None
    total_ci_low: float | None
    total_ci_high: float | None
    suppression_threshold: int
    notes: list[str]
    by: str | None = None
    """What ``group`` in each row is: agency or local_authority (None: no breakdown)."""
