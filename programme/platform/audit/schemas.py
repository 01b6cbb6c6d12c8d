"""Audit trail entries as admins read them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

import msgspec


class Actor(Protocol):
    """Whoever an audit row names: a signed-in account, or the system itself."""

    @property
    def id(self) -> UUID | None: ...

    @property
    def username(self) -> str: ...

    @property
    def role(self) -> str: ...


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
