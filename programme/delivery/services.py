"""Programme settings, groups, members, sessions, the waiting list: the rules."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

from asyncpg.exceptions import UniqueViolationError

from programme.delivery import schemas
from programme.delivery.tables import (
    Group,
    GroupFacilitator,
    GroupMember,
    Programme,
    ProgrammeSession,
    SessionKind,
)
from programme.platform.accounts.schemas import Principal
from programme.platform.audit import services as audit
from programme.platform.database import engine
from programme.platform.errors import Conflict, FieldError, InvalidInput, NotFound, NotPermitted
from programme.platform.tables import Account, AuditAction, Role
from referrals.rules import Status
from referrals.tables import Referral

DEFAULT_PROGRAMME = "Inspire to Change"
JOINABLE = (Status.engaged.value, Status.started.value)
"""Engaged people join a group; started ones only move between groups."""


async def current_programme() -> dict[str, Any]:
    """The programme's settings, creating the commissioned defaults the first time."""
    row = await Programme.select().where(Programme.name == DEFAULT_PROGRAMME).first()
    if row is None:
        await Programme.raw(
            "INSERT INTO programme (id, name, weeks, core_sessions, completion_min_sessions,"
            " exit_review_required, at_risk_absences, updated_at)"
            " VALUES (gen_random_uuid(), {}, 26, 24, 18, true, 3, now())"
            " ON CONFLICT (name) DO NOTHING",
            DEFAULT_PROGRAMME,
        )
        row = await Programme.select().where(Programme.name == DEFAULT_PROGRAMME).first()
    assert row is not None
    return row


def _settings(row: dict[str, Any]) -> schemas.ProgrammeSettings:
    fields = schemas.ProgrammeSettings.__struct_fields__
    return schemas.ProgrammeSettings(**{name: row[name] for name in fields})


async def get_settings() -> schemas.ProgrammeSettings:
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
    await audit.record(actor, AuditAction.update, "programme", row["id"], {"fields": list(values)})
    return await get_settings()


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
        await audit.record(actor, AuditAction.create, "group", group_id)
    return await get_group(group_id)


async def list_groups(actor: Principal) -> list[schemas.Group]:
    query = Group.select(Group.id).order_by(Group.starts_on)
    if actor.role != Role.admin.value:
        mine = GroupFacilitator.select(GroupFacilitator.group).where(
            GroupFacilitator.account == actor.id
        )
        query = query.where(Group.id.is_in(mine))
    return [await get_group(row["id"]) for row in await query]


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
        sessions=[schemas.SessionSummary(**s) for s in sessions],
    )


async def add_member(
    group_id: UUID, data: schemas.MemberAdd, actor: Principal, today: date
) -> schemas.Group:
    """Give an engaged referral a place; a started one moving here is a transfer."""
    await require_group_access(actor, group_id)
    joined_on = data.joined_on or today
    if joined_on > today:
        raise InvalidInput(
            errors=[FieldError("future_date", "joined_on", "Cannot be in the future.")]
        )
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
            "referral",
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
    except UniqueViolationError:
        raise Conflict(f"This group already has {data.kind.value} session {data.number}.") from None
    return schemas.SessionSummary(
        id=rows[0]["id"], number=data.number, held_on=data.held_on, kind=data.kind.value
    )


async def waiting_list(actor: Principal, today: date) -> schemas.WaitingList:
    """Engaged referrals with no group place yet, longest waiting first."""
    rows = await Referral.raw(
        """
        SELECT r.id, r.reference, e.engaged_on
        FROM referral r
        JOIN LATERAL (
            SELECT max(occurred_on) AS engaged_on FROM referral_event
            WHERE referral = r.id AND type = 'engaged'
        ) e ON true
        WHERE r.status = 'engaged'
          AND NOT EXISTS (SELECT 1 FROM group_member m
                          WHERE m.referral = r.id AND m.left_on IS NULL)
        ORDER BY e.engaged_on, r.reference
        """
    )
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
    show_people = actor.role != Role.monitor.value
    if show_people:
        await audit.record_many(
            actor,
            AuditAction.read,
            "referral",
            [p.referral_id for p in people],
            {"view": "waiting_list"},
        )
    return schemas.WaitingList(
        count=len(people),
        median_days_waiting=median,
        longest_days_waiting=days[-1] if days else None,
        people=people if show_people else None,
    )


async def at_risk(actor: Principal, consecutive: int) -> list[schemas.AtRisk]:
    """People whose latest marks are ``consecutive`` or more unexcused absences in a row."""
    facilitator = None if actor.role == Role.admin.value else actor.id
    rows = await Referral.raw(
        """
        WITH ranked AS (
            SELECT a.referral, a.status, s.held_on,
                   row_number() OVER (PARTITION BY a.referral
                                      ORDER BY s.held_on DESC, s.number DESC) AS n
            FROM attendance a JOIN programme_session s ON s.id = a.session
        ), runs AS (
            SELECT referral, max(held_on) AS last_marked_on,
                   coalesce(min(n) FILTER (WHERE status <> 'absent'), count(*) + 1) - 1 AS run
            FROM ranked GROUP BY referral
        )
        SELECT r.id AS referral_id, r.reference, g.name AS "group",
               runs.run AS consecutive_absences, runs.last_marked_on
        FROM runs
        JOIN referral r ON r.id = runs.referral
        JOIN group_member m ON m.referral = r.id AND m.left_on IS NULL
        JOIN "group" g ON g.id = m."group"
        WHERE runs.run >= {} AND r.status IN ('engaged', 'started')
          AND ({}::uuid IS NULL OR m."group" IN (
                SELECT "group" FROM group_facilitator WHERE account = {}))
        ORDER BY runs.run DESC, r.reference
        """,
        consecutive,
        facilitator,
        facilitator,
    )
    people = [schemas.AtRisk(**row) for row in rows]
    await audit.record_many(
        actor, AuditAction.read, "referral", [p.referral_id for p in people], {"view": "at_risk"}
    )
    return people
