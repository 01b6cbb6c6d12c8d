"""Programme delivery: settings, groups, members, sessions, the register, the
waiting list and the at-risk list.

The register decides the ``started`` and ``completed`` milestones (see
``programme.delivery.rules``); facilitators never type them in. A correction
that undoes either moves the referral back (only milestones the register
itself derived are moved). ``at_risk_absences`` consecutive unexcused absences
raise an at-risk alert for partner support (disengagement itself stays a
facilitator's decision).
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

from asyncpg.exceptions import UniqueViolationError

from programme.delivery import queries, rules, schemas
from programme.delivery.rules import DEFAULT_RULE, JOINABLE, PRESENT, SessionKind
from programme.delivery.tables import (
    Attendance,
    DeliveryChange,
    ExitReview,
    Group,
    GroupFacilitator,
    GroupMember,
    Programme,
    ProgrammeSession,
)
from programme.platform import database
from programme.platform.accounts.schemas import Principal
from programme.platform.audit import services as audit
from programme.platform.database import engine
from programme.platform.errors import Conflict, FieldError, InvalidInput, NotFound, NotPermitted
from programme.platform.locked_quarters.services import require_unlocked
from programme.platform.paging import Page, Paging
from programme.platform.tables import Account, AuditAction, RecordType, Role
from referrals.rules import Status, affected_days, allowed_next, day_problem, reason_problems
from referrals.tables import ParticipantAlert, Referral, ReferralEvent

DEFAULT_PROGRAMME = "Inspire to Change"


async def current_programme() -> dict[str, Any]:
    """The programme's settings, creating the commissioned defaults the first time."""
    row = await Programme.select().where(Programme.name == DEFAULT_PROGRAMME).first()
    if row is None:
        rule = asdict(DEFAULT_RULE)
        await database.fetch(
            queries.CREATE_PROGRAMME,
            DEFAULT_PROGRAMME,
            rule["weeks"],
            rule["core_sessions"],
            rule["completion_min_sessions"],
            rule["exit_review_required"],
            rule["at_risk_absences"],
        )
        row = await Programme.select().where(Programme.name == DEFAULT_PROGRAMME).first()
    assert row is not None
    return row


def _settings(row: dict[str, Any]) -> schemas.ProgrammeSettings:
    fields = schemas.ProgrammeSettings.__struct_fields__
    return schemas.ProgrammeSettings(**{name: row[name] for name in fields})


async def programme_settings() -> schemas.ProgrammeSettings:
    return _settings(await current_programme())


async def update_settings(
    change: schemas.ProgrammeSettingsUpdate, actor: Principal
) -> schemas.ProgrammeSettings:
    row = await current_programme()
    merged = {name: getattr(change, name) for name in change.__struct_fields__}
    values = {k: (row[k] if v is None else v) for k, v in merged.items()}
    if values["completion_min_sessions"] > values["core_sessions"]:
        raise InvalidInput(
            errors=[
                FieldError(
                    "invalid",
                    "completion_min_sessions",
                    "Cannot exceed the number of core sessions.",
                )
            ]
        )
    columns = {getattr(Programme, name): value for name, value in values.items()}
    await Programme.update({**columns, Programme.updated_at: datetime.now(UTC)}).where(
        Programme.id == row["id"]
    )
    await audit.record(
        actor, AuditAction.update, RecordType.programme, row["id"], {"fields": list(values)}
    )
    return await programme_settings()


async def require_group_access(actor: Principal, group_id: UUID) -> None:
    """Admins see every group; a facilitator only the groups they facilitate."""
    if not await Group.exists().where(Group.id == group_id):
        raise NotFound("No such group.")
    if actor.role == Role.admin.value:
        return
    facilitates = await GroupFacilitator.exists().where(
        (GroupFacilitator.group == group_id) & (GroupFacilitator.account == actor.id)
    )
    if not facilitates:
        raise NotPermitted("You do not facilitate this group.")


async def create_group(data: schemas.GroupCreate, actor: Principal) -> schemas.Group:
    names = sorted({name.strip().lower() for name in data.facilitators})
    accounts = await Account.select(Account.id, Account.username, Account.role).where(
        Account.username.is_in(names)
    )
    found = {a["username"]: a for a in accounts}
    problems = [
        FieldError("invalid", f"facilitators[{i}]", "No facilitator account by this name.")
        for i, name in enumerate(data.facilitators)
        if found.get(name.strip().lower(), {}).get("role") != Role.facilitator.value
    ]
    if problems:
        raise InvalidInput(errors=problems)
    programme = await current_programme()
    async with engine().transaction():
        try:
            rows = await Group.insert(
                Group(
                    programme=programme["id"],
                    name=data.name.strip(),
                    starts_on=data.starts_on,
                    capacity=data.capacity,
                )
            ).returning(Group.id)
        except UniqueViolationError:
            raise Conflict("A group with this name exists already.") from None
        group_id = rows[0]["id"]
        await GroupFacilitator.insert(
            *[GroupFacilitator(group=group_id, account=found[n]["id"]) for n in names]
        )
        await audit.record(actor, AuditAction.create, RecordType.group, group_id)
    return await get_group(group_id)


async def list_groups(actor: Principal, paging: Paging) -> Page[schemas.Group]:
    query = Group.select(Group.id).order_by(Group.starts_on).order_by(Group.id)
    count = Group.count()
    if actor.role != Role.admin.value:
        mine = GroupFacilitator.select(GroupFacilitator.group).where(
            GroupFacilitator.account == actor.id
        )
        query = query.where(Group.id.is_in(mine))
        count = count.where(Group.id.is_in(mine))
    rows = await query.limit(paging.limit).offset(paging.offset)
    return paging.page([await get_group(row["id"]) for row in rows], await count)


async def get_group(group_id: UUID) -> schemas.Group:
    group = await Group.select().where(Group.id == group_id).first()
    if group is None:
        raise NotFound("No such group.")
    facilitators = await GroupFacilitator.select(
        GroupFacilitator.account.username.as_alias("username")
    ).where(GroupFacilitator.group == group_id)
    members = (
        await GroupMember.select(
            GroupMember.referral.as_alias("referral_id"),
            GroupMember.referral.reference.as_alias("reference"),
            GroupMember.referral.status.as_alias("status"),
            GroupMember.joined_on,
        )
        .where((GroupMember.group == group_id) & GroupMember.left_on.is_null())
        .order_by(GroupMember.joined_on)
    )
    sessions = (
        await ProgrammeSession.select(
            ProgrammeSession.id,
            ProgrammeSession.number,
            ProgrammeSession.held_on,
            ProgrammeSession.kind,
            ProgrammeSession.cancelled_at,
        )
        .where(ProgrammeSession.group == group_id)
        .order_by(ProgrammeSession.held_on)
    )
    return schemas.Group(
        id=group["id"],
        name=group["name"],
        starts_on=group["starts_on"],
        capacity=group["capacity"],
        facilitators=sorted(f["username"] for f in facilitators),
        members=[schemas.Member(**m) for m in members],
        sessions=[_summary(s) for s in sessions],
        changes=await _changes(group_id),
    )


async def group_of(referral_id: UUID) -> schemas.GroupPlace | None:
    """The group a referral has a place in now, if any."""
    row = (
        await GroupMember.select(
            GroupMember.group.as_alias("group_id"),
            GroupMember.group.name.as_alias("name"),
            GroupMember.joined_on,
        )
        .where((GroupMember.referral == referral_id) & GroupMember.left_on.is_null())
        .first()
    )
    return schemas.GroupPlace(**row) if row else None


async def add_member(
    group_id: UUID, data: schemas.MemberAdd, actor: Principal, today: date
) -> schemas.Group:
    """Give an engaged referral a place; a started one moving here is a transfer."""
    await require_group_access(actor, group_id)
    joined_on = data.joined_on or today
    if problem := day_problem("joined_on", joined_on, today):
        raise InvalidInput(errors=[problem])
    async with engine().transaction():
        group = await Group.select(Group.capacity).where(Group.id == group_id).lock_rows().first()
        assert group is not None
        referral = (
            await Referral.select(Referral.status)
            .where(Referral.id == data.referral_id)
            .lock_rows()
            .first()
        )
        if referral is None:
            raise InvalidInput(errors=[FieldError("not_found", "referral_id", "No such referral.")])
        if referral["status"] not in JOINABLE:
            raise Conflict(
                f"Only engaged referrals join a group; this one is {referral['status']}.",
                extra={"status": referral["status"]},
            )
        current = (
            await GroupMember.select(GroupMember.id, GroupMember.group)
            .where((GroupMember.referral == data.referral_id) & GroupMember.left_on.is_null())
            .first()
        )
        if current is not None and current["group"] == group_id:
            raise Conflict("Already a member of this group.")
        occupied = await GroupMember.count().where(
            (GroupMember.group == group_id) & GroupMember.left_on.is_null()
        )
        if occupied >= group["capacity"]:
            raise Conflict("The group is full.", extra={"capacity": group["capacity"]})
        if current is not None:
            await GroupMember.update({GroupMember.left_on: joined_on}).where(
                GroupMember.id == current["id"]
            )
        await GroupMember.insert(
            GroupMember(group=group_id, referral=data.referral_id, joined_on=joined_on)
        )
        await audit.record(
            actor,
            AuditAction.update,
            RecordType.referral,
            data.referral_id,
            {"group": str(group_id), "transfer": current is not None},
        )
    return await get_group(group_id)


async def add_session(
    group_id: UUID, data: schemas.SessionCreate, actor: Principal
) -> schemas.SessionSummary:
    await require_group_access(actor, group_id)
    group = await Group.select(Group.starts_on).where(Group.id == group_id).first()
    assert group is not None
    programme = await current_programme()
    problems = []
    if data.held_on < group["starts_on"]:
        problems.append(FieldError("invalid", "held_on", "Before the group starts."))
    if data.kind == SessionKind.group and data.number > programme["core_sessions"]:
        problems.append(
            FieldError(
                "invalid",
                "number",
                f"The course has {programme['core_sessions']} core sessions.",
            )
        )
    if problems:
        raise InvalidInput(errors=problems)
    try:
        rows = await ProgrammeSession.insert(
            ProgrammeSession(
                group=group_id, number=data.number, held_on=data.held_on, kind=data.kind.value
            )
        ).returning(ProgrammeSession.id)
    except UniqueViolationError as exc:
        if exc.constraint_name == rules.ONE_SESSION_A_DAY:
            raise _session_that_day(data.kind.value, data.held_on) from None
        message = f"This group already has {data.kind.value} session {data.number}."
        raise Conflict(message, errors=[FieldError("duplicate", "number", message)]) from None
    return schemas.SessionSummary(
        id=rows[0]["id"], number=data.number, held_on=data.held_on, kind=data.kind.value
    )


async def _waiting(today: date) -> tuple[list[schemas.Waiting], list[int], float | None]:
    rows = await database.fetch(queries.WAITING_LIST)
    people = [
        schemas.Waiting(
            referral_id=r["id"],
            reference=r["reference"],
            engaged_on=r["engaged_on"],
            days_waiting=(today - r["engaged_on"]).days,
        )
        for r in rows
    ]
    days = sorted(p.days_waiting for p in people)
    median = None
    if days:
        middle = len(days) // 2
        median = float(days[middle]) if len(days) % 2 else (days[middle - 1] + days[middle]) / 2
    return people, days, median


async def waiting_summary(today: date) -> schemas.WaitingList:
    """The waiting list's counts alone (as monitors see it): nobody's record is read."""
    _, days, median = await _waiting(today)
    return schemas.WaitingList(
        count=len(days),
        median_days_waiting=median,
        longest_days_waiting=days[-1] if days else None,
        people=None,
    )


async def waiting_list(actor: Principal, today: date, paging: Paging) -> schemas.WaitingList:
    """Engaged referrals with no group place yet, longest waiting first."""
    people, days, median = await _waiting(today)
    show_people = actor.role != Role.monitor.value
    page = paging.slice(people)
    if show_people:
        await audit.record_many(
            actor,
            AuditAction.read,
            RecordType.referral,
            [p.referral_id for p in page.items],
            {"view": "waiting_list"},
        )
    return schemas.WaitingList(
        count=len(people),
        median_days_waiting=median,
        longest_days_waiting=days[-1] if days else None,
        people=page if show_people else None,
    )


async def at_risk(actor: Principal, consecutive: int, paging: Paging) -> Page[schemas.AtRisk]:
    """People whose latest marks are ``consecutive`` or more unexcused absences in a row."""
    facilitator = None if actor.role == Role.admin.value else actor.id
    rows = await database.fetch(queries.AT_RISK, None, consecutive, facilitator)
    page = paging.slice([schemas.AtRisk(**row) for row in rows])
    await audit.record_many(
        actor,
        AuditAction.read,
        RecordType.referral,
        [p.referral_id for p in page.items],
        {"view": "at_risk"},
    )
    return page


REGISTER_SOURCE = "register"


async def _register(session_id: UUID) -> schemas.Register:
    session = (
        await ProgrammeSession.select(ProgrammeSession.held_on, ProgrammeSession.cancelled_at)
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
        cancelled=session["cancelled_at"] is not None,
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
    if session["cancelled_at"] is not None:
        problems.append(
            FieldError("cancelled", "session", "The session was cancelled: nothing is marked.")
        )
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
    referrals = {r["id"]: r for r in await database.fetch(queries.STATUS_AND_ENGAGED_ON, ids)}
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
    session_id: UUID,
    marks: list[schemas.AttendanceMark],
    actor: Principal,
    today: date,
    override_reason: str | None = None,
) -> schemas.Register:
    """Record (or correct) a session's marks; idempotent; derives milestones.

    A changed mark touches the session's day and any milestone it moves: in a
    reported quarter that needs an admin's ``override_reason`` (``require_unlocked``).
    """
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
            await audit.record(actor, action, RecordType.attendance, mark.referral_id, detail)
        # Unchanged marks leave the derived milestones as they are.
        touched: list[date] = [session["held_on"]] if changed else []
        for referral_id in changed:
            touched += await derive_milestones(referral_id, programme, actor)
        await require_unlocked(
            touched,
            actor=actor,
            override_reason=override_reason,
            record_type=RecordType.attendance,
            record_id=session_id,
        )
    return await _register(session_id)


async def derive_milestones(
    referral_id: UUID, programme: dict[str, Any], actor: Principal
) -> list[date]:
    """Bring a referral's started/completed milestones and alerts in line with the register.

    Returns the days of the milestones added, removed or moved (old and new day),
    whose quarters' figures change.
    """
    touched: list[date] = []
    referral = (
        await Referral.select(Referral.status, Referral.status_on)
        .where(Referral.id == referral_id)
        .lock_rows()
        .first()
    )
    assert referral is not None
    status = Status(referral["status"])
    marks = await database.fetch(queries.MARKS_OF_REFERRAL, referral_id)
    events = {
        e["type"]: e
        for e in await ReferralEvent.select(
            ReferralEvent.id, ReferralEvent.type, ReferralEvent.occurred_on, ReferralEvent.source
        ).where((ReferralEvent.referral == referral_id) & ReferralEvent.voided_at.is_null())
    }
    present = [m for m in marks if m["status"] in PRESENT]
    new_status, new_on = status, referral["status_on"]

    started = events.get(Status.started.value)
    if present and Status.started in allowed_next(status):
        started_on = present[0]["held_on"]
        await _add_event(referral_id, Status.started, started_on, actor)
        touched.append(started_on)
        new_status, new_on = Status.started, started_on
    elif started and started["source"] == REGISTER_SOURCE and status == Status.started:
        if not present:
            await _remove_event(started["id"])
            touched.append(started["occurred_on"])
            engaged = events[Status.engaged.value]
            new_status, new_on = Status.engaged, engaged["occurred_on"]
        elif present[0]["held_on"] != started["occurred_on"]:
            await _move_event(started["id"], present[0]["held_on"])
            touched += [started["occurred_on"], present[0]["held_on"]]
            new_on = present[0]["held_on"]

    if new_status in (Status.started, Status.completed):
        met_on = await _completion_met_on(referral_id, present, programme)
        completed = events.get(Status.completed.value)
        if met_on is not None and Status.completed in allowed_next(new_status):
            await _add_event(referral_id, Status.completed, met_on, actor)
            touched.append(met_on)
            new_status, new_on = Status.completed, met_on
        elif completed and completed["source"] == REGISTER_SOURCE:
            if met_on is None:
                await _remove_event(completed["id"])
                touched.append(completed["occurred_on"])
                first = present[0]["held_on"] if present else referral["status_on"]
                new_status, new_on = Status.started, first
            elif met_on != completed["occurred_on"]:
                await _move_event(completed["id"], met_on)
                touched += [completed["occurred_on"], met_on]
                new_on = met_on

    if (new_status, new_on) != (status, referral["status_on"]):
        await Referral.update(
            {
                Referral.status: new_status.value,
                Referral.status_on: new_on,
                Referral.version: Referral.version + 1,
            }
        ).where(Referral.id == referral_id)
    await _raise_at_risk(referral_id, programme["at_risk_absences"], new_status)
    return touched


async def _completion_met_on(
    referral_id: UUID, present: list[Any], programme: dict[str, Any]
) -> date | None:
    review = None
    if programme["exit_review_required"] and present:
        review = (
            await ExitReview.select(ExitReview.held_on)
            .where(ExitReview.referral == referral_id)
            .first()
        )
    return rules.completion_met_on(present, programme, review["held_on"] if review else None)


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
        RecordType.referral,
        referral_id,
        {"event": status.value, "source": REGISTER_SOURCE},
    )


async def _remove_event(event_id: int) -> None:
    await ReferralEvent.delete().where(ReferralEvent.id == event_id)


async def _move_event(event_id: int, on: date) -> None:
    await ReferralEvent.update({ReferralEvent.occurred_on: on}).where(ReferralEvent.id == event_id)


async def _raise_at_risk(referral_id: UUID, limit: int, status: Status) -> None:
    """Alert partner support when the latest marks are ``limit`` unexcused absences."""
    if status not in (Status.engaged, Status.started):
        return
    runs = await database.fetch(queries.ABSENCE_RUNS, referral_id)
    if not runs or runs[0]["run"] < limit:
        return
    already = await ParticipantAlert.exists().where(
        (ParticipantAlert.referral == referral_id)
        & (ParticipantAlert.kind == "at_risk")
        & (ParticipantAlert.raised_on >= runs[0]["run_began"])
    )
    if not already:
        await ParticipantAlert.insert(
            ParticipantAlert(
                referral=referral_id,
                kind="at_risk",
                raised_on=runs[0]["last_marked_on"],
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
    if problem := day_problem("held_on", data.held_on, today):
        raise InvalidInput(errors=[problem])
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
        await audit.record(actor, AuditAction.create, RecordType.exit_review, data.referral_id)
        touched = await derive_milestones(data.referral_id, programme, actor)
        await require_unlocked(
            touched,
            actor=actor,
            override_reason=data.override_reason,
            record_type=RecordType.exit_review,
            record_id=data.referral_id,
        )
    row = (
        await Referral.select(Referral.status, Referral.status_on)
        .where(Referral.id == data.referral_id)
        .first()
    )
    assert row is not None
    return schemas.ReferralProgress(
        referral_id=data.referral_id, status=row["status"], status_on=row["status_on"]
    )


# Corrections of delivery: sessions moved or cancelled, places ended. Nothing is
# deleted; each change keeps its reason (``DeliveryChange``), and whatever the
# register decides is worked out again. Lock order as in ``save_register``: the
# session (or the group), then the referrals concerned in id order.


async def _counting_steps(referral_ids: list[UUID]) -> set[tuple[UUID, str, date]]:
    rows = await database.fetch(queries.COUNTING_STEPS, referral_ids)
    return {(r["referral"], r["type"], r["occurred_on"]) for r in rows}


async def _rederive_register(session_id: UUID, actor: Principal) -> list[date]:
    """Work out again the milestones of everyone marked on a session; the days whose
    lifecycle steps changed (moved, added or undone)."""
    marked = [r["referral"] for r in await database.fetch(queries.MARKED_ON_SESSION, session_id)]
    if not marked:
        return []
    await (
        Referral.select(Referral.id)
        .where(Referral.id.is_in(marked))
        .order_by(Referral.id)
        .lock_rows()
    )
    programme = await current_programme()
    before = await _counting_steps(marked)
    for referral_id in marked:
        await derive_milestones(referral_id, programme, actor)
    after = await _counting_steps(marked)
    return [on for _, _, on in before ^ after]


def _require_reason(
    data: schemas.SessionMove | schemas.SessionCancel | schemas.MemberRemove,
) -> None:
    """A change says why, in words: blank is no reason (``referrals.rules.reason_problems``)."""
    given = {"reason": data.reason, "override_reason": getattr(data, "override_reason", None)}
    if problems := reason_problems(given):
        raise InvalidInput(errors=problems)


async def _locked_session(session_id: UUID, actor: Principal) -> dict[str, Any]:
    await _session(session_id, actor)
    session = (
        await ProgrammeSession.select().where(ProgrammeSession.id == session_id).lock_rows().first()
    )
    assert session is not None
    return session


def _summary(session: dict[str, Any]) -> schemas.SessionSummary:
    return schemas.SessionSummary(
        id=session["id"],
        number=session["number"],
        held_on=session["held_on"],
        kind=session["kind"],
        cancelled=session["cancelled_at"] is not None,
    )


async def _record_change(actor: Principal, **values: Any) -> None:
    await DeliveryChange.insert(DeliveryChange(changed_by=actor.id, **values))
    detail = {"change": values["kind"]}
    if values.get("session") is not None:
        detail["session"] = str(values["session"])
    await audit.record(actor, AuditAction.update, RecordType.group, values["group"], detail)


def _session_that_day(kind: str, day: date) -> Conflict:
    message = (
        f"This group already has a {kind} session on {day.isoformat()}: a group meets at "
        "most once a day for each kind of session."
    )
    return Conflict(message, errors=[FieldError("session_that_day", "held_on", message)])


async def move_session(
    session_id: UUID, data: schemas.SessionMove, actor: Principal, today: date
) -> schemas.SessionSummary:
    """Move a session to another day (``rules.reschedule_problem`` says when it may not);
    milestones the register derived from it move with it."""
    _require_reason(data)
    async with engine().transaction():
        session = await _locked_session(session_id, actor)
        group = await Group.select(Group.starts_on).where(Group.id == session["group"]).first()
        assert group is not None
        marks = await Attendance.select(Attendance.referral, Attendance.status).where(
            Attendance.session == session_id
        )
        problem = rules.reschedule_problem(
            new_on=data.held_on,
            group_starts_on=group["starts_on"],
            marked=bool(marks),
            cancelled=session["cancelled_at"] is not None,
            today=today,
        )
        if problem is not None and problem.code == "cancelled":
            raise Conflict(problem.message, errors=[problem])
        if problem is not None:
            raise InvalidInput(errors=[problem])
        if data.held_on == session["held_on"]:
            return _summary(session)
        present = [m["referral"] for m in marks if m["status"] in PRESENT]
        engaged = await database.fetch(queries.STATUS_AND_ENGAGED_ON, present)
        late = [
            r["engaged_on"] for r in engaged if r["engaged_on"] and r["engaged_on"] > data.held_on
        ]
        if late:
            raise InvalidInput(
                errors=[
                    FieldError(
                        "before_engagement",
                        "held_on",
                        f"Someone marked present engaged only on {max(late)}.",
                    )
                ]
            )
        try:
            await ProgrammeSession.update({ProgrammeSession.held_on: data.held_on}).where(
                ProgrammeSession.id == session_id
            )
        except UniqueViolationError as exc:
            if exc.constraint_name == rules.ONE_SESSION_A_DAY:
                raise _session_that_day(session["kind"], data.held_on) from None
            raise
        moved = await _rederive_register(session_id, actor)
        await require_unlocked(
            affected_days(session["held_on"], data.held_on, *moved),
            actor=actor,
            override_reason=data.override_reason,
            record_type=RecordType.attendance,
            record_id=session_id,
        )
        await _record_change(
            actor,
            kind="session_moved",
            group=session["group"],
            session=session_id,
            old_on=session["held_on"],
            new_on=data.held_on,
            reason=data.reason.strip(),
        )
    return _summary({**session, "held_on": data.held_on})


async def cancel_session(
    session_id: UUID, data: schemas.SessionCancel, actor: Principal
) -> schemas.SessionSummary:
    """Cancel a session: it stays, its marks count for nothing, and the register's
    milestones are worked out again without them (``rules.cancel_problem``)."""
    _require_reason(data)
    async with engine().transaction():
        session = await _locked_session(session_id, actor)
        if problem := rules.cancel_problem(cancelled=session["cancelled_at"] is not None):
            raise Conflict(problem.message, errors=[problem])
        cancelled_at = datetime.now(UTC)
        await ProgrammeSession.update({ProgrammeSession.cancelled_at: cancelled_at}).where(
            ProgrammeSession.id == session_id
        )
        undone = await _rederive_register(session_id, actor)
        await require_unlocked(
            affected_days(session["held_on"], *undone),
            actor=actor,
            override_reason=data.override_reason,
            record_type=RecordType.attendance,
            record_id=session_id,
        )
        await _record_change(
            actor,
            kind="session_cancelled",
            group=session["group"],
            session=session_id,
            old_on=session["held_on"],
            reason=data.reason.strip(),
        )
    return _summary({**session, "cancelled_at": cancelled_at})


async def remove_member(
    group_id: UUID, referral_id: UUID, data: schemas.MemberRemove, actor: Principal, today: date
) -> schemas.Group:
    """End a referral's place in a group (``rules.removal_problem``); the person keeps
    their status, and an engaged person is back on the waiting list."""
    _require_reason(data)
    await require_group_access(actor, group_id)
    on = data.on or today
    if problem := day_problem("on", on, today):
        raise InvalidInput(errors=[problem])
    async with engine().transaction():
        await Group.select(Group.id).where(Group.id == group_id).lock_rows()
        await Referral.select(Referral.id).where(Referral.id == referral_id).lock_rows()
        place = (
            await GroupMember.select(GroupMember.id, GroupMember.joined_on)
            .where(
                (GroupMember.group == group_id)
                & (GroupMember.referral == referral_id)
                & GroupMember.left_on.is_null()
            )
            .first()
        )
        if place is None:
            raise NotFound("This referral has no place in this group.")
        (last,) = await database.fetch(queries.LAST_MARKED_IN_GROUP, referral_id, group_id)
        if problem := rules.removal_problem(
            on=on, joined_on=place["joined_on"], last_marked_on=last["last_marked_on"]
        ):
            raise InvalidInput(errors=[problem])
        # No published figure counts group places, so no reported quarter is touched.
        await GroupMember.update({GroupMember.left_on: on}).where(GroupMember.id == place["id"])
        await _record_change(
            actor,
            kind="member_removed",
            group=group_id,
            referral=referral_id,
            new_on=on,
            reason=data.reason.strip(),
        )
        await audit.record(
            actor,
            AuditAction.update,
            RecordType.referral,
            referral_id,
            {"group": str(group_id), "removed": True},
        )
    return await get_group(group_id)


async def _changes(group_id: UUID) -> list[schemas.DeliveryChange]:
    rows = (
        await DeliveryChange.select(
            DeliveryChange.kind,
            DeliveryChange.session.as_alias("session_id"),
            DeliveryChange.referral.as_alias("referral_id"),
            DeliveryChange.old_on,
            DeliveryChange.new_on,
            DeliveryChange.reason,
            DeliveryChange.changed_by.username.as_alias("by"),
            DeliveryChange.changed_at.as_alias("at"),
        )
        .where(DeliveryChange.group == group_id)
        .order_by(DeliveryChange.id)
    )
    return [schemas.DeliveryChange(**row) for row in rows]
