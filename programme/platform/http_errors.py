"""Every error becomes an HTTP answer here, and only here.

Bodies always have the same shape, with at least one problem listed::

    {"status_code": 422, "detail": "...", "errors": [{"code", "field", "message"}], ...}

An error about the request as a whole (404, 409, ...) lists one problem with
the empty field; keys beside ``errors`` (``reasons``, ``retry_after_seconds``)
only ever add to the shape.

Nothing from the request body is echoed back and nothing personal is logged:
an unexpected failure logs its type and stack frames, never its message (a
database error message can quote the row it failed on).
"""

from __future__ import annotations

import logging
import traceback
from typing import Any, get_args, get_origin

import msgspec
from litestar import MediaType, Request, Response
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.types import ExceptionHandlersMap

from programme.platform.accounts.access import NOT_SERVED
from programme.platform.database import UNREACHABLE_ERRORS
from programme.platform.errors import (
    ApplicationError,
    FieldError,
    NewPasswordRequired,
    NotAuthenticated,
    NotPermitted,
    ServiceUnavailable,
)
from programme.platform.validation import decode_json, expected, field_errors
from programme.platform.web import browser

CSRF_FAILED = "CSRF token verification failed"
"""Litestar's CSRF middleware's words for a form without its token."""

log = logging.getLogger("programme.errors")

CODES = {
    400: "invalid",
    401: "not_signed_in",
    403: "not_permitted",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    422: "invalid",
    429: "too_many_attempts",
    500: "internal_error",
    503: "unavailable",
}
"""The code of the one problem an error about the whole request lists, by status."""


def _body(
    request: Request,
    status: int,
    detail: str,
    errors: list[FieldError],
    extra: dict[str, Any],
    headers: dict[str, str] | None = None,
) -> Response:
    """The answer: the JSON shape above, or on a web page an HTML page (``web.browser``)."""
    errors = errors or [FieldError(CODES.get(status, "error"), "", detail)]
    content: dict[str, Any] = {"status_code": status, "detail": detail, "errors": errors, **extra}
    headers = dict(headers or {})
    if status == 429 and "retry_after_seconds" in extra:
        headers["Retry-After"] = str(extra["retry_after_seconds"])
    if status == 503:
        headers["Retry-After"] = "5"
    if browser.is_page(request):
        return browser.page_error(request, status, detail, errors, headers)
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return Response(content, status_code=status, media_type=MediaType.JSON, headers=headers)


def application_error(request: Request, exc: ApplicationError) -> Response:
    if isinstance(exc, NewPasswordRequired) and browser.is_page(request):
        # After an admin's reset, every page leads to choosing the new password.
        return browser.new_password_first(request)
    errors = exc.errors or [
        FieldError(exc.code or CODES.get(exc.status_code, "error"), "", exc.message)
    ]
    return _body(request, exc.status_code, exc.message, errors, exc.extra)


def body_problems(request: Request, raw: Any) -> list[FieldError]:
    """Every problem with a decoded JSON body, for routes that take a Struct (or a list).

    Strictly typed: JSON has real booleans and numbers, so ``0`` is not ``false`` and
    ``"3"`` is not ``3`` (Litestar's own decoding of arguments is lax, for query strings).
    """
    body_type = _body_struct(request)
    return [] if body_type is None else _body_errors(*body_type, raw)


def _body_struct(request: Request) -> tuple[type[msgspec.Struct], bool] | None:
    """The Struct the route decodes its body into, and whether it takes a list of them."""
    handler = request.scope.get("route_handler")
    data = getattr(handler, "parsed_fn_signature", None)
    if data is None or "data" not in data.parameters:
        return None
    annotation = data.parameters["data"].annotation
    is_list = get_origin(annotation) is list
    for candidate in (annotation, *get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, msgspec.Struct):
            return candidate, is_list
    return None


def _body_errors(struct_type: type[msgspec.Struct], is_list: bool, raw: Any) -> list[FieldError]:
    if not is_list:
        return field_errors(struct_type, raw)
    if not isinstance(raw, list):
        return [FieldError("invalid", "", "The body must be a JSON list.")]
    return [
        FieldError(e.code, f"[{i}].{e.field}" if e.field else f"[{i}]", e.message)
        for i, item in enumerate(raw)
        for e in field_errors(struct_type, item)
    ]


def _received_body(request: Request) -> bytes | None:
    """The body Litestar already read (exception handlers cannot await a read)."""
    body = request._connection_state.body
    return body if isinstance(body, bytes) else None


def _parameter(request: Request, key: str) -> tuple[str, str | None]:
    """A query or path parameter's public name, and what it takes in the errors' words."""
    handler = request.scope.get("route_handler")
    signature = getattr(handler, "parsed_fn_signature", None)
    for name, definition in getattr(signature, "parameters", {}).items():
        kwarg = definition.kwarg_definition
        alias = getattr(kwarg, "name", None)  # e.g. ``from``, which Python cannot name
        if key in (name, alias):
            bounds = {b: getattr(kwarg, b, None) for b in ("ge", "le", "min_length", "max_length")}
            return alias or name, expected(definition.annotation, **bounds)
    return key, None


def validation_error(request: Request, exc: ValidationException) -> Response:
    """Litestar's decoding stops at the first problem; list them all instead."""
    errors: list[FieldError] = []
    body_type = _body_struct(request)
    body = _received_body(request)
    if body_type is not None and body is not None:
        try:
            raw = decode_json(body)
        except ApplicationError as unreadable:
            errors = unreadable.errors
        else:
            errors = _body_errors(*body_type, raw)
    if isinstance(exc.extra, list):
        for item in exc.extra:
            # A body's problems are listed above, each; the parameters' are added to them.
            if isinstance(item, dict) and not (errors and item.get("source") == "body"):
                field, message = _parameter(request, str(item.get("key") or ""))
                errors.append(
                    FieldError("invalid", field, message or str(item.get("message") or ""))
                )
    if not errors:
        errors = [FieldError("invalid", "", "The request could not be read.")]
    return _body(request, 422, "The request has problems; see errors.", errors, {})


def http_exception(request: Request, exc: HTTPException) -> Response:
    if isinstance(exc, NotAuthorizedException):
        return application_error(
            request, NotAuthenticated("Sign in first: a valid bearer token is needed.")
        )
    if isinstance(exc, PermissionDeniedException):
        if exc.detail == CSRF_FAILED and browser.is_page(request):
            # A signed-out person's refused form is refused too, not sent to sign in.
            refused = [FieldError("csrf", "", browser.CSRF_REFUSED)]
            return browser.page_error(
                request,
                403,
                browser.CSRF_REFUSED,
                refused,
                {},
                to_sign_in=False,
                title="This form could not be sent",
            )
        return application_error(request, NotPermitted())
    if exc.status_code >= 500:
        # Litestar's own 5xx details describe its internals (a missing middleware, a
        # failed dependency): log the type, answer as for any unexpected error.
        return unexpected_error(request, exc)
    if exc.status_code == 405:
        allow = {k.lower(): v for k, v in (exc.headers or {}).items()}.get("allow", "")
        served = {m.strip() for m in allow.split(",")} - NOT_SERVED - {""}
        detail = "This path does not take that method; see the Allow header."
        return _body(request, 405, detail, [], {}, {"Allow": ", ".join(sorted(served))})
    return _body(request, exc.status_code, str(exc.detail), [], {})


def database_unreachable(request: Request, exc: Exception) -> Response:
    log.warning("database unreachable: %s", type(exc).__name__)
    return application_error(request, ServiceUnavailable())


def unexpected_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, UNREACHABLE_ERRORS):
        return database_unreachable(request, exc)
    frames = "".join(traceback.format_tb(exc.__traceback__))
    log.error(
        "unexpected %s on %s %s\n%s", type(exc).__name__, request.method, request.url.path, frames
    )
    return _body(request, 500, "Something went wrong on our side; it has been logged.", [], {})


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    ApplicationError: application_error,
    ValidationException: validation_error,
    HTTPException: http_exception,
    **{error: database_unreachable for error in UNREACHABLE_ERRORS},
    Exception: unexpected_error,
}
