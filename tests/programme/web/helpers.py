"""Driving the web pages over HTTP as a browser does: cookies, CSRF tokens from the forms."""

from __future__ import annotations

import re
from typing import Any

import httpx

from programme.platform.accounts import services as accounts
from programme.platform.tables import Account, Role
from tests.builders import ADMIN, PASSWORD, password_hash

CSRF_FIELD = re.compile(r'name="_csrf_token" value="([^"]+)"')


def csrf_from(html: str) -> str:
    found = CSRF_FIELD.search(html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


async def make_account(
    username: str, role: Role = Role.facilitator, agency: str | None = None
) -> None:
    """An account whose password is ``builders.PASSWORD``."""
    if role == Role.referrer and agency is None:
        agency = "South Yorkshire Police"
    agency_id = (await accounts.get_or_create_agency(agency, ADMIN))[0] if agency else None
    await Account.insert(
        Account(username=username, password_hash=password_hash(), role=role.value, agency=agency_id)
    )


async def submit(
    http: httpx.AsyncClient, page: str, action: str | None = None, **fields: Any
) -> httpx.Response:
    """Open ``page``, fill its form with ``fields`` and send it, as a browser would."""
    shown = await http.get(page)
    assert shown.status_code == 200, (page, shown.status_code)
    return await http.post(action or page, data={"_csrf_token": csrf_from(shown.text), **fields})


async def sign_in(
    http: httpx.AsyncClient, username: str, password: str = PASSWORD
) -> httpx.Response:
    return await submit(http, "/sign-in", username=username, password=password)


def browser(app: Any, *, https: bool = False) -> httpx.AsyncClient:
    """A fresh browser: its own cookie jar, following nothing by itself."""
    scheme = "https" if https else "http"
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=f"{scheme}://testserver"
    )
