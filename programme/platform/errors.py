"""The one exception hierarchy of the application.

Services raise these and never touch HTTP; ``programme.platform.http_errors`` maps
them to responses in exactly one place.
"""

from __future__ import annotations

from typing import Any

import msgspec


class FieldError(msgspec.Struct, frozen=True):
    """One problem with one part of the input."""

    code: str
    field: str
    message: str


class ApplicationError(Exception):
    """Base of every error a service raises on purpose.

    ``errors`` lists every problem; an error about the request as a whole gives
    none, and its answer lists one problem with ``code`` (by default the
    status's code, see ``programme.platform.http_errors``) and the message.
    """

    status_code = 400
    default_message = "The request cannot be carried out."

    def __init__(
        self,
        message: str | None = None,
        *,
        errors: list[FieldError] | None = None,
        extra: dict[str, Any] | None = None,
        code: str | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.errors = errors or []
        self.extra = extra or {}
        self.code = code
        super().__init__(self.message)


class UnreadableInput(ApplicationError):
    """The request cannot be read at all (not JSON, not UTF-8, nested too deep)."""

    status_code = 400
    default_message = "The request cannot be read; see errors."


class InvalidInput(ApplicationError):
    """The input is wrong; ``errors`` lists every problem, not just the first."""

    status_code = 422
    default_message = "The request has problems; see errors."


class NotAuthenticated(ApplicationError):
    status_code = 401
    default_message = "Sign in first."


class NotPermitted(ApplicationError):
    status_code = 403
    default_message = "Your role may not do this."


class NewPasswordRequired(NotPermitted):
    """An admin reset this person's password: nothing but choosing a new one until they do.

    The API answers 403 ``new_password_required``; the pages go to the password page.
    """

    default_message = "Your password was reset: choose a new one first (POST /auth/password)."

    def __init__(self) -> None:
        super().__init__(code="new_password_required")


class NotFound(ApplicationError):
    status_code = 404
    default_message = "No such record."


class Conflict(ApplicationError):
    status_code = 409
    default_message = "This conflicts with the current state of the record."


class QuarterLocked(Conflict):
    """A write would change the figures of a quarter already reported (409 ``quarter_locked``).

    Raised by ``programme.platform.locked_quarters.services.require_unlocked``;
    ``extra`` names the locked quarters the write touches.
    """

    def __init__(self, message: str, quarters: list[str]) -> None:
        super().__init__(
            message,
            errors=[FieldError("quarter_locked", "", message)],
            extra={"locked_quarters": quarters},
        )


class TooManyAttempts(ApplicationError):
    status_code = 429
    default_message = "Too many failed attempts; try again later."

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__(extra={"retry_after_seconds": retry_after_seconds})
        self.retry_after_seconds = retry_after_seconds


class ServiceUnavailable(ApplicationError):
    status_code = 503
    default_message = "The database cannot be reached; try again shortly."


class ErrorBody(msgspec.Struct):
    """The one shape of every error answer (``programme.platform.http_errors`` writes it).

    Some answers add a field beside these: ``retry_after_seconds`` on 429, the
    existing record's ``id`` on some 409s.
    """

    status_code: int
    detail: str
    errors: list[FieldError]
    """Every problem found, not just the first; never empty: each has a code to act on."""
