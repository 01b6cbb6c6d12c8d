"""HTTP routes for signing in, accounts and agencies."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.params import JSONBody

from programme.platform.accounts import access, services
from programme.platform.accounts.schemas import (
    Account,
    AccountCreate,
    Agency,
    AgencyCreate,
    LoginRequest,
    Principal,
    TokenResponse,
)
from programme.platform.errors import Conflict, NotAuthenticated, TooManyAttempts
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

    @get("/me", guards=[access.requires(*access.EVERY_ROLE)])
    async def me(self, actor: access.SignedIn) -> Principal:
        """Who the token belongs to."""
        return actor


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
