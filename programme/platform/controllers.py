"""Liveness and database reachability, for load balancers and people alike."""

from __future__ import annotations

import msgspec
from litestar import Response, get
from litestar.openapi import ResponseSpec

from programme.platform import database
from programme.platform.accounts import access


class Health(msgspec.Struct):
    status: str
    database: str


@get(
    "/health",
    opt=access.PUBLIC_ROUTE,
    tags=["health"],
    responses={
        503: ResponseSpec(
            Health, description="The database cannot be reached.", generate_examples=False
        )
    },
)
async def health() -> Response[Health]:
    if await database.ping():
        return Response(Health(status="ok", database="ok"))
    return Response(Health(status="unavailable", database="unreachable"), status_code=503)
