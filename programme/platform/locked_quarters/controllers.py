"""HTTP routes for marking quarters reported, and seeing which are."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, put
from litestar.params import PathParameter

from programme.platform.accounts import access
from programme.platform.clock import today
from programme.platform.errors import InvalidInput
from programme.platform.locked_quarters import services
from programme.platform.locked_quarters.schemas import LockedQuarterOut
from programme.platform.openapi import docs
from programme.platform.tables import Role

QuarterLabel = Annotated[
    str, PathParameter(description="A quarter like 'Q3 2021-22'.", max_length=40)
]


class LockedQuarterController(Controller):
    path = "/reports/locked-quarters"
    tags = ["reports"]

    @get("/", guards=[access.requires(Role.admin, Role.monitor)])
    async def list_locked(self) -> list[LockedQuarterOut]:
        """The quarters marked reported: who locked each and when, and whether it was revised."""
        return await services.locked_quarters()

    @put(
        "/{quarter:str}",
        guards=[access.requires(Role.admin)],
        opt=docs(raises=(InvalidInput,)),
    )
    async def lock(self, quarter: QuarterLabel, actor: access.SignedIn) -> LockedQuarterOut:
        """Mark a quarter reported: later writes dated in it are refused (409 quarter_locked)
        unless an admin gives override_reason, and then the report says it was revised."""
        return await services.lock_quarter(quarter, actor, today())
