"""The attendance register, and the milestones it decides.

Facilitators record marks; the referral's ``started`` and ``completed``
milestones follow from them and are never typed in by hand:

- the first ``attended`` or ``late`` mark starts the referral, dated on that
  session;
- attending ``completion_min_sessions`` core group sessions within ``weeks`` of
  the start, with an exit review when required, completes it, dated when the
  last of those conditions was met;
- a correction that undoes either moves the referral back (only milestones
  the register itself derived are moved);
- ``at_risk_absences`` consecutive unexcused absences raise an at-risk alert for
  partner support (disengagement itself stays a facilitator's decision).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from uuid import UUID

from programme.delivery import schemas
from programme.delivery.services import current_programme, require_group_access
from programme.delivery.tables import (
    PRESENT,
    Attendance,
    ExitReview,
    GroupMember,
    Mark,
    ProgrammeSession,
    SessionKind,
)
from programme.platform.accounts.schemas import Principal
from programme.platform.audit import services as audit
from programme.platform.database import engine
from programme.platform.errors import Conflict, FieldError, InvalidInput, NotFound
from programme.platform.tables import AuditAction
from referrals.rules import Status
from referrals.tables import ParticipantAlert, Referral, ReferralEvent

REGISTER_SOURCE = "register"


async def _register(session_id: UUID) -> schemas.Register:
    session = (
        await ProgrammeSession.select(ProgrammeSession.held_on)
        .where(ProgrammeSession.id == session_id)
        .first()
    )
    assert session is not None
    rows = (
        await Attendance.select(
            Attendance.referral.as_alias("referral_id"),
            Attendance.referral.reference.as_alias("reference"),
            Attendance.status,
            Attendance.marked_by.username.as_alias("marked_by"),
        )
        .where(Attendance.session == session_id)
        .order_by(Attendance.referral.reference)
    )
    return schemas.Register(
        session_id=session_id,
        held_on=session["held_on"],
        marks=[schemas.RegisterLine(**row) for row in rows],
    )


async def _session(session_id: UUID, actor: Principal) -> dict[str, Any]:
    session = await ProgrammeSession.select().where(ProgrammeSession.id == session_id).first()
    if session is None:
        raise NotFound("No such session.")
    await require_group_access(actor, session["group"])
    return session


async def get_register(session_id: UUID, actor: Principal) -> schemas.Register:
    await _session(session_id, actor)
    return await _register(session_id)


async def _check_marks(
    session: dict[str, Any], marks: list[schemas.AttendanceMark], today: date
) -> None:
    """Every problem with a register, all at once."""
    problems: list[FieldError] = []
    if session["held_on"] > today:
        problems.append(
            FieldError(
                "future_session",
                "session",
                "The session is dated in the future; mark it once held.",
            )
        )
    ids = [mark.referral_id for mark in marks]
    members = await GroupMember.select(GroupMember.referral, GroupMember.joined_on).where(
        (GroupMember.group == session["group"]) & GroupMember.referral.is_in(ids or [None])
    )
    member_ids = {m["referral"] for m in members}
    referrals = {
        r["id"]: r
        for r in await Referral.raw(
            "SELECT r.id, r.status, (SELECT max(occurred_on) FROM referral_event"
            " WHERE referral = r.id AND type = 'engaged') AS engaged_on"
            " FROM referral r WHERE r.id = ANY({})",
            ids,
        )
    }
    seen: set[UUID] = set()
    for i, mark in enumerate(marks):
        where = f"[{i}].referral_id"
        if mark.referral_id in seen:
            problems.append(FieldError("duplicate", where, "Marked twice in one register."))
        seen.add(mark.referral_id)
        if mark.referral_id not in member_ids:
            problems.append(FieldError("not_a_member", where, "Not a member of this group."))
            continue
        referral = referrals[mark.referral_id]
        if referral["status"] == Status.withdrawn.value:
            problems.append(
                FieldError("withdrawn", where, "Consent was withdrawn: nothing more is recorded.")
            )
        engaged_on = referral["engaged_on"]
        if mark.status in PRESENT and engaged_on and session["held_on"] < engaged_on:
            problems.append(
                FieldError(
                    "before_engagement",
                    where,
                    f"The session is before this person engaged ({engaged_on}).",
                )
            )
    if problems:
        raise InvalidInput(errors=problems)


async def save_register(
    session_id: UUID, marks: list[schemas.AttendanceMark], actor: Principal, today: date
) -> schemas.Register:
    """Record (or correct) a session's marks; idempotent; derives milestones."""
    session = await _session(session_id, actor)
    await _check_marks(session, marks, today)
    programme = await current_programme()
    async with engine().transaction():
        # One register save at a time per session: the second waits and then
        # finds the first one's marks, so nothing is lost or duplicated.
        await (
            ProgrammeSession.select(ProgrammeSession.id)
            .where(ProgrammeSession.id == session_id)
            .lock_rows()
        )
        existing = {
            row["referral"]: row
            for row in await Attendance.select(
                Attendance.id, Attendance.referral, Attendance.status
            ).where(Attendance.session == session_id)
        }
        changed = sorted(
            {
                mark.referral_id
                for mark in marks
                if existing.get(mark.referral_id, {}).get("status") != mark.status.value
            }
        )
        # Lock the changed people's referrals, in one order, before writing marks: an
        # attendance row's foreign key takes a share lock on its referral, and deriving
        # milestones then needs the update lock, so two registers for the same people
        # (two sessions saved at once) would otherwise deadlock.
        if changed:
            await (
                Referral.select(Referral.id)
                .where(Referral.id.is_in(changed))
                .order_by(Referral.id)
                .lock_rows()
            )
        for mark in marks:
            before = existing.get(mark.referral_id)
            if before is None:
                await Attendance.insert(
                    Attendance(
                        session=session_id,
                        referral=mark.referral_id,
                        status=mark.status.value,
                        marked_by=actor.id,
                    )
                )
                action = AuditAction.create
            elif before["status"] != mark.status.value:
                await Attendance.update(
                    {
                        Attendance.status: mark.status.value,
                        Attendance.marked_by: actor.id,
                        Attendance.marked_at: Attendance.marked_at.default.python(),
                    }
                ).where(Attendance.id == before["id"])
                action = AuditAction.update
            else:
                continue
            detail = {"session": str(session_id), "mark": mark.status.value}
            if before is not None:
                detail["was"] = before["status"]
            await audit.record(actor, action, "attendance", mark.referral_id, detail)
        # Unchanged marks leave the derived milestones as they are.
        for referral_id in changed:
            await derive_milestones(referral_id, programme, actor)
    return await _register(session_id)


async def derive_milestones(referral_id: UUID, programme: dict[str, Any], actor: Principal) -> None:
    """Bring a referral's started/completed milestones and alerts in line with the register."""
    referral = (
        await Referral.select(Referral.status, Referral.status_on)
        .where(Referral.id == referral_id)
        .lock_rows()
        .first()
    )
    assert referral is not None
    status = Status(referral["status"])
    marks = await Attendance.raw(
        "SELECT a.status, s.held_on, s.kind FROM attendance a"
        " JOIN programme_session s ON s.id = a.session"
        " WHERE a.referral = {} ORDER BY s.held_on, s.number",
        referral_id,
    )
    events = {
        e["type"]: e
        for e in await ReferralEvent.select(
            ReferralEvent.id, ReferralEvent.type, ReferralEvent.occurred_on, ReferralEvent.source
        ).where(ReferralEvent.referral == referral_id)
    }
    present = [m for m in marks if m["status"] in PRESENT]
    new_status, new_on = status, referral["status_on"]

    started = events.get(Status.started.value)
    if present and status == Status.engaged:
        started_on = present[0]["held_on"]
        await _add_event(referral_id, Status.started, started_on, actor)
        new_status, new_on = Status.started, started_on
    elif started and started["source"] == REGISTER_SOURCE and status == Status.started:
        if not present:
            await _remove_event(started["id"])
            engaged = events[Status.engaged.value]
            new_status, new_on = Status.engaged, engaged["occurred_on"]
        elif present[0]["held_on"] != started["occurred_on"]:
            await _move_event(started["id"], present[0]["held_on"])
            new_on = present[0]["held_on"]

    if new_status in (Status.started, Status.completed):
        met_on = await _completion_met_on(referral_id, present, programme, events)
        completed = events.get(Status.completed.value)
        if met_on is not None and new_status == Status.started:
            await _add_event(referral_id, Status.completed, met_on, actor)
            new_status, new_on = Status.completed, met_on
        elif completed and completed["source"] == REGISTER_SOURCE:
            if met_on is None:
                await _remove_event(completed["id"])
                first = present[0]["held_on"] if present else referral["status_on"]
                new_status, new_on = Status.started, first
            elif met_on != completed["occurred_on"]:
                await _move_event(completed["id"], met_on)
                new_on = met_on

    if (new_status, new_on) != (status, referral["status_on"]):
        await Referral.update(
            {
                Referral.status: new_status.value,
                Referral.status_on: new_on,
                Referral.version: Referral.version + 1,
            }
        ).where(Referral.id == referral_id)
    await _raise_at_risk(referral_id, marks, programme["at_risk_absences"], new_status)


async def _completion_met_on(
    referral_id: UUID,
    present: list[dict[str, Any]],
    programme: dict[str, Any],
    events: dict[str, dict[str, Any]],
) -> date | None:
    if not present:
        return None
    start = present[0]["held_on"]
    window_end = start + timedelta(weeks=programme["weeks"])
    core = [m for m in present if m["kind"] == SessionKind.group and m["held_on"] <= window_end]
    needed = programme["completion_min_sessions"]
    if len(core) < needed:
        return None
    met_on: date = core[needed - 1]["held_on"]
    if programme["exit_review_required"]:
        review = (
            await ExitReview.select(ExitReview.held_on)
            .where(ExitReview.referral == referral_id)
            .first()
        )
        if review is None:
            return None
        met_on = max(met_on, review["held_on"])
    return met_on


async def _add_event(referral_id: UUID, status: Status, on: date, actor: Principal) -> None:
    await ReferralEvent.insert(
        ReferralEvent(
            referral=referral_id,
            type=status.value,
            occurred_on=on,
            recorded_by=actor.id,
            source=REGISTER_SOURCE,
        )
    )
    await audit.record(
        actor,
        AuditAction.update,
        "referral",
        referral_id,
        {"event": status.value, "source": REGISTER_SOURCE},
    )


async def _remove_event(event_id: int) -> None:
    await ReferralEvent.delete().where(ReferralEvent.id == event_id)


async def _move_event(event_id: int, on: date) -> None:
    await ReferralEvent.update({ReferralEvent.occurred_on: on}).where(ReferralEvent.id == event_id)


async def _raise_at_risk(
    referral_id: UUID, marks: list[dict[str, Any]], limit: int, status: Status
) -> None:
    """Alert partner support when the latest marks are ``limit`` unexcused absences."""
    if status not in (Status.engaged, Status.started) or len(marks) < limit:
        return
    latest = marks[-limit:]
    if any(m["status"] != Mark.absent for m in latest):
        return
    run_began = latest[0]["held_on"]
    already = await ParticipantAlert.exists().where(
        (ParticipantAlert.referral == referral_id)
        & (ParticipantAlert.kind == "at_risk")
        & (ParticipantAlert.raised_on >= run_began)
    )
    if not already:
        await ParticipantAlert.insert(
            ParticipantAlert(
                referral=referral_id,
                kind="at_risk",
                raised_on=latest[-1]["held_on"],
                detail={"consecutive_absences": limit},
            )
        )


async def record_exit_review(
    data: schemas.ExitReviewCreate, actor: Principal, today: date
) -> schemas.ReferralProgress:
    """Record the exit review; completion follows if the register already meets the rule."""
    membership = (
        await GroupMember.select(GroupMember.group)
        .where(GroupMember.referral == data.referral_id)
        .order_by(GroupMember.joined_on, ascending=False)
        .first()
    )
    if membership is None:
        raise NotFound("This referral has no group place.")
    await require_group_access(actor, membership["group"])
    if data.held_on > today:
        raise InvalidInput(
            errors=[FieldError("future_date", "held_on", "Cannot be in the future.")]
        )
    programme = await current_programme()
    async with engine().transaction():
        referral = (
            await Referral.select(Referral.status, Referral.status_on)
            .where(Referral.id == data.referral_id)
            .lock_rows()
            .first()
        )
        assert referral is not None
        if referral["status"] not in (Status.started.value, Status.completed.value):
            raise Conflict(
                f"An exit review follows a start; this referral is {referral['status']}."
            )
        if data.held_on < referral["status_on"] and referral["status"] == Status.started.value:
            raise InvalidInput(
                errors=[
                    FieldError(
                        "before_previous_milestone", "held_on", "Cannot be before the start."
                    )
                ]
            )
        if await ExitReview.exists().where(ExitReview.referral == data.referral_id):
            raise Conflict("An exit review is already recorded for this referral.")
        await ExitReview.insert(
            ExitReview(
                referral=data.referral_id,
                held_on=data.held_on,
                recorded_by=actor.id,
            )
        )
        await audit.record(actor, AuditAction.create, "exit_review", data.referral_id)
        await derive_milestones(data.referral_id, programme, actor)
    row = (
        await Referral.select(Referral.status, Referral.status_on)
        .where(Referral.id == data.referral_id)
        .first()
    )
    assert row is not None
    return schemas.ReferralProgress(
        referral_id=data.referral_id, status=row["status"], status_on=row["status_on"]
    )
