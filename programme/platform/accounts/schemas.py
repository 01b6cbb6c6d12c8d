"""Request and response bodies for sign-in, accounts and agencies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec

from programme.platform.tables import Role

Username = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
Password = Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
AgencyName = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class Principal(msgspec.Struct, frozen=True):
    """Who is calling: resolved from the bearer token on every request."""

    id: UUID | None
    username: str
    role: str
    agency_id: UUID | None = None
    agency_name: str | None = None
    reset_pending: bool = False
    """An admin reset the password: nothing but choosing a new one until then."""
    token_generation: int = 0
    """Tokens and browser sessions carry it; a deactivation, role change or reset moves it on."""


SYSTEM = Principal(id=None, username="system", role="system")


class LoginRequest(msgspec.Struct, forbid_unknown_fields=True):
    username: Username
    password: Password


class TokenResponse(msgspec.Struct):
    access_token: str
    expires_in: int
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret


class AccountCreate(msgspec.Struct, forbid_unknown_fields=True):
    username: Username
    password: Password
    role: Role
    agency: AgencyName | None = None


class Account(msgspec.Struct):
    id: UUID
    username: str
    role: str
    agency: str | None
    active: bool
    created_at: datetime
    reset_pending: bool = False


class AgencyCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: AgencyName


class Agency(msgspec.Struct):
    id: UUID
    name: str
    created_at: datetime


class AccountChange(msgspec.Struct, forbid_unknown_fields=True):
    """A new role; a referrer names their agency (created if new)."""

    role: Role
    agency: AgencyName | None = None


class PasswordReset(msgspec.Struct):
    """A reset: the temporary password, shown this once, to be replaced at the next sign-in."""

    account: Account
    temporary_password: str


class PasswordChange(msgspec.Struct, forbid_unknown_fields=True):
    current: Password
    new: Password


class Lockout(msgspec.Struct):
    """Whether a username's sign-ins are delayed now (see ``accounts.rules``)."""

    username: str
    delayed_until: datetime | None
    failures: int
