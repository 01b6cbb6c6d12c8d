"""Request and response bodies for programme delivery."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated
from uuid import UUID

import msgspec

from programme.delivery.rules import Mark, SessionKind
from programme.platform.paging import Page

Count = Annotated[int, msgspec.Meta(ge=1, le=1000)]


class ProgrammeSettings(msgspec.Struct):
    name: str
    weeks: int
    core_sessions: int
    completion_min_sessions: int
    exit_review_required: bool
    at_risk_absences: int


class ProgrammeSettingsUpdate(msgspec.Struct, forbid_unknown_fields=True):
    weeks: Count | None = None
    core_sessions: Count | None = None
    completion_min_sessions: Count | None = None
    exit_review_required: bool | None = None
    at_risk_absences: Count | None = None


class GroupCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    starts_on: date
    facilitators: Annotated[list[str], msgspec.Meta(min_length=1, max_length=10)]
    capacity: Annotated[int, msgspec.Meta(ge=1, le=100)]


class Member(msgspec.Struct):
    referral_id: UUID
    reference: str
    status: str
    joined_on: date


class SessionSummary(msgspec.Struct):
    id: UUID
    number: int
    held_on: date
    kind: str
    cancelled: bool = False
    """Cancelled: it stays listed, and its marks count for nothing."""


Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
OverrideReason = Annotated[str, msgspec.Meta(max_length=2000)]


class SessionMove(msgspec.Struct, forbid_unknown_fields=True):
    held_on: date
    """The day the session is (or was really) held."""
    reason: Reason
    override_reason: OverrideReason | None = None


class SessionCancel(msgspec.Struct, forbid_unknown_fields=True):
    reason: Reason
    override_reason: OverrideReason | None = None


class MemberRemove(msgspec.Struct, forbid_unknown_fields=True):
    reason: Reason
    on: date | None = None
    """The day the place ended; today when left out."""


class DeliveryChange(msgspec.Struct):
    """A session moved or cancelled, or a place ended: what was, why, who, when."""

    kind: str
    """'session_moved', 'session_cancelled' or 'member_removed'."""
    session_id: UUID | None
    referral_id: UUID | None
    old_on: date | None
    new_on: date | None
    reason: str
    by: str | None
    at: datetime


class Group(msgspec.Struct):
    id: UUID
    name: str
    starts_on: date
    capacity: int
    facilitators: list[str]
    members: list[Member]
    sessions: list[SessionSummary]
    changes: list[DeliveryChange] = []
    """Sessions moved or cancelled and places ended, oldest first."""


class GroupPlace(msgspec.Struct):
    """The group a referral has a place in now."""

    group_id: UUID
    name: str
    joined_on: date


class MemberAdd(msgspec.Struct, forbid_unknown_fields=True):
    referral_id: UUID
    joined_on: date | None = None


class SessionCreate(msgspec.Struct, forbid_unknown_fields=True):
    number: Annotated[int, msgspec.Meta(ge=1, le=500)]
    held_on: date
    kind: SessionKind = SessionKind.group


class AttendanceMark(msgspec.Struct, forbid_unknown_fields=True):
    referral_id: UUID
    status: Mark


class RegisterLine(msgspec.Struct):
    referral_id: UUID
    reference: str
    status: str
    marked_by: str | None


class Register(msgspec.Struct):
    session_id: UUID
    held_on: date
    marks: list[RegisterLine]
    cancelled: bool = False
    """A cancelled session's marks are kept but count for nothing."""


class RegisterSheet(msgspec.Struct):
    """What a register's page draws: the session, its group's members now and its marks."""

    group_id: UUID
    group_name: str
    session: SessionSummary
    members: list[Member]
    register: Register
    was: dict[UUID, str] = msgspec.field(default_factory=dict)
    """Each mark the save just corrected, by referral: the mark it replaced."""


class ExitReviewCreate(msgspec.Struct, forbid_unknown_fields=True):
    referral_id: UUID
    held_on: date
    override_reason: Annotated[str, msgspec.Meta(max_length=500)] | None = None
    """Admins only: why a completion this review brings is dated in a reported (locked)
    quarter. Kept in the audit trail; the quarter is then marked revised since reported."""


class AtRisk(msgspec.Struct):
    referral_id: UUID
    reference: str
    group: str
    consecutive_absences: int
    last_marked_on: date


class Waiting(msgspec.Struct):
    referral_id: UUID
    reference: str
    engaged_on: date
    days_waiting: int


class WaitingList(msgspec.Struct):
    count: int
    median_days_waiting: float | None
    longest_days_waiting: int | None
    people: Page[Waiting] | None
    """A page of the people waiting (``total`` is ``count``); omitted for monitors, who see
    the counts only."""


class ReferralProgress(msgspec.Struct):
    referral_id: UUID
    status: str
    status_on: date
