"""HTTP route for admins to read the audit trail."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar import Controller, get
from litestar.params import Parameter

from programme.accounts import access
from programme.audit import services
from programme.audit.schemas import AuditPage
from programme.tables import Role


class AuditController(Controller):
    path = "/audit"
    tags = ["audit"]
    guards = [access.requires(Role.admin)]

    @get("/")
    async def search(
        self,
        record_type: str | None = None,
        record_id: str | None = None,
        account_id: UUID | None = None,
        username: str | None = None,
        limit: Annotated[int, Parameter(ge=1, le=1000)] = 100,
        offset: Annotated[int, Parameter(ge=0)] = 0,
    ) -> AuditPage:
        """Who did what to which record, newest first; filter by record and account."""
        items = await services.search(
            record_type=record_type,
            record_id=record_id,
            account_id=account_id,
            username=username,
            limit=limit,
            offset=offset,
        )
        return AuditPage(items=items, limit=limit, offset=offset)
