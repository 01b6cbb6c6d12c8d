"""One paging shape on every list that can grow: limit/offset in, items/total/limit/offset out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from programme.platform.paging import MAX_LIMIT, Page, Paging
from programme.platform.tables import AuditEvent, Role

pytestmark = pytest.mark.anyio

LISTS = (
    "/referrals",
    "/audit",
    "/accounts",
    "/agencies",
    "/groups",
    "/programme/at-risk",
    "/victims",
    "/victims/alerts",
)


def test_a_page_of_a_list_read_whole_counts_the_whole_list():
    page = Paging(limit=2, offset=3).slice(list(range(6)))
    assert page == Page(items=[3, 4], total=6, limit=2, offset=3)
    assert Paging(limit=2, offset=9).slice([1]).total == 1


async def test_every_list_route_takes_limit_and_offset_and_answers_a_page(app):
    """The OpenAPI document: each growing list takes both bounds and answers with a total."""
    document = app.openapi_schema.to_schema()
    schemas = document["components"]["schemas"]
    paged = []
    for path, item in document["paths"].items():
        operation = item.get("get") or item.get("post")
        if operation is None:  # a path with only PUT, say
            continue
        names = {p["name"]: p for p in operation.get("parameters", []) if p["in"] == "query"}
        if "limit" not in names:
            continue
        assert names["limit"]["schema"]["maximum"] == MAX_LIMIT, path
        assert "offset" in names, path
        ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        body = schemas[ref.rsplit("/", 1)[1]]
        if path == "/programme/waiting-list":
            body = schemas[body["properties"]["people"]["oneOf"][0]["$ref"].rsplit("/", 1)[1]]
        assert {"items", "total", "limit", "offset"} <= set(body["properties"]), path
        paged.append(path)
    assert set(LISTS) | {"/referrals/search", "/programme/waiting-list"} <= set(paged)


async def test_each_list_answers_the_one_shape_for_its_roles(client, sign_in):
    admin = await sign_in(Role.admin, "alice")
    fran = await sign_in(Role.facilitator, "fran")
    vic = await sign_in(Role.victim_worker, "vic")
    callers = {"/programme/at-risk": fran, "/victims": vic, "/victims/alerts": vic}
    for path in LISTS:
        response = await client.get(path, params={"limit": 1}, headers=callers.get(path, admin))
        assert response.status_code == 200, (path, response.text)
        body = response.json()
        assert set(body) == {"items", "total", "limit", "offset"}, path
        assert (body["limit"], body["offset"]) == (1, 0), path
        assert len(body["items"]) <= 1 and body["total"] >= len(body["items"]), path


async def test_groups_come_a_page_at_a_time_with_the_total(client, sign_in):
    fran = await sign_in(Role.facilitator, "fran")
    made = []
    for n in range(3):
        response = await client.post(
            "/groups",
            json={"name": f"Group {n}", "starts_on": f"2026-0{n + 1}-01", "facilitators": ["fran"],
                  "capacity": 12},
            headers=fran,
        )  # fmt: skip
        assert response.status_code == 201, response.text
        made.append(response.json()["id"])
    pages = [
        (await client.get("/groups", params={"limit": 2, "offset": o}, headers=fran)).json()
        for o in (0, 2, 4)
    ]
    assert [p["total"] for p in pages] == [3, 3, 3]
    assert [g["id"] for p in pages for g in p["items"]] == made  # earliest first, none twice
    assert pages[2]["items"] == []


async def test_accounts_and_agencies_count_them_all(client, sign_in):
    admin = await sign_in(Role.admin, "alice")
    for n in range(3):
        await sign_in(Role.referrer, f"referrer-{n}", agency=f"Agency {n}")
    accounts = (await client.get("/accounts", params={"limit": 2}, headers=admin)).json()
    assert (accounts["total"], len(accounts["items"])) == (4, 2)
    second = (await client.get("/accounts", params={"limit": 2, "offset": 2}, headers=admin)).json()
    names = [a["username"] for a in accounts["items"] + second["items"]]
    assert names == sorted(names) and len(set(names)) == 4
    agencies = (await client.get("/agencies", params={"limit": 1}, headers=admin)).json()
    assert (agencies["total"], len(agencies["items"])) == (3, 1)


async def test_the_audit_trail_has_a_total_and_filters_by_day(client, sign_in):
    admin = await sign_in(Role.admin, "alice")
    now = datetime.now(UTC)
    await AuditEvent.insert(
        *[
            AuditEvent(
                username="old",
                role="admin",
                action="read",
                record_type="referral",
                detail="{}",
                occurred_at=when,
            )
            for when in (now - timedelta(days=10), now - timedelta(days=5), now)
        ]
    )
    everything = (
        await client.get("/audit", params={"username": "old", "limit": 1}, headers=admin)
    ).json()
    assert (everything["total"], len(everything["items"])) == (3, 1)
    day = (now - timedelta(days=5)).date().isoformat()
    that_day = (
        await client.get("/audit", params={"username": "old", "from": day, "to": day},
                         headers=admin)
    ).json()  # fmt: skip
    assert that_day["total"] == 1
    assert that_day["items"][0]["occurred_at"].startswith(day)
    since = (
        await client.get("/audit", params={"username": "old", "from": day}, headers=admin)
    ).json()
    assert since["total"] == 2
    until = (
        await client.get("/audit", params={"username": "old", "to": day}, headers=admin)
    ).json()
    assert until["total"] == 2


async def test_an_audit_range_that_ends_before_it_starts_is_refused(client, sign_in):
    admin = await sign_in(Role.admin, "alice")
    response = await client.get(
        "/audit", params={"from": "2026-10-02", "to": "2026-10-01"}, headers=admin
    )
    assert response.status_code == 422
    assert [(e["code"], e["field"]) for e in response.json()["errors"]] == [("invalid", "to")]


@pytest.mark.parametrize("path", LISTS)
async def test_a_page_beyond_the_bounds_is_refused(client, sign_in, path):
    admin = await sign_in(Role.admin, "alice")
    response = await client.get(path, params={"limit": MAX_LIMIT + 1}, headers=admin)
    assert response.status_code in (422, 403), response.text
    if response.status_code == 422:
        assert [(e["code"], e["field"]) for e in response.json()["errors"]] == [
            ("invalid", "limit")
        ]
