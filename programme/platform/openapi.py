"""The OpenAPI document, completed in one place from what the routes declare.

Clients are generated from ``/schema/openapi.json``, so it must say what the
service really does. Litestar writes most of it from the handlers' signatures;
``document`` adds what only this service knows:

- Security only on guarded routes. ``JWTAuth`` declares the bearer token for
  the whole document, public routes included; here it moves onto each route
  that is not marked ``access.PUBLIC``.
- The error answers every route can give, all in the one error shape
  (``ErrorBody``): 401 and 403 behind a guard, 404 with an id in the path,
  422 everywhere (any input, and a query parameter the route does not take),
  400 and 413 for a body, 503 everywhere (the database may be unreachable),
  and whatever the route ``raises`` besides (409, 429, ...).
  Litestar's own 400 "validation" answer goes: this service answers 422.
- What a route declares with ``docs(...)`` in its ``opt``: a body the handler
  reads raw (a CSV file, or JSON the intake checks must see unvalidated),
  and media types besides JSON that it answers with.

A response the route declares itself (``responses=``) is kept as declared.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, get_args
from weakref import WeakValueDictionary

import msgspec
from litestar import Litestar, Request, Router
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import (
    OpenAPI,
    OpenAPIFormat,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Reference,
    RequestBody,
    Schema,
    SecurityScheme,
)
from litestar.routes import HTTPRoute
from litestar.static_files import create_static_files_router
from swagger_ui_bundle import swagger_ui_path

from programme.platform.accounts import access
from programme.platform.errors import (
    ApplicationError,
    Conflict,
    ErrorBody,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    NotPermitted,
    ServiceUnavailable,
    TooManyAttempts,
)
from programme.platform.http_inputs import INCLUDES_INPUT_CHECK, refuse_unreadable_input

OPT = "openapi"
"""``opt`` key holding a route's ``Documented``."""

COMPONENTS = "#/components/schemas/{name}"
TEXT = Schema(type=OpenAPIType.STRING)
BINARY = Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)


@dataclass(frozen=True)
class Documented:
    """What a route says about itself that its signature cannot."""

    raises: tuple[type[ApplicationError], ...] = ()
    """Errors its services raise beyond those the route's shape implies."""
    body: type | None = None
    """The type its JSON body is documented as, when the handler takes it raw."""
    body_media_type: str | None = None
    """A non-JSON body the handler reads itself, e.g. ``text/csv``."""
    body_description: str | None = None
    also_answers: Mapping[str, str] = field(default_factory=dict)
    """Media types it answers with besides JSON, each with when it does."""
    answers_by_extension: Mapping[str, str] = field(default_factory=dict)
    """Media type of the answer by the path's extension (one handler, several paths)."""


def docs(**declared: Any) -> dict[str, Documented]:
    """``opt`` for a route: ``@post(..., opt=docs(raises=(Conflict,)))``."""
    return {OPT: Documented(**declared)}


_ERRORS: dict[int, type[ApplicationError]] = {
    error.status_code: error
    for error in (
        NotAuthenticated,
        NotPermitted,
        NotFound,
        Conflict,
        InvalidInput,
        TooManyAttempts,
        ServiceUnavailable,
    )
}
_FRAMEWORK_ERRORS = {
    400: "The body is not valid JSON.",
    413: "The body is too large.",
}
_HEADERS = {
    401: ("WWW-Authenticate", "Bearer: no token, or not a valid one.", OpenAPIType.STRING),
    429: ("Retry-After", "Seconds until the next attempt may succeed.", OpenAPIType.INTEGER),
    503: ("Retry-After", "Seconds to wait before trying again.", OpenAPIType.INTEGER),
}


def _snake(key: str) -> str:
    return {"not": "schema_not", "if": "schema_if", "else": "schema_else"}.get(
        key, re.sub(r"(?<!^)([A-Z])", r"_\1", key).lower()
    )


def _schema(raw: Any) -> Any:
    """A JSON Schema from msgspec as Litestar's spec objects; an unknown keyword fails here."""
    if isinstance(raw, list):
        return [_schema(item) for item in raw]
    if not isinstance(raw, dict):
        return raw
    if "$ref" in raw:
        return Reference(ref=raw["$ref"])
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "properties":
            values[key] = {name: _schema(sub) for name, sub in value.items()}
        elif key == "description":
            values[key] = inspect.cleandoc(value)
        elif key in {"enum", "required", "examples", "default", "const", "type"}:
            values[_snake(key)] = value
        else:
            values[_snake(key)] = _schema(value)
    return Schema(**values)


def _add_components(openapi: OpenAPI, *types: type) -> list[Reference]:
    """Component schemas for our own types; one Litestar made already is kept."""
    refs, components = msgspec.json.schema_components(types, ref_template=COMPONENTS)
    schemas = openapi.components.schemas
    for name, raw in components.items():
        if name not in schemas:
            schemas[name] = _schema(raw)
    return [Reference(ref=ref["$ref"]) for ref in refs]


def _error_response(status: int, error_body: Reference) -> OpenAPIResponse:
    error = _ERRORS.get(status)
    description = error.default_message if error else _FRAMEWORK_ERRORS[status]
    headers: dict[str, OpenAPIHeader | Reference] | None = None
    if status in _HEADERS:
        name, about, kind = _HEADERS[status]
        headers = {name: OpenAPIHeader(schema=Schema(type=kind), description=about)}
    return OpenAPIResponse(
        description=description,
        headers=headers,
        content={"application/json": OpenAPIMediaType(schema=error_body)},
    )


def _error_statuses(
    handler: HTTPRouteHandler, route: HTTPRoute, operation: Operation, declared: Documented
) -> set[int]:
    statuses = {503, *(error.status_code for error in declared.raises)}
    if not handler.opt.get(access.PUBLIC):
        statuses |= {401, 403}
    if route.path_parameters:
        statuses.add(404)
    # Every route: a query parameter it does not take, or a NUL in any, is refused with 422.
    statuses.add(422)
    if isinstance(operation.request_body, RequestBody):
        statuses.add(413)
        if "application/json" in operation.request_body.content:
            statuses.add(400)
    return statuses


def _close_refused_fields(
    openapi: OpenAPI, operation: Operation, handler: HTTPRouteHandler
) -> None:
    """A body that refuses unknown fields says so (``additionalProperties: false``).

    Generated clients and fuzzers otherwise take the document at its word and send
    extra fields the service then refuses with ``unknown_field``.
    """
    signature = getattr(handler, "parsed_fn_signature", None)
    data = signature.parameters.get("data") if signature is not None else None
    if data is None or operation.request_body is None:
        return
    annotation = data.annotation
    structs = [
        t
        for t in (annotation, *get_args(annotation))
        if isinstance(t, type) and issubclass(t, msgspec.Struct)
    ]
    if not structs or not structs[0].__struct_config__.forbid_unknown_fields:
        return
    body = operation.request_body
    for media in (body.content or {}).values() if isinstance(body, RequestBody) else ():
        schema = media.schema
        if isinstance(schema, Schema) and schema.items is not None:
            schema = schema.items
        if isinstance(schema, Reference):
            name = schema.ref.rsplit("/", 1)[-1]
            schema = (openapi.components.schemas or {}).get(name)
        if isinstance(schema, Schema):
            schema.additional_properties = False


def _complete_operation(
    openapi: OpenAPI,
    operation: Operation,
    handler: HTTPRouteHandler,
    route: HTTPRoute,
    security: list[Any],
    error_body: Reference,
) -> None:
    declared: Documented = handler.opt.get(OPT) or Documented()
    operation.security = None if handler.opt.get(access.PUBLIC) else security

    if declared.body is not None:
        (body_ref,) = _add_components(openapi, declared.body)
        operation.request_body = RequestBody(
            content={"application/json": OpenAPIMediaType(schema=body_ref)},
            description=declared.body_description,
            required=True,
        )
    elif declared.body_media_type is not None:
        operation.request_body = RequestBody(
            content={declared.body_media_type: OpenAPIMediaType(schema=TEXT)},
            description=declared.body_description,
            required=True,
        )

    _close_refused_fields(openapi, operation, handler)

    responses = operation.responses or {}
    own = {str(status) for status in handler.responses or ()}
    if "400" not in own:
        responses.pop("400", None)  # Litestar's "validation" answer: ours is 422

    success = next((status for status in responses if status.startswith("2")), None)
    if success is not None:
        answer = responses[success]
        assert isinstance(answer, OpenAPIResponse)
        content = dict(answer.content or {})
        for media_type, when in declared.also_answers.items():
            content[media_type] = OpenAPIMediaType(schema=TEXT)
            answer.description = f"{answer.description}; {media_type} {when}"
        extension = route.path.rsplit(".", 1)[-1]
        if extension in declared.answers_by_extension:
            media_type = declared.answers_by_extension[extension]
            text = media_type.startswith("text/") or media_type.endswith("+xml")
            content = {media_type: OpenAPIMediaType(schema=TEXT if text else BINARY)}
        answer.content = content

    for status in _error_statuses(handler, route, operation, declared):
        if str(status) not in responses:
            responses[str(status)] = _error_response(status, error_body)
    operation.responses = dict(sorted(responses.items()))


_completed: WeakValueDictionary[int, OpenAPI] = WeakValueDictionary()
"""Documents completed already, by identity (they do not hash)."""


def document(app: Litestar) -> OpenAPI:
    """The app's OpenAPI document, completed (once) as the module docstring says."""
    openapi = app.openapi_schema
    if _completed.get(id(openapi)) is openapi:
        return openapi
    security = list(openapi.security or [])
    openapi.security = None
    for scheme in (openapi.components.security_schemes or {}).values():
        if isinstance(scheme, SecurityScheme) and scheme.type == "http":
            # Litestar names the header too, which OpenAPI allows only for an apiKey scheme.
            scheme.name = None
            scheme.description = "The access_token from POST /auth/login."
    (error_body,) = _add_components(openapi, ErrorBody)
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        path_item = (openapi.paths or {}).get(route.path_format or "/")
        if path_item is None:
            continue
        for method, (handler, _) in route.route_handler_map.items():
            operation = getattr(path_item, method.lower(), None)
            if isinstance(operation, Operation):
                _complete_operation(openapi, operation, handler, route, security, error_body)
    _completed[id(openapi)] = openapi
    return openapi


async def complete_before_serving(request: Request[Any, Any, Any]) -> None:
    """``before_request`` of the router serving ``/schema``: the document is built on first use.

    On the event loop, not a worker thread, so two first requests cannot complete it at once.
    A layer's ``before_request`` replaces the app's, so this runs the app's input check first.
    """
    await refuse_unreadable_input(request)
    document(request.app)


setattr(complete_before_serving, INCLUDES_INPUT_CHECK, True)


SWAGGER_UI = f"{access.OPENAPI_PATH}/swagger-ui"
"""Swagger UI's files, served by the app itself: police and NHS networks often block CDNs."""


def config(*, title: str, version: str) -> OpenAPIConfig:
    """``/schema`` (Swagger UI) and ``/schema/openapi.json``, public, the document completed."""
    router = Router(
        access.OPENAPI_PATH,
        route_handlers=[
            create_static_files_router(
                path="/swagger-ui", directories=[swagger_ui_path], name="swagger-ui"
            )
        ],
        before_request=complete_before_serving,
        include_in_schema=False,
    )
    swagger = SwaggerRenderPlugin(
        js_url=f"{SWAGGER_UI}/swagger-ui-bundle.js",
        css_url=f"{SWAGGER_UI}/swagger-ui.css",
        standalone_preset_js_url=f"{SWAGGER_UI}/swagger-ui-standalone-preset.js",
        favicon=f"<link rel='icon' type='image/png' href='{SWAGGER_UI}/favicon-32x32.png'>",
    )
    return OpenAPIConfig(
        title=title, version=version, openapi_router=router, render_plugins=[swagger]
    )
