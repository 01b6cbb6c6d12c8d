"""Every error becomes an HTTP answer here, and only here.

Bodies always have the same shape::

    {"status_code": 422, "detail": "...", "errors": [{"code", "field", "message"}]}

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

from programme.platform.database import UNREACHABLE_ERRORS
from programme.platform.errors import (
    ApplicationError,
    FieldError,
    NotAuthenticated,
    NotPermitted,
    ServiceUnavailable,
)
from programme.platform.validation import field_errors

log = logging.getLogger("programme.errors")


def _body(status: int, detail: str, errors: list[FieldError], extra: dict[str, Any]) -> Response:
    content: dict[str, Any] = {"status_code": status, "detail": detail, "errors": errors, **extra}
    headers = {}
    if status == 429 and "retry_after_seconds" in extra:
        headers["Retry-After"] = str(extra["retry_after_seconds"])
    if status == 503:
        headers["Retry-After"] = "5"
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return Response(content, status_code=status, media_type=MediaType.JSON, headers=headers)


def application_error(_: Request, exc: ApplicationError) -> Response:
    return _body(exc.status_code, exc.message, exc.errors, exc.extra)


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


def validation_error(request: Request, exc: ValidationException) -> Response:
    """Litestar's decoding stops at the first problem; list them all instead."""
    errors: list[FieldError] = []
    expected = _body_struct(request)
    body = _received_body(request)
    if expected is not None and body is not None:
        try:
            raw = msgspec.json.decode(body)
        except msgspec.DecodeError:
            errors = [FieldError("invalid", "", "The body is not valid JSON.")]
        else:
            errors = _body_errors(*expected, raw)
    if not errors and isinstance(exc.extra, list):
        for item in exc.extra:
            if isinstance(item, dict):
                field = str(item.get("key") or "")
                message = str(item.get("message") or "Invalid value.")
                errors.append(FieldError("invalid", field, message))
    if not errors:
        errors = [FieldError("invalid", "", "The request could not be read.")]
    return _body(422, "The request has problems; see errors.", errors, {})


def http_exception(_: Request, exc: HTTPException) -> Response:
    if isinstance(exc, NotAuthorizedException):
        return application_error(
            _, NotAuthenticated("Sign in first: a valid bearer token is needed.")
        )
    if isinstance(exc, PermissionDeniedException):
        return application_error(_, NotPermitted())
    errors = [FieldError("invalid", "", str(exc.detail))] if exc.status_code == 400 else []
    return _body(exc.status_code, str(exc.detail), errors, {})


def database_unreachable(_: Request, exc: Exception) -> Response:
    log.warning("database unreachable: %s", type(exc).__name__)
    return application_error(_, ServiceUnavailable())


def unexpected_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, UNREACHABLE_ERRORS):
        return database_unreachable(request, exc)
    frames = "".join(traceback.format_tb(exc.__traceback__))
    log.error(
        "unexpected %s on %s %s\n%s", type(exc).__name__, request.method, request.url.path, frames
    )
    return _body(500, "Something went wrong on our side; it has been logged.", [], {})


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    ApplicationError: application_error,
    ValidationException: validation_error,
    HTTPException: http_exception,
    **{error: database_unreachable for error in UNREACHABLE_ERRORS},
    Exception: unexpected_error,
}
