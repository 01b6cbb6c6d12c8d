"""Request and response bodies for programme delivery."""

from __future__ import annotations

from datetime import date
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


class Group(msgspec.Struct):
    id: UUID
    name: str
    starts_on: date
    capacity: int
    facilitators: list[str]
    members: list[Member]
    sessions: list[SessionSummary]


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
