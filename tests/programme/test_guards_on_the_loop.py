"""Every guard is a coroutine: Litestar runs a guard written as a plain function in a
worker thread, one thread hop per guard per request (four for every page and route),
for checks that only read the request."""

from __future__ import annotations

from inspect import iscoroutinefunction

import pytest

pytestmark = pytest.mark.anyio


async def test_every_guard_of_every_route_is_a_coroutine(app):
    plain = [
        (route.path, getattr(guard, "__name__", repr(guard)))
        for route in app.routes
        for handler in getattr(route, "route_handlers", ())
        for layer in handler.ownership_layers
        for guard in layer.guards or ()
        if not iscoroutinefunction(guard)
    ]
    checked = sum(
        len(layer.guards or ())
        for route in app.routes
        for handler in getattr(route, "route_handlers", ())
        for layer in handler.ownership_layers
    )
    assert checked > 100  # the app-wide guards and each route's role guard, on every route
    assert plain == []
