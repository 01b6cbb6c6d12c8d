"""Input no route handler should ever see, refused at the request's edge.

``refuse_unreadable_input`` runs before every handler's arguments are decoded
(Litestar's app-wide ``before_request``, so after authentication and the role
guards): it refuses a NUL character in any query or path parameter and any
string of a JSON body (PostgreSQL cannot store one in text), and a body that is
not UTF-8, not JSON or nested too deep. CSV bodies are read by
``programme.imports.rules.read_csv``, which refuses the same NUL per line.

Integer query parameters are bounded (``Offset`` here; limits beside each
route), so none reaches the database out of its range.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import parse_qsl

from litestar import Litestar, Request
from litestar.handlers import HTTPRouteHandler
from litestar.params import QueryParameter

from programme.platform.errors import FieldError, InvalidInput
from programme.platform.http_errors import body_problems
from programme.platform.settings import ConfigurationError
from programme.platform.validation import NUL, decode_json

MAX_OFFSET = 1_000_000_000
"""Beyond any table's size; PostgreSQL's OFFSET itself stops at 2^63-1."""

Offset = Annotated[int, QueryParameter(ge=0, le=MAX_OFFSET)]


def takes_json_body(handler: Any) -> bool:
    """Whether the handler decodes its body as JSON (a ``data`` argument)."""
    signature = getattr(handler, "parsed_fn_signature", None)
    return signature is not None and "data" in signature.parameters


def _printable(name: str) -> str:
    return name.replace("\x00", "\\u0000")


async def refuse_unreadable_input(request: Request[Any, Any, Any]) -> None:
    """Raise ``InvalidInput`` naming every parameter or body field that holds a NUL."""
    query = request.scope.get("query_string", b"").decode("latin-1")
    problems = [
        FieldError("invalid", _printable(name), NUL)
        for name, value in parse_qsl(query, keep_blank_values=True)
        if "\x00" in name or "\x00" in value
    ]
    problems.extend(
        FieldError("invalid", name, NUL)
        for name, value in request.path_params.items()
        if isinstance(value, str) and "\x00" in value
    )
    if takes_json_body(request.route_handler):
        body = await request.body()
        if body:
            try:
                raw = decode_json(body)
            except InvalidInput as exc:
                problems.extend(exc.errors)
            else:
                problems.extend(body_problems(request, raw))
    if problems:
        raise InvalidInput(errors=problems)


INCLUDES_INPUT_CHECK = "includes_input_check"
"""Marks a layer's own ``before_request`` that awaits ``refuse_unreadable_input`` first."""


def check_every_route_checks_its_input(app: Litestar) -> None:
    """A route's own ``before_request`` would replace the app's: refuse to start with one,
    unless it is marked as running the app's check itself."""
    own = sorted(
        f"{method} {route.path}"
        for route in app.routes
        for handler in getattr(route, "route_handlers", ())
        if isinstance(handler, HTTPRouteHandler)
        and any(
            layer.before_request and not getattr(layer.before_request, INCLUDES_INPUT_CHECK, False)
            for layer in handler.ownership_layers[1:]
        )
        for method in handler.http_methods
    )
    if own:
        raise ConfigurationError("routes replacing the app's input checks: " + ", ".join(own))
