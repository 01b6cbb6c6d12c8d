"""One line per HTTP request: method, route, status, time taken, and who asked.

The route is the template the request matched (``/referrals/{referral_id:uuid}``),
never the path as sent, and nothing of the query string, headers or body is
written: paths, queries and bodies can carry names. The account is the
signed-in account's id, or ``-``.
"""

from __future__ import annotations

import logging
import time
from typing import Any, cast

from litestar.types import ASGIApp, HTTPScope, Message, Receive, Scope, Send

log = logging.getLogger("programme.access")

NO_ROUTE = "-"
"""What the line names as the route when the path matched none (a 404)."""

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
"""Methods written as sent; any other word a client sends is written as OTHER."""


class AccessLog:
    """ASGI wrapper around the whole app, so 401s and 404s are logged as well."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # if the app ends without answering, the server answers 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            method = cast(HTTPScope, scope)["method"]
            log.info(
                "%s %s %d %.1fms account=%s",
                method if method in METHODS else "OTHER",
                scope.get("path_template") or NO_ROUTE,
                status,
                (time.perf_counter() - started) * 1000,
                _account(scope),
            )


def _account(scope: Scope) -> str:
    user: Any = scope.get("user")
    account_id = getattr(user, "id", None)
    return str(account_id) if account_id is not None else "-"
