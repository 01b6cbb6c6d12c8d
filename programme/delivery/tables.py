"""Programme delivery: settings, groups, sessions, attendance, exit reviews."""

from __future__ import annotations

from piccolo.columns import (
    UUID,
    BigSerial,
    Boolean,
    Date,
    ForeignKey,
    Integer,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from programme.delivery.rules import DEFAULT_RULE, Mark, SessionKind
from programme.platform.tables import Account
from referrals.tables import Referral


class Programme(Table):
    """The programme and its completion rule; commissioners change the numbers."""

    id = UUID(primary_key=True)
    name = Varchar(length=100, unique=True)
    weeks = Integer(
        default=DEFAULT_RULE.weeks, help_text="Length of the programme from the first session."
    )
    core_sessions = Integer(
        default=DEFAULT_RULE.core_sessions, help_text="Core group sessions in the course."
    )
    completion_min_sessions = Integer(
        default=DEFAULT_RULE.completion_min_sessions,
        help_text="Core sessions to attend (within the length) to complete.",
    )
    exit_review_required = Boolean(
        default=DEFAULT_RULE.exit_review_required, help_text="Completion needs an exit review."
    )
    at_risk_absences = Integer(
        default=DEFAULT_RULE.at_risk_absences,
        help_text="Consecutive unexcused absences that put someone at risk.",
    )
    updated_at = Timestamptz(default=TimestamptzNow())


class Group(Table):
    """A cohort that meets for the core group sessions."""

    id = UUID(primary_key=True)
    programme = ForeignKey(references=Programme, on_delete=OnDelete.restrict)
    name = Varchar(length=100, unique=True)
    starts_on = Date()
    capacity = Integer(help_text="Most participants at once.")
    created_at = Timestamptz(default=TimestamptzNow())


class GroupFacilitator(Table):
    """Who runs a group; facilitators work only with their own groups."""

    id = UUID(primary_key=True)
    group = ForeignKey(references=Group, on_delete=OnDelete.cascade, index=True)
    account = ForeignKey(references=Account, on_delete=OnDelete.cascade, index=True)


class GroupMember(Table):
    """A participant's place in a group; a transfer ends one place and opens another."""

    id = UUID(primary_key=True)
    group = ForeignKey(references=Group, on_delete=OnDelete.restrict, index=True)
    referral = ForeignKey(references=Referral, on_delete=OnDelete.restrict, index=True)
    joined_on = Date()
    left_on = Date(null=True, default=None, help_text="Set when transferred to another group.")


class ProgrammeSession(Table, tablename="programme_session"):
    """One group session or one-to-one, numbered within its group."""

    id = UUID(primary_key=True)
    group = ForeignKey(references=Group, on_delete=OnDelete.restrict, index=True)
    number = Integer(help_text="Core group sessions are numbered 1..core_sessions.")
    held_on = Date()
    kind = Varchar(length=10, choices=SessionKind)
    cancelled_at = Timestamptz(
        null=True,
        default=None,
        help_text="Set when the session was cancelled: it stays, and its marks count for nothing.",
    )


class DeliveryChange(Table):
    """A session moved or cancelled, or a place in a group ended: what was, why, who, when."""

    id = BigSerial(primary_key=True)
    kind = Varchar(length=20, help_text="'session_moved', 'session_cancelled' or 'member_removed'.")
    group = ForeignKey(references=Group, on_delete=OnDelete.restrict, index=True)
    session = ForeignKey(references=ProgrammeSession, null=True, on_delete=OnDelete.restrict)
    referral = ForeignKey(
        references=Referral,
        null=True,
        on_delete=OnDelete.restrict,
        help_text="The member whose place ended.",
    )
    old_on = Date(null=True, default=None, help_text="The session's date before it moved.")
    new_on = Date(
        null=True, default=None, help_text="The session's new date, or the day a place ended."
    )
    reason = Text(secret=True, help_text="Why.")
    changed_by = ForeignKey(references=Account, null=True, on_delete=OnDelete.set_null)
    changed_at = Timestamptz(default=TimestamptzNow())


class Attendance(Table):
    """The register: one mark per participant per session, corrected in place (audited)."""

    id = UUID(primary_key=True)
    session = ForeignKey(references=ProgrammeSession, on_delete=OnDelete.restrict, index=True)
    referral = ForeignKey(references=Referral, on_delete=OnDelete.restrict, index=True)
    status = Varchar(length=10, choices=Mark)
    marked_by = ForeignKey(references=Account, null=True, on_delete=OnDelete.set_null)
    marked_at = Timestamptz(default=TimestamptzNow())


class ExitReview(Table):
    """The review at the end of the course; part of the completion rule."""

    id = UUID(primary_key=True)
    referral = ForeignKey(references=Referral, on_delete=OnDelete.restrict, unique=True)
    held_on = Date()
    recorded_by = ForeignKey(references=Account, null=True, on_delete=OnDelete.set_null)
    created_at = Timestamptz(default=TimestamptzNow())
