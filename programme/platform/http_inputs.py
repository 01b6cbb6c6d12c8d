"""Input no route handler should ever see, refused at the request's edge.

``refuse_unreadable_input`` runs before every handler's arguments are decoded
(Litestar's app-wide ``before_request``, so after authentication and the role
guards): it refuses a NUL character in any query or path parameter and any
string of a JSON body (PostgreSQL cannot store one in text), and a body that is
not UTF-8, not JSON or nested too deep. CSV bodies are read by
``programme.imports.rules.read_csv``, which refuses the same NUL per line.

Integer query parameters are bounded (``Limit`` and ``Offset`` here, for the
paging of ``programme.platform.paging``; other limits beside each route), so none reaches
the database out of its range.

``refuse_unknown_parameters`` refuses a query parameter the route does not take,
naming each: a misspelt filter must not silently answer with the whole list.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import parse_qsl

from litestar import Litestar, Request
from litestar.handlers import HTTPRouteHandler
from litestar.params import QueryParameter

from programme.platform.errors import FieldError, InvalidInput
from programme.platform.http_errors import body_problems
from programme.platform.paging import MAX_LIMIT, MAX_OFFSET
from programme.platform.settings import ConfigurationError
from programme.platform.validation import NUL, decode_json


def takes_json_body(handler: Any) -> bool:
    """Whether the handler decodes its body as JSON (a ``data`` argument)."""
    signature = getattr(handler, "parsed_fn_signature", None)
    return signature is not None and "data" in signature.parameters


def _printable(name: str) -> str:
    return name.replace("\x00", "\\u0000")


Offset = Annotated[int, QueryParameter(ge=0, le=MAX_OFFSET, description="How many items to skip.")]
Limit = Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT, description="The most items to return.")]
"""The paging of every list route (``programme.platform.paging``), bounded."""

QUERY_PARAMETERS = "query_parameters"
"""Where each route handler's ``opt`` keeps the query parameters it takes (by public name)."""


def record_query_parameters(app: Litestar) -> None:
    """Note on each route handler the query parameters it takes: its own and its
    dependencies', read from the very model Litestar decodes its arguments with, so the
    list cannot drift from what the handler declares. Called once, as the app is built."""
    for route in app.routes:
        for handler, model in getattr(route, "route_handler_map", {}).values():
            handler.opt[QUERY_PARAMETERS] = frozenset(
                p.field_alias for p in model.expected_query_params
            )


def _query_parameter_names(handler: HTTPRouteHandler, path_parameters: set[str]) -> frozenset[str]:
    names = handler.opt.get(QUERY_PARAMETERS)
    if names is None:  # a handler the app was not built with: work it out now
        # Only the names are read; Litestar takes them as the keys of a mapping.
        model = handler.create_kwargs_model(path_parameters=dict.fromkeys(path_parameters))  # type: ignore[arg-type]
        names = frozenset(p.field_alias for p in model.expected_query_params)
    return frozenset(names)


def unknown_parameters(request: Request[Any, Any, Any], names: list[str]) -> list[FieldError]:
    """A ``unknown_parameter`` problem for each query parameter the route does not take."""
    handler = request.scope.get("route_handler")
    if not isinstance(handler, HTTPRouteHandler):
        return []
    taken = _query_parameter_names(handler, set(request.path_params))
    return [
        FieldError(
            "unknown_parameter",
            _printable(name),
            "This route does not take this parameter"
            + (f"; it takes: {', '.join(sorted(taken))}." if taken else "; it takes none."),
        )
        for name in dict.fromkeys(names)
        if name not in taken
    ]


async def refuse_unreadable_input(request: Request[Any, Any, Any]) -> None:
    """Raise ``InvalidInput`` naming every parameter or body field that holds a NUL,
    and every query parameter the route does not take."""
    query = request.scope.get("query_string", b"").decode("latin-1")
    pairs = parse_qsl(query, keep_blank_values=True)
    problems = [
        FieldError("invalid", _printable(name), NUL)
        for name, value in pairs
        if "\x00" in name or "\x00" in value
    ]
    reported = {problem.field for problem in problems}
    problems.extend(
        unknown_parameters(request, [name for name, _ in pairs if _printable(name) not in reported])
    )
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
