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

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

from asyncpg.exceptions import UniqueViolationError

from programme.delivery import queries, rules, schemas
from programme.delivery.rules import (
    DEFAULT_RULE,
    JOINABLE,
    PRESENT,
    REGISTER_SOURCE,
    SessionKind,
)
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
from programme.platform.locked_quarters.queries import LOCKED_AMONG
from programme.platform.locked_quarters.services import (
    quarter_labels,
    refuse_or_override,
    require_unlocked,
)
from programme.platform.paging import Page, Paging
from programme.platform.tables import Account, AuditAction, RecordType, Role
from referrals.rules import Status, affected_days, day_problem, reason_problems
from referrals.tables import Referral

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
    """The waiting list's counts alone (as monitors see it): nobody's record is read, and
    they are counted in PostgreSQL (``queries.WAITING_SUMMARY``: at a million referrals
    the whole list is 50,000 rows, half the time of the dashboard's waiting figures spent
    making them Python objects)."""
    (row,) = await database.fetch(queries.WAITING_SUMMARY, today)
    return schemas.WaitingList(
        count=int(row["count"]),
        median_days_waiting=row["median"],
        longest_days_waiting=row["longest"],
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


async def _session(session_id: UUID, actor: Principal) -> dict[str, Any]:
    session = await ProgrammeSession.select().where(ProgrammeSession.id == session_id).first()
    if session is None:
        raise NotFound("No such session.")
    await require_group_access(actor, session["group"])
    return session


def _may_mark(actor: Principal, session: Mapping[str, Any], group_id: UUID | None) -> None:
    """``require_group_access`` for a session read with its group: the group exists (a
    foreign key), so what is left is whether the session is that group's (a page's
    address names both) and who may work with it."""
    if group_id is not None and session["group"] != group_id:
        raise NotFound("This session is not one of this group's.")
    if actor.role != Role.admin.value and not session["facilitates"]:
        raise NotPermitted("You do not facilitate this group.")


def _members(row: Mapping[str, Any]) -> list[schemas.Member]:
    return [
        schemas.Member(referral_id=i, reference=ref, status=status, joined_on=on)
        for i, ref, status, on in zip(
            row["member_ids"] or (),
            row["member_refs"] or (),
            row["member_statuses"] or (),
            row["member_joined_on"] or (),
            strict=True,
        )
    ]


def _session_summary(row: Mapping[str, Any]) -> schemas.SessionSummary:
    return schemas.SessionSummary(
        id=row["id"],
        number=row["number"],
        held_on=row["held_on"],
        kind=row["kind"],
        cancelled=row["cancelled_at"] is not None,
    )


async def register_sheet(
    session_id: UUID, actor: Principal, group_id: UUID | None = None
) -> schemas.RegisterSheet:
    """A session's register with its group's members now and their status, in one read.

    ``group_id``: the group the session must belong to (a page's address names both)."""
    found = await database.fetch(queries.REGISTER_SHEET, session_id, actor.id)
    if not found:
        raise NotFound("No such session.")
    row = found[0]
    _may_mark(actor, row, group_id)
    marks = [
        schemas.RegisterLine(referral_id=i, reference=ref, status=status, marked_by=by)
        for i, ref, status, by in zip(
            row["mark_ids"] or (),
            row["mark_refs"] or (),
            row["mark_statuses"] or (),
            row["mark_marked_by"] or (),
            strict=True,
        )
    ]
    return schemas.RegisterSheet(
        group_id=row["group"],
        group_name=row["group_name"],
        session=_session_summary(row),
        members=_members(row),
        register=schemas.Register(
            session_id=session_id,
            held_on=row["held_on"],
            marks=marks,
            cancelled=row["cancelled_at"] is not None,
        ),
    )


async def get_register(session_id: UUID, actor: Principal) -> schemas.Register:
    return (await register_sheet(session_id, actor)).register


def _check_marks(
    session: Mapping[str, Any],
    marks: list[schemas.AttendanceMark],
    people: Mapping[UUID, Sequence[Any]],
    today: date,
    every_member: Sequence[schemas.Member] | None = None,
) -> None:
    """Every problem with a register, all at once.

    ``people``: each referral named that exists, as ``(id, status, engaged_on,
    member)``, ``member`` saying whether it ever had a place in the session's group.
    ``every_member``: the group's members now, when each one must be marked (a
    register saved from its page is the whole register: a row left blank is a
    mark forgotten, not a mark left as it was).
    """
    problems: list[FieldError] = []
    if every_member is not None:
        if not every_member:
            problems.append(FieldError("no_members", "", "This group has nobody to mark yet."))
        named = {mark.referral_id for mark in marks}
        problems += [
            FieldError(
                "unmarked",
                str(member.referral_id),
                f"Choose attended, late, excused or absent for {member.reference}.",
            )
            for member in every_member
            if member.referral_id not in named
        ]
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
    seen: set[UUID] = set()
    for i, mark in enumerate(marks):
        where = f"[{i}].referral_id"
        if mark.referral_id in seen:
            problems.append(FieldError("duplicate", where, "Marked twice in one register."))
        seen.add(mark.referral_id)
        person = people.get(mark.referral_id)
        if person is None or not person[3]:
            problems.append(FieldError("not_a_member", where, "Not a member of this group."))
            continue
        _, status, engaged_on, _ = person
        if status == Status.withdrawn.value:
            problems.append(
                FieldError("withdrawn", where, "Consent was withdrawn: nothing more is recorded.")
            )
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


_RULE_COLUMNS = tuple(asdict(DEFAULT_RULE))


async def save_register(
    session_id: UUID,
    marks: list[schemas.AttendanceMark],
    actor: Principal,
    today: date,
    override_reason: str | None = None,
) -> schemas.Register:
    """Record (or correct) a session's marks (``record_register``): the register saved."""
    saved = await record_register(session_id, marks, actor, today, override_reason)
    return saved.register


async def record_register(
    session_id: UUID,
    marks: list[schemas.AttendanceMark],
    actor: Principal,
    today: date,
    override_reason: str | None = None,
    *,
    group_id: UUID | None = None,
    every_member: bool = False,
) -> schemas.RegisterSheet:
    """Record (or correct) a session's marks; idempotent; derives milestones.

    Answers all a register's page draws afterwards, from the save's own statements:
    the marks, each corrected mark's earlier one, the group's members now and their
    status after the milestones this save decided. ``group_id``: the group the
    session must belong to; ``every_member``: each member now must be marked.

    A changed mark touches the session's day and any milestone it moves: in a
    reported quarter that needs an admin's ``override_reason`` (``require_unlocked``'s
    check, made in the statements below).

    A save is a handful of statements whatever the size of the register (a 12-person
    correction: BEGIN, the four below, COMMIT; one more when its milestones move in a
    quarter other than the session's), each one needing the locks the one before it
    took:

    1. ``REGISTER_CONTEXT`` locks the session's row and reads what the checks need.
       One register save at a time per session: a second one waits here, and its
       next statement (a new snapshot, taken once it holds the lock) finds the first
       one's marks, so nothing is lost or duplicated. The checks read what every
       save reads before it writes, and a rejected save only rolls back.
    2. ``SAVE_MARKS`` finds the changed marks and locks the changed people's
       referrals in id order, then writes the marks. An attendance row's foreign key
       takes a share lock on its referral, and deriving milestones then needs the
       update lock, so two registers for the same people (two sessions saved at
       once) would deadlock if either took a share lock first: the foreign key
       checks run at the end of the statement, after its ``FOR UPDATE``. If a mark
       changed, it then takes the shared lock of the session's quarter (the
       session's day is touched): after the referrals', as in every write.
    3. ``MILESTONE_FACTS`` reads the changed people's registers and lifecycle
       steps, in a statement after the one that locked them, so it sees what any
       save that held them before committed.
    4. ``SAVE_MILESTONES`` writes what the register decided and every audit row,
       reads whether the session's quarter is locked (a statement after the one
       that shared it, so it sees a quarter locked while the save waited) and
       shares the quarters of any other day the milestones touch, which one more
       statement (``LOCKED_AMONG``) then reads. That is ``require_unlocked``'s
       check in the statements the save makes anyway: every statement after the
       referrals' locks is one more wait for the next save of the same people.

    Lock order, the same in every write of the register and of the corrections of
    delivery (``move_session``, ``cancel_session``): the session, the referrals
    concerned in id order, then the reported quarters' shared locks (here the
    session's quarter first, then the others, whose days are all later, in label
    order). A shared lock waits only behind a quarter being locked, which holds that
    one quarter's lock and waits for nothing else; two saves taking two quarters in
    opposite orders while both are being locked would wait on each other only
    through the order of a lock's queue, which PostgreSQL's deadlock check reorders
    instead of cancelling either.
    """
    ids = [mark.referral_id for mark in marks]
    async with engine().transaction():
        found = await database.fetch(
            queries.REGISTER_CONTEXT, session_id, actor.id, ids, DEFAULT_PROGRAMME
        )
        if not found:
            raise NotFound("No such session.")
        session = found[0]
        _may_mark(actor, session, group_id)
        members = _members(session)
        people = zip(
            session["ids"] or (),
            session["statuses"] or (),
            session["engaged_on"] or (),
            session["members"] or (),
            strict=True,
        )
        _check_marks(
            session,
            marks,
            {person[0]: person for person in people},
            today,
            members if every_member else None,
        )
        programme: dict[str, Any]
        if session["programme_id"] is None:
            programme = await current_programme()
        else:
            programme = {name: session[name] for name in _RULE_COLUMNS}
        # The session's day is touched if any mark changes: SAVE_MARKS shares its quarter.
        session_quarter = quarter_labels([session["held_on"]])
        lines = await database.fetch(
            queries.SAVE_MARKS,
            session_id,
            ids,
            [mark.status.value for mark in marks],
            actor.id,
            datetime.now(UTC),
            session_quarter,
        )
        was = {line["referral_id"]: line["was"] for line in lines if line["changed"]}
        entries = []
        for mark in marks:
            if mark.referral_id not in was:
                continue
            detail = {"session": str(session_id), "mark": mark.status.value}
            before = was[mark.referral_id]
            if before is not None:
                detail["was"] = before
            action = AuditAction.create if before is None else AuditAction.update
            entries.append(
                audit.entry(actor, action, RecordType.attendance, mark.referral_id, detail)
            )
        # Unchanged marks leave the derived milestones as they are.
        changed = sorted(was)
        # Each person's status as this save leaves it: what the milestones decided for
        # the changed (whose rows it locked), else as read after the session's lock.
        statuses = {line["referral_id"]: line["referral_status"] for line in lines}
        if changed:
            decided = await _derive_milestones(
                changed, programme, actor, entries, statuses, session_quarters=session_quarter
            )
            await refuse_or_override(
                decided.locked_quarters,
                actor=actor,
                override_reason=override_reason,
                record_type=RecordType.attendance,
                record_id=session_id,
            )
    register = schemas.Register(
        session_id=session_id,
        held_on=session["held_on"],
        marks=[
            schemas.RegisterLine(
                referral_id=line["referral_id"],
                reference=line["reference"],
                status=line["status"],
                marked_by=line["marked_by"],
            )
            for line in lines
        ],
        cancelled=session["cancelled_at"] is not None,
    )
    for member in members:
        member.status = statuses.get(member.referral_id, member.status)
    return schemas.RegisterSheet(
        group_id=session["group"],
        group_name=session["group_name"],
        session=_session_summary(session),
        members=members,
        register=register,
        was={referral: mark for referral, mark in was.items() if mark is not None},
    )


async def derive_milestones(
    referral_id: UUID, programme: dict[str, Any], actor: Principal
) -> list[date]:
    """Bring a referral's started/completed milestones and alerts in line with the register.

    The caller holds the referral's row lock. Returns the days of the milestones
    added, removed or moved (old and new day), whose quarters' figures change.
    """
    return (await _derive_milestones([referral_id], programme, actor, [])).touched


@dataclass(frozen=True)
class _Derived:
    touched: list[date]
    """The days of the milestones added, removed or moved (old and new day)."""
    locked_quarters: list[str]
    """With ``session_quarters``: the locked quarters among every one the save touches."""


async def _derive_milestones(
    referral_ids: Sequence[UUID],
    programme: Mapping[str, Any],
    actor: Principal,
    entries: list[dict[str, Any]],
    statuses: dict[UUID, str] | None = None,
    *,
    session_quarters: Sequence[str] | None = None,
) -> _Derived:
    """``derive_milestones`` for several referrals in two statements, writing ``entries``
    (audit rows of the caller's own work) with its own; the caller holds the rows' locks.
    ``statuses``, when given, receives each referral's status as decided.

    ``session_quarters``: a register save's check of the reported quarters, in the
    statements it makes anyway. The caller took these quarters' shared locks in an
    earlier statement; the write answers which of them are locked and takes the
    shared locks of the other quarters the milestones touch, read by one more
    statement only when there are any (``require_unlocked`` is then not needed)."""
    facts = await database.fetch(queries.MILESTONE_FACTS, referral_ids) if referral_ids else []
    added: list[tuple[UUID, str, date]] = []
    removed: list[int] = []
    moved: list[tuple[int, date]] = []
    progressed: list[tuple[UUID, str, date]] = []
    alerts: list[tuple[UUID, date]] = []
    touched: list[date] = []
    for row in facts:
        referral_id, status = row["id"], Status(row["status"])
        change = rules.milestone_change(
            status=status,
            status_on=row["status_on"],
            marks=[
                {"status": mark, "held_on": held_on, "kind": kind}
                for mark, held_on, kind in zip(
                    row["marks"] or (), row["held_on"] or (), row["kinds"] or (), strict=True
                )
            ],
            steps={
                kind: {"id": step_id, "occurred_on": on, "source": source}
                for step_id, kind, on, source in zip(
                    row["step_ids"] or (),
                    row["step_types"] or (),
                    row["step_on"] or (),
                    row["step_sources"] or (),
                    strict=True,
                )
            },
            rule=programme,
            exit_review_on=row["exit_review_on"],
        )
        for step, on in change.added:
            added.append((referral_id, step.value, on))
            detail = {"event": step.value, "source": REGISTER_SOURCE}
            entries.append(
                audit.entry(actor, AuditAction.update, RecordType.referral, referral_id, detail)
            )
        removed += change.removed
        moved += change.moved
        if statuses is not None:
            statuses[referral_id] = change.status.value
        if (change.status, change.status_on) != (status, row["status_on"]):
            progressed.append((referral_id, change.status.value, change.status_on))
        alert_on = rules.at_risk_on(
            status=change.status,
            limit=programme["at_risk_absences"],
            run=row["run"],
            run_began=row["run_began"],
            last_marked_on=row["last_marked_on"],
            alerted_on=row["alerted_on"],
        )
        if alert_on is not None:
            alerts.append((referral_id, alert_on))
        touched += change.touched
    others = [] if session_quarters is None else quarter_labels(touched)
    others = [label for label in others if label not in (session_quarters or ())]
    locked: list[str] = []
    if entries or added or removed or moved or progressed or alerts or session_quarters:
        saved = await database.fetch(
            queries.SAVE_MILESTONES,
            actor.id,
            datetime.now(UTC),
            audit.entries_json(entries),
            *_columns(added, 3),
            removed,
            *_columns(moved, 2),
            *_columns(progressed, 3),
            *_columns(alerts, 2),
            json.dumps({"consecutive_absences": programme["at_risk_absences"]}),
            list(session_quarters or ()),
            others,
        )
        locked = list(saved[0]["locked"])
    if others:
        locked += [row["quarter"] for row in await database.fetch(LOCKED_AMONG, others)]
    return _Derived(touched, locked)


def _columns(rows: Sequence[tuple[Any, ...]], width: int) -> list[list[Any]]:
    """Rows as columns, for ``unnest``: ``width`` lists, empty when there are no rows."""
    return [[row[i] for row in rows] for i in range(width)]


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
# register decides is worked out again. Lock order as in ``record_register``: the
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
    await _derive_milestones(marked, programme, actor, [])
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
