"""A disengagement voided as recorded in error withdraws the alert it raised for partner
support: the alert stays (the worker was told, and may have acted on it), marked withdrawn
with the day, in the API and on the victim worker's pages; it is no longer the warning at
the top of the victim's page; a disengagement recorded again raises an alert of its own."""

from __future__ import annotations

import pytest

from programme.platform.clock import today
from programme.platform.tables import Role
from referrals.tables import ParticipantAlert
from tests.builders import VICTIM, good_referral, log_in
from tests.programme.web.helpers import browser, make_account
from tests.programme.web.helpers import sign_in as sign_in_page

pytestmark = pytest.mark.anyio


@pytest.fixture
async def case(client, sign_in):
    """A referral that has disengaged, a victim the worker 'vic' supports, a facilitator."""
    referrer = await sign_in(Role.referrer, "rita")
    response = await client.post("/referrals", json=good_referral(), headers=referrer)
    assert response.status_code == 201, response.text
    referral_id = response.json()["id"]
    await make_account("vic", Role.victim_worker)
    worker = await log_in(client, "vic")
    added = await client.post(f"/referrals/{referral_id}/victims", json=VICTIM, headers=worker)
    assert added.status_code == 201, added.text
    facilitator = await sign_in(Role.facilitator, "fran")
    for type_, on in (("contacted", "2026-10-02"), ("disengaged", "2026-10-20")):
        moved = await client.post(
            f"/referrals/{referral_id}/events", json={"type": type_, "on": on},
            headers=facilitator,
        )  # fmt: skip
        assert moved.status_code == 201, moved.text
    return referral_id, added.json()["id"], worker, facilitator


async def _void_latest(client, referral_id, facilitator):
    record = (await client.get(f"/referrals/{referral_id}", headers=facilitator)).json()
    step = record["timeline"][-1]
    assert step["type"] == "disengaged"
    response = await client.post(
        f"/referrals/{referral_id}/events/{step['id']}/void",
        json={"reason": "Recorded on the wrong person"},
        headers=facilitator,
    )
    assert response.status_code == 200, response.text


async def test_voiding_the_disengagement_withdraws_its_alert(client, case):
    referral_id, victim_id, worker, facilitator = case
    progress = (await client.get(f"/victims/{victim_id}/progress", headers=worker)).json()
    assert [(a["kind"], a["withdrawn_on"]) for a in progress["alerts"]] == [("disengaged", None)]

    await _void_latest(client, referral_id, facilitator)

    progress = (await client.get(f"/victims/{victim_id}/progress", headers=worker)).json()
    assert progress["status"] == "contacted"
    (alert,) = progress["alerts"]
    assert alert["kind"] == "disengaged" and alert["raised_on"] == "2026-10-20"
    assert alert["withdrawn_on"] == today().isoformat()
    assert await ParticipantAlert.count() == 1  # kept, never deleted
    listed = (await client.get("/victims/alerts", headers=worker)).json()["items"]
    assert [a["withdrawn_on"] for a in listed] == [today().isoformat()]
    cases = (await client.get("/victims", headers=worker)).json()["items"]
    assert cases[0]["latest_alert"]["withdrawn_on"] == today().isoformat()


async def test_a_disengagement_recorded_again_raises_a_standing_alert(client, case):
    referral_id, victim_id, worker, facilitator = case
    await _void_latest(client, referral_id, facilitator)
    again = await client.post(
        f"/referrals/{referral_id}/events", json={"type": "disengaged", "on": "2026-10-20"},
        headers=facilitator,
    )  # fmt: skip
    assert again.status_code == 201, again.text
    progress = (await client.get(f"/victims/{victim_id}/progress", headers=worker)).json()
    assert sorted((a["raised_on"], a["withdrawn_on"] is None) for a in progress["alerts"]) == [
        ("2026-10-20", False),
        ("2026-10-20", True),
    ]
    # Voiding the second withdraws the second: one alert per step.
    await _void_latest(client, referral_id, facilitator)
    progress = (await client.get(f"/victims/{victim_id}/progress", headers=worker)).json()
    assert all(a["withdrawn_on"] is not None for a in progress["alerts"])


async def test_voiding_another_step_leaves_the_alerts_alone(client, case):
    referral_id, victim_id, worker, facilitator = case
    await _void_latest(client, referral_id, facilitator)
    again = await client.post(
        f"/referrals/{referral_id}/events", json={"type": "engaged", "on": "2026-10-21"},
        headers=facilitator,
    )  # fmt: skip
    assert again.status_code == 201, again.text
    disengaged = await client.post(
        f"/referrals/{referral_id}/events", json={"type": "disengaged", "on": "2026-10-25"},
        headers=facilitator,
    )  # fmt: skip
    assert disengaged.status_code == 201, disengaged.text
    progress = (await client.get(f"/victims/{victim_id}/progress", headers=worker)).json()
    standing = [a for a in progress["alerts"] if a["withdrawn_on"] is None]
    assert [a["raised_on"] for a in standing] == ["2026-10-25"]


async def test_the_victims_page_no_longer_warns_and_says_it_was_withdrawn(app, client, case):
    referral_id, victim_id, _, facilitator = case
    path = f"/partner-support/{victim_id}"
    async with browser(app) as http:
        await sign_in_page(http, "vic")
        before = (await http.get(path)).text
        assert "Disengaged since 20 Oct 2026" in before
        await _void_latest(client, referral_id, facilitator)
        after = (await http.get(path)).text
        assert "Disengaged since" not in after
        assert f"withdrawn on {today():%-d %b %Y}: recorded in error" in after
        listing = (await http.get("/partner-support")).text
        assert "recorded in error" in listing
