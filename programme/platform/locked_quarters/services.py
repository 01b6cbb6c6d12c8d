"""Locking reported quarters, and the one check every write that moves figures makes.

``require_unlocked`` is the check: a service calls it inside its write's
transaction with every day whose figures the write changes (for a record moved
from one day to another, both days). It refuses (``QuarterLocked``, 409) a
write into a locked quarter unless an admin gives ``override_reason``; an
override is audited with its reason and marks the quarter revised since reported.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date

from programme.platform import database
from programme.platform.audit import services as audit
from programme.platform.audit.schemas import Actor
from programme.platform.errors import FieldError, InvalidInput, QuarterLocked
from programme.platform.locked_quarters import queries, rules
from programme.platform.locked_quarters.schemas import LockedQuarterOut
from programme.platform.quarters import Quarter
from programme.platform.tables import AuditAction, RecordType


def quarter_labels(days: Iterable[date | None]) -> list[str]:
    """The labels of the quarters some days fall in, in order (``None`` days ignored)."""
    return [quarter.label for quarter in rules.quarters_of(days)]


async def require_unlocked(
    days: Iterable[date | None],
    *,
    actor: Actor,
    override_reason: str | None = None,
    record_type: RecordType,
    record_id: object = None,
) -> list[str]:
    """Refuse a write dated in a reported quarter, unless an admin overrides it with a reason.

    Call inside the write's transaction, before or after writing (a refusal rolls
    the transaction back), with every day the write touches; ``None`` days are
    ignored. Takes a shared advisory lock per quarter touched, so locking a quarter
    waits for this write to commit. Returns the locked quarters overridden (empty
    when none was locked); each override writes an audit row (``locked_quarter``,
    with the reason and what was written) and marks the quarter revised.
    """
    labels = quarter_labels(days)
    if not labels:
        return []
    await database.fetch(queries.SHARE_QUARTERS, labels)
    locked = [row["quarter"] for row in await database.fetch(queries.LOCKED_AMONG, labels)]
    return await refuse_or_override(
        locked,
        actor=actor,
        override_reason=override_reason,
        record_type=record_type,
        record_id=record_id,
    )


async def refuse_or_override(
    locked: Sequence[str],
    *,
    actor: Actor,
    override_reason: str | None,
    record_type: RecordType,
    record_id: object = None,
) -> list[str]:
    """``require_unlocked``'s answer for a write that took its quarters' shared locks
    (``queries.share_quarters``) and then, in a later statement, found the quarters
    ``locked`` among them: refuse, or record the admin's override."""
    if not locked:
        return []
    locked = sorted(set(locked), key=lambda label: Quarter.parse(label).first_day)
    named = ", ".join(locked)
    if not rules.override_allowed(actor.role, override_reason):
        message = (
            f"{named} {'is' if len(locked) == 1 else 'are'} reported and locked: this would "
            "change figures already published. An admin may make the change by giving "
            "override_reason."
        )
        raise QuarterLocked(message, locked)
    assert override_reason is not None
    await database.fetch(queries.MARK_REVISED, list(locked))
    for label in locked:
        await audit.record(
            actor,
            AuditAction.update,
            RecordType.locked_quarter,
            label,
            {
                "override": True,
                "override_reason": override_reason.strip(),
                "record_type": record_type.value,
                "record_id": None if record_id is None else str(record_id),
            },
        )
    return locked


def _parse(label: str) -> Quarter:
    try:
        return Quarter.parse(label)
    except ValueError as exc:
        raise InvalidInput(errors=[FieldError("invalid", "quarter", str(exc))]) from None


async def lock_quarter(label: str, actor: Actor, today: date) -> LockedQuarterOut:
    """Mark a quarter reported (idempotent: locking it again changes nothing)."""
    quarter = _parse(label)
    if not rules.may_lock(quarter, today):
        raise InvalidInput(
            errors=[
                FieldError(
                    "quarter_not_over",
                    "quarter",
                    f"{quarter.label} ends on {quarter.last_day.isoformat()}: "
                    "a quarter is reported once it is over.",
                )
            ]
        )
    async with database.engine().transaction():
        # Waits for writes under way in the quarter, so none lands unseen after the lock.
        await database.fetch(queries.HOLD_QUARTER, quarter.label)
        rows = await database.fetch(
            queries.LOCK_QUARTER,
            quarter.label,
            quarter.first_day,
            quarter.last_day,
            actor.id,
            actor.username,
        )
        if rows:
            await audit.record(actor, AuditAction.create, RecordType.locked_quarter, quarter.label)
    return next(q for q in await locked_quarters() if q.quarter == quarter.label)


async def locked_quarters() -> list[LockedQuarterOut]:
    return [
        LockedQuarterOut(
            quarter=row["quarter"],
            locked_at=row["locked_at"],
            locked_by=row["locked_by_username"],
            revisions=row["revisions"],
            revised_at=row["revised_at"],
            status=rules.report_mark(True, row["revisions"] > 0),
        )
        for row in await database.fetch(queries.LIST_LOCKED)
    ]


async def marks_between(first: date, last: date) -> dict[str, str]:
    """Each locked quarter overlapping the days, and what the report says of it."""
    rows = await database.fetch(queries.LOCKED_BETWEEN, first, last)
    return {row["quarter"]: rules.report_mark(True, row["revised"]) for row in rows}
