"""No page but the victim workers' ever shows a victim/survivor.

Victims are recorded with names, phone numbers and feedback that appear
nowhere else (markers); then each other role signs in and every page it can
reach by following links from its home page is read (``crawl``), and no
marker may appear in any of them. The crawl must reach enough pages, and the
seeded victims must really be there for a victim worker, so it cannot pass by
reading nothing.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from programme.delivery import pages as delivery_pages
from programme.platform.accounts import access
from programme.platform.clock import today
from programme.platform.tables import Role
from referrals import pages as referral_pages
from tests.builders import distinct_referral
from tests.programme.web.crawl import crawl, leaks
from tests.programme.web.helpers import browser, sign_in

pytestmark = pytest.mark.anyio

VICTIMS = [
    {"first_name": "Ottoline", "last_name": "Quarrendon", "phone": "0114 496 0777"},
    {"first_name": "Perpetua", "last_name": "Vexleigh", "phone": "0114 496 0666"},
    {"first_name": "Sapphira", "last_name": "Wintercombe", "phone": "0114 496 0555"},
]
DISCLOSURE = "Kitchen door marker disclosure"

MARKERS = (
    *(v["first_name"] for v in VICTIMS),
    *(v["last_name"] for v in VICTIMS),
    "4960777", "496 0777", "+441144960777",
    "4960666", "496 0666", "+441144960666",
    "4960555", "496 0555", "+441144960555",
    DISCLOSURE,
)  # fmt: skip
"""Strings that would give a victim away wherever they appeared."""

LEAST_PAGES = {
    Role.referrer: 6,
    Role.facilitator: 15,
    Role.monitor: 2,
    Role.admin: 15,
}
"""At least this many pages read for each role: the crawl really went somewhere."""


@pytest.fixture
async def seeded(client, sign_in):
    """Three referrals naming a victim each, taken as far as a register; victim feedback."""
    received = today() - timedelta(days=20)
    rita = await sign_in(Role.referrer, "leak-rita")
    fran = await sign_in(Role.facilitator, "leak-fran")
    vic = await sign_in(Role.victim_worker, "leak-vic")
    await sign_in(Role.monitor, "leak-monitor")
    await sign_in(Role.admin, "leak-admin")
    ids, references = [], []
    for n, victim in enumerate(VICTIMS):
        body = distinct_referral(
            n,
            received_on=received.isoformat(),
            consent_obtained_on=received.isoformat(),
            victims=[
                victim
                | {
                    "relationship": "partner",
                    "consent_to_contact": True,
                    "consent_obtained_on": received.isoformat(),
                }
            ],
        )
        made = await client.post("/referrals", json=body, headers=rita)
        assert made.status_code == 201, made.text
        ids.append(made.json()["id"])
        references.append(made.json()["reference"])
    steps = {ids[0]: ("contacted", "engaged"), ids[1]: ("contacted",)}
    for referral_id, names in steps.items():
        for step in names:
            done = await client.post(
                f"/referrals/{referral_id}/events",
                json={"type": step, "on": (received + timedelta(days=1)).isoformat()},
                headers=fran,
            )
            assert done.status_code == 201, done.text
    group = await client.post(
        "/groups",
        json={
            "name": "Leak check group",
            "starts_on": (received + timedelta(days=2)).isoformat(),
            "facilitators": ["leak-fran"],
            "capacity": 8,
        },
        headers=fran,
    )
    assert group.status_code == 201, group.text
    group_id = group.json()["id"]
    added = await client.post(
        f"/groups/{group_id}/members", json={"referral_id": ids[0]}, headers=fran
    )
    assert added.status_code == 201, added.text
    sessions = []
    for number, days in ((1, 5), (2, 40)):
        session = await client.post(
            f"/groups/{group_id}/sessions",
            json={"number": number, "held_on": (received + timedelta(days=days)).isoformat()},
            headers=fran,
        )
        assert session.status_code == 201, session.text
        sessions.append(session.json()["id"])
    marked = await client.put(
        f"/sessions/{sessions[0]}/attendance",
        json=[{"referral_id": ids[0], "status": "attended"}],
        headers=fran,
    )
    assert marked.status_code == 200, marked.text
    # The markers are really recorded: the victim worker sees them.
    shown = []
    for referral_id in ids:
        victims = await client.get(f"/referrals/{referral_id}/victims", headers=vic)
        assert victims.status_code == 200, victims.text
        shown.append(victims.text)
    victim_id = (await client.get(f"/referrals/{ids[0]}/victims", headers=vic)).json()[0]["id"]
    feedback = await client.post(
        f"/victims/{victim_id}/feedback",
        json={
            "stage": "intake",
            "collected_on": today().isoformat(),
            "behaviour": "worse",
            "feels_safer": "no",
            "note": DISCLOSURE,
        },
        headers=vic,
    )
    assert feedback.status_code == 201, feedback.text
    for victim, text in zip(VICTIMS, shown, strict=True):
        assert victim["first_name"] in text and victim["last_name"] in text
    return {"referrals": ids, "references": references, "group_id": group_id}


@pytest.mark.parametrize(
    ("role", "username"),
    [
        (Role.referrer, "leak-rita"),
        (Role.facilitator, "leak-fran"),
        (Role.monitor, "leak-monitor"),
        (Role.admin, "leak-admin"),
    ],
)
async def test_no_page_a_non_victim_role_reaches_shows_a_victim(app, seeded, role, username):
    async with browser(app) as http:
        signed_in = await sign_in(http, username)
        assert signed_in.status_code == 303
        crawled = await crawl(
            http,
            searches={
                # Found by the perpetrator's name: the results list, with no victim on it.
                "/caseload/search": {"name": "Example", "reference": ""},
                "/our-referrals": {"reference": seeded["references"][0]},
            },
        )
    assert leaks(crawled, MARKERS) == []
    assert len(crawled.pages) >= LEAST_PAGES[role], sorted(crawled.pages)
    assert crawled.refused == {}, crawled.refused  # no page offers a link its reader may not open
    if role == Role.referrer:
        assert seeded["references"][0] in crawled.pages["POST /our-referrals"].text
    if role in (Role.facilitator, Role.admin):
        read = " ".join(crawled.pages)
        for referral_id in seeded["referrals"]:
            assert f"/caseload/{referral_id}" in read  # every referral's page was read
        assert "/register" in read and "/move" in read and "/cancel" in read
        assert "POST /caseload/search" in crawled.pages


async def test_the_route_walk_covers_every_page(app):
    """The access test walks ``page_routes_and_roles``: every page handler is in it."""
    walked = {(method, path) for method, path, _, _ in access.page_routes_and_roles(app)}
    for handler in [*delivery_pages.PAGES, *referral_pages.PAGES]:
        for path in handler.paths:
            for method in handler.http_methods:
                assert (method, path) in walked, (method, path)
