"""Deny by default: every route names its roles, and the rest are refused."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest
from litestar import Litestar, get

from programme.app import create_app
from programme.platform.accounts import access
from programme.platform.settings import ConfigurationError, get_settings
from programme.platform.tables import Role

pytestmark = pytest.mark.anyio

PUBLIC_ROUTES = {("GET", "/health"), ("POST", "/auth/login")}


def concrete(path: str) -> str:
    path = re.sub(r"\{[^}:]+:int\}", "1", path)  # a step's id
    return re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)


def api_routes(app: Litestar):
    return list(access.api_routes_and_roles(app))


async def test_every_route_is_public_by_name_or_declares_its_roles(app):
    public = {(method, path) for method, path, roles, is_public in api_routes(app) if is_public}
    assert public == PUBLIC_ROUTES
    undeclared = [
        (m, p) for m, p, roles, is_public in api_routes(app) if not is_public and not roles
    ]
    assert undeclared == []


def test_an_app_with_an_unguarded_route_refuses_to_start():
    @get("/forgotten", sync_to_thread=False)
    def forgotten() -> str:
        return "should never be served"

    with pytest.raises(ConfigurationError, match="GET /forgotten"):
        create_app(get_settings(), extra_routes=[forgotten])


async def test_an_unguarded_route_that_slipped_past_start_up_is_still_refused(
    app, sign_in, clean_database
):
    """The app-wide guard is the second line behind the start-up check."""

    @get("/slipped", sync_to_thread=False)
    def slipped() -> str:
        return "should never be served"

    app.register(slipped)
    headers = await sign_in(Role.admin, "alice")

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        response = await http.get("/slipped", headers=headers)
    assert response.status_code == 403


async def test_every_guarded_route_answers_401_without_a_token(client, app):
    for method, path, _, is_public in api_routes(app):
        if is_public:
            continue
        response = await client.request(method, concrete(path), json={})
        assert response.status_code == 401, (method, path, response.status_code)


async def test_every_role_outside_a_routes_roles_gets_403(client, app, sign_in):
    tokens = {role.value: await sign_in(role, f"{role.value}-walker") for role in Role}
    for method, path, roles, is_public in api_routes(app):
        # Signing out revokes the walker's own token: its roles are tested on their own
        # (tests/programme/platform/test_account_admin.py).
        if is_public or (method, path) == ("POST", "/auth/logout"):
            continue
        for role, headers in tokens.items():
            response = await client.request(method, concrete(path), json={}, headers=headers)
            if role in roles:
                assert response.status_code not in (401, 403), (method, path, role)
            else:
                assert response.status_code == 403, (method, path, role, response.status_code)


async def test_the_openapi_schema_is_public(client):
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    assert "/auth/login" in response.json()["paths"]
