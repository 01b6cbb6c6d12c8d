"""HTTP route for admins to import a CSV file of referrals."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, post
from litestar.datastructures import State
from litestar.params import FromQuery

from programme.platform.accounts import access
from programme.platform.accounts.schemas import Principal
from programme.platform.clock import today
from programme.platform.tables import Role
from referrals.import_service import import_referrals
from referrals.schemas import ImportReport

MAX_UPLOAD_BYTES = 200 * 1024 * 1024


class ImportController(Controller):
    path = "/imports"
    tags = ["imports"]
    guards = [access.requires(Role.admin)]

    @post("/referrals", request_max_body_size=MAX_UPLOAD_BYTES)
    async def import_referrals(
        self,
        request: Request[Principal, Any, Any],
        state: State,
        skip_invalid: FromQuery[bool] = False,
    ) -> Response[ImportReport]:
        """Import a CSV file (the body); 422 with every row error when nothing was imported."""
        report = await import_referrals(
            await request.body(),
            access.current_user(request),
            state.settings,
            today(),
            skip_invalid=skip_invalid,
        )
        nothing_written = report.errors and not skip_invalid
        return Response(report, status_code=422 if nothing_written else 200)
