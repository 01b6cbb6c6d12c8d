"""Audit trail entries as admins read them."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec


class AuditEntry(msgspec.Struct):
    id: int
    occurred_at: datetime
    account_id: UUID | None
    username: str
    role: str
    action: str
    record_type: str
    record_id: str | None
    detail: dict[str, Any]


class AuditPage(msgspec.Struct):
    items: list[AuditEntry]
    limit: int
    offset: int
