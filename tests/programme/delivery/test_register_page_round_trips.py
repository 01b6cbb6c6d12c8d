"""The register's page costs what the API costs, in statements to the database: its
``GET`` one read like ``GET /sessions/{id}/attendance``, its save (htmx, answered with
the register drawn again) no more than ``PUT /sessions/{id}/attendance``. Counted with
asyncpg's query logger on the one pooled connection (a count, never a timing), so the
reads the page once made before and after saving cannot come back unnoticed."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from programme.delivery.rules import Mark
from tests.programme.delivery import test_register_round_trips as round_trips
from tests.programme.web.helpers import browser, csrf_from, sign_in

pytestmark = pytest.mark.anyio

# The same counting, on the same twelve-person group, as the service's own count.
statements = round_trips.statements
twelve = round_trips.twelve
REGISTER_A, REGISTER_B = round_trips.REGISTER_A, round_trips.REGISTER_B

SIGNED_IN = 4
"""A page's request finds its account (BEGIN, the read, COMMIT, the connection's reset);
a bearer token's also asks whether the token was revoked."""

HTMX = {"HX-Request": "true"}


async def counted(logged: list[str], send) -> list[str]:
    """The statements one request sends, the connection's reset included."""
    await asyncio.sleep(0.05)  # loggers run via call_soon: let earlier ones land first
    logged.clear()
    response = await send()
    await asyncio.sleep(0.05)
    assert response.status_code == 200, response.text
    return [" ".join(s.split())[:90] for s in logged]


def within(page: list[str], api: list[str]) -> bool:
    """Every statement the page sent, the API route sent too."""
    return not Counter(page) - Counter(api)


def _form(csrf: str, people: list[str], marks: list[Mark]) -> dict[str, str]:
    return {"_csrf_token": csrf} | {
        f"mark-{p}": m.value for p, m in zip(people, marks, strict=True)
    }


def _body(people: list[str], marks: list[Mark]) -> list[dict[str, str]]:
    return [{"referral_id": p, "status": m.value} for p, m in zip(people, marks, strict=True)]


async def test_the_register_page_reads_and_saves_in_as_many_statements_as_the_api(
    app, client, statements, group, twelve, add_session, fran
):
    page_session = await add_session(group, 1, "2026-10-06")
    api_session = await add_session(group, 2, "2026-10-13")
    path = f"/delivery/groups/{group}/sessions/{page_session}/register"
    attendance = f"/sessions/{api_session}/attendance"
    async with browser(app) as http:
        await sign_in(http, "fran")
        shown = await http.get(path)  # also meets the read's array types on the connection
        csrf = csrf_from(shown.text)

        async def page_save(marks):
            return await http.post(path, data=_form(csrf, twelve, marks), headers=HTMX)

        async def api_save(marks):
            return await client.put(attendance, json=_body(twelve, marks), headers=fran)

        # The first save of each: new marks; counted below are corrections of every line.
        assert (await page_save(REGISTER_A)).status_code == 200
        assert (await api_save(REGISTER_A)).status_code == 200

        page_get = await counted(statements, lambda: http.get(path))
        api_get = await counted(statements, lambda: client.get(attendance, headers=fran))
        assert within(page_get, api_get), (page_get, api_get)
        # Its account, then one read: BEGIN, the read, COMMIT, the connection's reset.
        assert len(page_get) == SIGNED_IN + 4, page_get

        page_put = await counted(statements, lambda: page_save(REGISTER_B))
        api_put = await counted(statements, lambda: api_save(REGISTER_B))
        assert within(page_put, api_put), (page_put, api_put)
        assert len(page_put) <= SIGNED_IN + round_trips.MOST_ROUND_TRIPS, page_put

        saved = await http.get(path)
        assert "Register corrected" not in saved.text  # htmx saves leave no notice behind
        assert saved.text.count(" checked>") == 12
