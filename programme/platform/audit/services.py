"""Writing and reading the audit trail.

Every read or change of a record that identifies a person calls ``record``
in the same transaction as the work it describes, so a change is never kept
without its audit row. ``detail`` names fields and filters, never values.
"""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from programme.platform.accounts.schemas import Principal
from programme.platform.audit.schemas import AuditEntry
from programme.platform.tables import AuditAction, AuditEvent


async def record(
    actor: Principal,
    action: AuditAction,
    record_type: str,
    record_id: str | UUID | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    await AuditEvent.insert(
        AuditEvent(
            account_id=actor.id,
            username=actor.username,
            role=actor.role,
            action=action.value,
            record_type=record_type,
            record_id=None if record_id is None else str(record_id),
            detail=json.dumps(detail or {}),
        )
    )


async def record_many(
    actor: Principal,
    action: AuditAction,
    record_type: str,
    record_ids: list[str] | list[UUID],
    detail: dict[str, Any] | None = None,
) -> None:
    """One row per record read, written in a single statement."""
    if not record_ids:
        return
    detail_json = json.dumps(detail or {})
    await AuditEvent.insert(
        *[
            AuditEvent(
                account_id=actor.id,
                username=actor.username,
                role=actor.role,
                action=action.value,
                record_type=record_type,
                record_id=str(record_id),
                detail=detail_json,
            )
            for record_id in record_ids
        ]
    )


async def search(
    *,
    record_type: str | None = None,
    record_id: str | None = None,
    account_id: UUID | None = None,
    username: str | None = None,
    action: AuditAction | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[AuditEntry]:
    query = AuditEvent.select().order_by(AuditEvent.id, ascending=False).limit(limit).offset(offset)
    if record_type is not None:
        query = query.where(AuditEvent.record_type == record_type)
    if record_id is not None:
        query = query.where(AuditEvent.record_id == record_id)
    if account_id is not None:
        query = query.where(AuditEvent.account_id == account_id)
    if username is not None:
        query = query.where(AuditEvent.username == username)
    if action is not None:
        query = query.where(AuditEvent.action == action.value)
    rows = await query.output(load_json=True)
    return [AuditEntry(**row) for row in rows]
