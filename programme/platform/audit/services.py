"""Writing and reading the audit trail.

Every read or change of a record that identifies a person calls ``record``
in the same transaction as the work it describes, so a change is never kept
without its audit row. ``detail`` names fields and filters, never values.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from programme.platform import database
from programme.platform.audit.queries import ENTRY_COLUMNS, RECORD_MANY
from programme.platform.audit.schemas import Actor, AuditEntry
from programme.platform.errors import FieldError, InvalidInput
from programme.platform.paging import Page, Paging
from programme.platform.tables import AuditAction, AuditEvent, RecordType
from programme.platform.threads import off_loop


def _row(
    actor: Actor,
    action: AuditAction,
    record_type: RecordType,
    record_id: str | UUID | None,
    detail_json: str,
) -> AuditEvent:
    """The one place an audit row is made, whichever way it is then written."""
    return AuditEvent(
        account_id=actor.id,
        username=actor.username,
        role=actor.role,
        action=action.value,
        record_type=record_type.value,
        record_id=None if record_id is None else str(record_id),
        detail=detail_json,
    )


async def record(
    actor: Actor,
    action: AuditAction,
    record_type: RecordType,
    record_id: str | UUID | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    await AuditEvent.insert(_row(actor, action, record_type, record_id, json.dumps(detail or {})))


def entry(
    actor: Actor,
    action: AuditAction,
    record_type: RecordType,
    record_id: str | UUID | None = None,
    detail: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One audit row made by ``_row``, as JSON for ``queries.insert_entries``: for a
    service that writes its work and its audit rows in one statement."""
    made = _row(actor, action, record_type, record_id, "{}")
    values = {name: getattr(made, name) for name in ENTRY_COLUMNS}
    values["occurred_at"] = made.occurred_at.isoformat()
    values["account_id"] = None if made.account_id is None else str(made.account_id)
    values["detail"] = detail or {}
    return values


def entries_json(entries: Sequence[dict[str, Any]]) -> str:
    """The parameter ``queries.insert_entries`` takes."""
    return json.dumps(list(entries))


async def record_many(
    actor: Actor,
    action: AuditAction,
    record_type: RecordType,
    record_ids: Sequence[str | UUID],
    detail: dict[str, Any] | None = None,
) -> None:
    """One row per record, written in a single statement."""
    if not record_ids:
        return
    made = _row(actor, action, record_type, None, json.dumps(detail or {}))
    await database.fetch(
        RECORD_MANY,
        made.occurred_at,
        made.account_id,
        made.username,
        made.role,
        made.action,
        made.record_type,
        [str(record_id) for record_id in record_ids],
        made.detail,
    )


_COPY_COLUMNS = (
    "occurred_at",
    "account_id",
    "username",
    "role",
    "action",
    "record_type",
    "record_id",
    "detail",
)


async def copy_many(
    connection: asyncpg.Connection,
    actor: Actor,
    action: AuditAction,
    record_type: RecordType,
    record_ids: Sequence[str | UUID],
    detail: dict[str, Any] | None = None,
) -> None:
    """As ``record_many``, by COPY on ``connection``: for imports of 100,000 rows.

    The rows are built in a worker thread and written a slice at a time, so the
    event loop serves other requests meanwhile (built on the loop, one
    ``AuditEvent`` each, 200,000 rows held it for seconds).
    """
    rows = await off_loop(
        _copy_rows, actor, action, record_type, record_ids, json.dumps(detail or {})
    )
    await database.copy_records(connection, "audit_event", _COPY_COLUMNS, rows)


def _copy_rows(
    actor: Actor,
    action: AuditAction,
    record_type: RecordType,
    record_ids: Sequence[str | UUID],
    detail_json: str,
) -> list[tuple[Any, ...]]:
    """One row made by ``_row``, then the same values with each record's id."""
    made = _row(actor, action, record_type, None, detail_json)
    made.occurred_at = datetime.now(UTC)
    values = [getattr(made, name) for name in _COPY_COLUMNS]
    at = _COPY_COLUMNS.index("record_id")
    rows = []
    for record_id in record_ids:
        values[at] = str(record_id)
        rows.append(tuple(values))
    return rows


@dataclass(frozen=True)
class AuditFilters:
    """What admins filter the trail by; the days are whole UTC days, both inclusive."""

    record_type: RecordType | None = None
    record_id: str | None = None
    account_id: UUID | None = None
    username: str | None = None
    action: AuditAction | None = None
    occurred_from: date | None = None
    occurred_to: date | None = None


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


async def search(filters: AuditFilters, paging: Paging) -> Page[AuditEntry]:
    """The trail newest first, one page of it, and how many rows match in all."""
    if (
        filters.occurred_from is not None
        and filters.occurred_to is not None
        and filters.occurred_to < filters.occurred_from
    ):
        raise InvalidInput(
            errors=[FieldError("invalid", "to", "Expected a date on or after from.")]
        )
    clauses: list[Any] = []
    if filters.record_type is not None:
        clauses.append(AuditEvent.record_type == filters.record_type.value)
    if filters.record_id is not None:
        clauses.append(AuditEvent.record_id == filters.record_id)
    if filters.account_id is not None:
        clauses.append(AuditEvent.account_id == filters.account_id)
    if filters.username is not None:
        clauses.append(AuditEvent.username == filters.username)
    if filters.action is not None:
        clauses.append(AuditEvent.action == filters.action.value)
    if filters.occurred_from is not None:
        clauses.append(AuditEvent.occurred_at >= _midnight(filters.occurred_from))
    if filters.occurred_to is not None and filters.occurred_to < date.max:
        clauses.append(AuditEvent.occurred_at < _midnight(filters.occurred_to + timedelta(days=1)))
    query = AuditEvent.select().order_by(AuditEvent.id, ascending=False)
    count = AuditEvent.count()
    for clause in clauses:
        query = query.where(clause)
        count = count.where(clause)
    rows = await query.limit(paging.limit).offset(paging.offset).output(load_json=True)
    return paging.page([AuditEntry(**row) for row in rows], await count)


EXPORT_MOST = 100_000
"""Rows one download holds at most: narrow the search for more (the file says so)."""

CSV_COLUMNS = ("id", "occurred_at", "username", "role", "action", "record_type", "record_id")


def _filter_names(filters: AuditFilters) -> list[str]:
    """Which filters a search used, never their values (a record id can name a person's)."""
    return sorted(name for name, value in vars(filters).items() if value is not None)


def _cell(value: Any) -> str:
    """A spreadsheet must not run a cell as a formula (OWASP's CSV injection)."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _trail_csv(entries: Sequence[AuditEntry], cut: bool) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([*CSV_COLUMNS, "detail"])
    for e in entries:
        writer.writerow(
            [_cell(getattr(e, name)) for name in CSV_COLUMNS]
            + [_cell(json.dumps(e.detail, sort_keys=True))]
        )
    if cut:
        writer.writerow([f"only the newest {EXPORT_MOST} rows: narrow the search for the rest"])
    return out.getvalue()


async def export_csv(filters: AuditFilters, actor: Actor) -> tuple[str, int]:
    """The trail under ``filters`` as CSV, newest first, and how many rows matched.

    The download is itself audited (an export of the audit trail, naming the
    filters used): copies of the trail leave the service only on the record.
    """
    found = await search(filters, Paging(EXPORT_MOST, 0))
    await record(
        actor,
        AuditAction.export,
        RecordType.audit_trail,
        None,
        {"filters": _filter_names(filters), "rows": len(found.items)},
    )
    text = await off_loop(_trail_csv, found.items, found.total > len(found.items))
    return text, found.total
