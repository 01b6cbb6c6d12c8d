"""HTTP route for admins to read the audit trail."""

from __future__ import annotations

from datetime import date
from typing import Annotated
from uuid import UUID

from litestar import Controller, get
from litestar.params import FromQuery, QueryParameter

from programme.platform.accounts import access
from programme.platform.audit import services
from programme.platform.audit.schemas import AuditEntry
from programme.platform.http_inputs import Limit, Offset
from programme.platform.paging import DEFAULT_LIMIT, Page, Paging
from programme.platform.tables import AuditAction, RecordType, Role


class AuditController(Controller):
    path = "/audit"
    tags = ["audit"]
    guards = [access.requires(Role.admin)]

    @get("/")
    async def search(
        self,
        record_type: FromQuery[RecordType | None] = None,
        record_id: FromQuery[str | None] = None,
        account_id: FromQuery[UUID | None] = None,
        username: FromQuery[str | None] = None,
        action: FromQuery[AuditAction | None] = None,
        from_: Annotated[date | None, QueryParameter(name="from")] = None,
        to: Annotated[date | None, QueryParameter(name="to")] = None,
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
    ) -> Page[AuditEntry]:
        """Who did what to which record, newest first; filter by record, account and the
        days it happened (``from``/``to``, inclusive, UTC)."""
        return await services.search(
            services.AuditFilters(
                record_type=record_type,
                record_id=record_id,
                account_id=account_id,
                username=username,
                action=action,
                occurred_from=from_,
                occurred_to=to,
            ),
            Paging(limit, offset),
        )
