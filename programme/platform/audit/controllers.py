"""HTTP route for admins to read the audit trail."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar import Controller, get
from litestar.params import FromQuery, QueryParameter

from programme.platform.accounts import access
from programme.platform.audit import services
from programme.platform.audit.schemas import AuditPage
from programme.platform.http_inputs import Offset
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
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
        offset: Offset = 0,
    ) -> AuditPage:
        """Who did what to which record, newest first; filter by record and account."""
        items = await services.search(
            record_type=record_type,
            record_id=record_id,
            account_id=account_id,
            username=username,
            action=action,
            limit=limit,
            offset=offset,
        )
        return AuditPage(items=items, limit=limit, offset=offset)
