"""The sign-in door: a refusal already decided is answered before the request is read.

A guessing client sends its next attempt the moment a 429 comes back. Each of
those refusals was decided from memory with no query, yet it still went the
whole way through the framework (routing, middleware, reading and validating
the body, the exception mapped to a 429), and forty such clients kept the event
loop busy enough that every other request waited behind them.

This wrapper sits in front of routing and looks only at ``POST`` to the sign-in
routes (``SIGN_IN_ROUTES``). It asks the accounts service the one question it
can answer without the username: is this client address refused right now
(``services.refused_at_the_door``: a refusal remembered for the address, or
its pace)? If so it answers the same 429 ``authenticate`` would, through the
one error mapping (``http_errors.application_error``: the API's JSON shape, or
the page for the sign-in form) with the same ``Retry-After``; the body is never
read. Otherwise the request goes on untouched. It decides nothing itself: the
rules are in ``accounts.rules``, the client address is ``access.client_address``'s.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from litestar import Request
from litestar.types import ASGIApp, Receive, Scope, Send

from programme.platform.accounts import access, services
from programme.platform.errors import TooManyAttempts
from programme.platform.http_errors import application_error
from programme.platform.web import browser

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.handlers import HTTPRouteHandler

LOGIN_PATH = "/auth/login"
SIGN_IN_ROUTES = frozenset({LOGIN_PATH, browser.SIGN_IN_PATH})
"""Paths whose ``POST`` is a sign-in: the API's and the sign-in form's."""


class SignInDoor:
    """ASGI wrapper around the router: see the module's docstring."""

    def __init__(self, app: ASGIApp, service: Litestar) -> None:
        self.app = app
        self.service = service
        self._routes: dict[str, tuple[HTTPRouteHandler, str]] | None = None

    def routes(self) -> dict[str, tuple[HTTPRouteHandler, str]]:
        """Each sign-in path's ``POST`` handler and route template, as routing would find them.

        Given to the refusal so that the error mapping answers as it does for the
        route (a page or JSON) and the access log names the route.
        """
        if self._routes is None:
            found = {}
            for route in self.service.routes:
                if route.path not in SIGN_IN_ROUTES:
                    continue
                for handler in getattr(route, "route_handlers", ()):
                    if "POST" in handler.http_methods:
                        found[route.path] = (handler, route.path_format)
            self._routes = found
        return self._routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        if scope["path"] not in SIGN_IN_ROUTES:
            await self.app(scope, receive, send)
            return
        state: Any = self.service.state
        address = access.scope_client_address(scope, state.settings)
        wait = services.refused_at_the_door(
            address, datetime.now(UTC), state.refusals, state.sign_in_pace
        )
        route = self.routes().get(scope["path"])
        if wait is None or route is None:
            await self.app(scope, receive, send)
            return
        scope["route_handler"], scope["path_template"] = route
        await refuse(scope, receive, send, wait)


async def refuse(scope: Scope, receive: Receive, send: Send, wait: int) -> None:
    """The 429 ``authenticate`` raises, answered by the one error mapping; ``receive``
    is never called, so the body stays unread."""
    request: Request[Any, Any, Any] = Request(scope, receive, send)
    response = application_error(request, TooManyAttempts(retry_after_seconds=wait))
    await response.to_asgi_response(app=None, request=request)(scope, receive, send)
