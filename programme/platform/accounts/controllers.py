"""HTTP routes for signing in, accounts and agencies."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from litestar import Controller, Request, get, patch, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody
from litestar.security.jwt import Token

from programme.platform.accounts import access, services
from programme.platform.accounts.schemas import (
    Account,
    AccountChange,
    AccountCreate,
    Agency,
    AgencyCreate,
    Lockout,
    LoginRequest,
    PasswordChange,
    PasswordReset,
    Principal,
    TokenResponse,
)
from programme.platform.errors import (
    Conflict,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    TooManyAttempts,
)
from programme.platform.http_inputs import Limit, Offset
from programme.platform.openapi import docs
from programme.platform.paging import DEFAULT_LIMIT, Page, Paging
from programme.platform.tables import Role


class AuthController(Controller):
    path = "/auth"
    tags = ["accounts"]

    @post(
        "/login",
        opt={**access.PUBLIC_ROUTE, **docs(raises=(NotAuthenticated, TooManyAttempts))},
        status_code=200,
    )
    async def login(
        self, data: JSONBody[LoginRequest], request: Request[Any, Any, Any], state: State
    ) -> TokenResponse:
        """Exchange a username and password for a bearer token.

        Repeated failures delay further attempts, per username and per client
        address (429 with ``Retry-After``); see ``accounts.rules``.
        """
        address = access.client_address(request, state.settings)
        principal = await services.authenticate(
            data.username, data.password, address, state.settings, state.refusals
        )
        token = access.issue_token(state.jwt_auth, principal, state.settings)
        return TokenResponse(access_token=token, expires_in=state.settings.token_ttl_minutes * 60)

    @get(
        "/me",
        guards=[access.requires(*access.EVERY_ROLE)],
        opt={access.BEFORE_NEW_PASSWORD: True},
    )
    async def me(self, actor: access.SignedIn) -> Principal:
        """Who the token belongs to; ``reset_pending``: choose a new password first."""
        return actor

    @post(
        "/logout",
        guards=[access.requires(*access.EVERY_ROLE)],
        opt={access.BEFORE_NEW_PASSWORD: True},
        status_code=204,
    )
    async def logout(self, request: Request[Any, Token, Any], actor: access.SignedIn) -> None:
        """Sign out: this token is refused from now on, until it would have expired."""
        token = request.auth
        jti = token.jti if isinstance(token.jti, str) else None
        await services.revoke_token(jti, token.exp, actor)

    @post(
        "/password",
        guards=[access.requires(*access.EVERY_ROLE)],
        opt={access.BEFORE_NEW_PASSWORD: True, **docs(raises=(InvalidInput, TooManyAttempts))},
        status_code=204,
    )
    async def change_password(
        self,
        data: JSONBody[PasswordChange],
        actor: access.SignedIn,
        request: Request[Any, Any, Any],
        state: State,
    ) -> None:
        """Change one's own password, the current one first (checked as a sign-in is).

        After an admin's reset this is the only route, beside ``/auth/me`` and
        ``/auth/logout``, the token may call; it then may call the rest again.
        """
        await services.change_own_password(
            actor,
            data.current,
            data.new,
            access.client_address(request, state.settings),
            state.settings,
            state.refusals,
        )


class AccountController(Controller):
    path = "/accounts"
    tags = ["accounts"]
    guards = [access.requires(Role.admin)]

    @get("/")
    async def list_accounts(
        self, actor: access.SignedIn, limit: Limit = DEFAULT_LIMIT, offset: Offset = 0
    ) -> Page[Account]:
        return await services.list_accounts(actor, Paging(limit, offset))

    @post("/", opt=docs(raises=(Conflict,)))
    async def create_account(
        self, data: JSONBody[AccountCreate], actor: access.SignedIn
    ) -> Account:
        return await services.create_account(data, actor)

    @get("/{account_id:uuid}", opt=docs(raises=(NotFound,)))
    async def get_account(self, account_id: FromPath[UUID], actor: access.SignedIn) -> Account:
        return await services.get_account_for_admin(account_id, actor)

    @patch("/{account_id:uuid}", opt=docs(raises=(Conflict, NotFound)))
    async def change_role(
        self, account_id: FromPath[UUID], data: JSONBody[AccountChange], actor: access.SignedIn
    ) -> Account:
        """A new role (a referrer names an agency): every token and browser session issued
        before is refused. Never one's own role, never the last active admin's."""
        return await services.change_role(account_id, data, actor)

    @post("/{account_id:uuid}/deactivate", opt=docs(raises=(Conflict, NotFound)), status_code=200)
    async def deactivate(self, account_id: FromPath[UUID], actor: access.SignedIn) -> Account:
        """A leaver: their tokens and browser sessions are refused at once; they cannot sign
        in. Never one's own account, never the last active admin."""
        return await services.set_active(account_id, False, actor)

    @post("/{account_id:uuid}/reactivate", opt=docs(raises=(NotFound,)), status_code=200)
    async def reactivate(self, account_id: FromPath[UUID], actor: access.SignedIn) -> Account:
        """They may sign in again; tokens and sessions from before stay refused."""
        return await services.set_active(account_id, True, actor)

    @post("/{account_id:uuid}/reset-password", opt=docs(raises=(NotFound,)), status_code=200)
    async def reset_password(
        self, account_id: FromPath[UUID], actor: access.SignedIn
    ) -> PasswordReset:
        """A temporary password, shown this once: at the next sign-in its owner must choose a
        new one before anything else. Every token and browser session of theirs ends."""
        return await services.reset_password(account_id, actor)

    @get("/{account_id:uuid}/lockout", opt=docs(raises=(NotFound,)))
    async def lockout(self, account_id: FromPath[UUID]) -> Lockout:
        """Whether the username's sign-ins are delayed now (see ``accounts.rules``)."""
        return await services.lockout(account_id, datetime.now(UTC))

    @post("/{account_id:uuid}/unlock", opt=docs(raises=(NotFound,)), status_code=200)
    async def unlock(
        self, account_id: FromPath[UUID], actor: access.SignedIn, state: State
    ) -> Lockout:
        """Lift the username's sign-in delay (its failures forgotten, from every address);
        addresses that guessed stay delayed."""
        return await services.unlock(account_id, actor, state.refusals)


class AgencyController(Controller):
    path = "/agencies"
    tags = ["accounts"]

    @get("/", guards=[access.requires(Role.admin, Role.monitor)])
    async def list_agencies(self, limit: Limit = DEFAULT_LIMIT, offset: Offset = 0) -> Page[Agency]:
        """Admins and monitors: agencies are what referral quality is reported by."""
        return await services.list_agencies(Paging(limit, offset))

    @post("/", guards=[access.requires(Role.admin)], opt=docs(raises=(Conflict,)))
    async def create_agency(self, data: JSONBody[AgencyCreate], actor: access.SignedIn) -> Agency:
        return await services.create_agency(data.name, actor)
