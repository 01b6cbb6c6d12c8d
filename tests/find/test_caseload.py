"""GET /victims and GET /victims/alerts: a victim worker finds their work.

A worker's caseload is the victims they support: those they recorded, or whose
consent to contact or feedback they recorded (``outcomes.rules.supports``).
"""

from __future__ import annotations

import json
from datetime import date

import pytest

from outcomes.rules import supports
from programme.platform.tables import AuditEvent, Role
from referrals.tables import ParticipantAlert
from tests.builders import VICTIM, distinct_referral

pytestmark = pytest.mark.anyio

OTHER_VICTIM = {
    "first_name": "Vanessa",
    "relationship": "ex_partner",
    "phone": "0114 496 0777",
    "consent_to_contact": False,
    "consent_obtained_on": "2026-10-01",
}


def test_the_rule_any_of_the_three_kinds_of_work_and_nothing_else():
    assert not supports({})
    assert not supports(
        {"recorded_victim": False, "recorded_consent": False, "recorded_feedback": False}
    )
    for work in ("recorded_victim", "recorded_consent", "recorded_feedback"):
        assert supports({work: True}), work


@pytest.fixture
async def cases(client, sign_in):
    """Two referrals: vic took on the first's victim (consent); val named the second's."""
    rita = await sign_in(Role.referrer, "rita")
    vic = await sign_in(Role.victim_worker, "vic")
    val = await sign_in(Role.victim_worker, "val")
    fran = await sign_in(Role.facilitator, "fran")
    first = await client.post(
        "/referrals", json=distinct_referral(1, victims=[VICTIM]), headers=rita
    )
    second = await client.post("/referrals", json=distinct_referral(2), headers=rita)
    assert first.status_code == second.status_code == 201
    first_id, second_id = first.json()["id"], second.json()["id"]
    victims = await client.get(f"/referrals/{first_id}/victims", headers=vic)
    vic_victim = victims.json()[0]["id"]
    consent = await client.post(
        f"/victims/{vic_victim}/consent", json={"given": True, "on": "2026-10-02"}, headers=vic
    )
    assert consent.status_code == 201, consent.text
    added = await client.post(f"/referrals/{second_id}/victims", json=OTHER_VICTIM, headers=val)
    assert added.status_code == 201, added.text
    return {"vic": vic, "val": val, "fran": fran, "rita": rita, "first": first.json(),
            "second": second.json(), "vic_victim": vic_victim,
            "val_victim": added.json()["id"]}  # fmt: skip


async def test_a_worker_sees_their_caseload_with_consent_and_no_alert_yet(client, cases):
    response = await client.get("/victims", headers=cases["vic"])
    assert response.status_code == 200, response.text
    page = response.json()
    assert (page["total"], page["limit"], page["offset"]) == (1, 50, 0)
    (case,) = page["items"]
    assert case["victim"]["id"] == cases["vic_victim"]
    assert case["victim"]["first_name"] == "Verity"
    assert case["victim"]["may_contact"] is True
    assert case["victim"]["consent"]["given"] is True
    assert case["reference"] == cases["first"]["reference"]
    assert (case["status"], case["latest_alert"]) == ("accepted", None)

    theirs = (await client.get("/victims", headers=cases["val"])).json()
    assert [c["victim"]["id"] for c in theirs["items"]] == [cases["val_victim"]]
    assert theirs["items"][0]["victim"]["may_contact"] is False


async def test_the_latest_alert_shows_and_all_alerts_come_as_one_list(client, cases):
    first_id = cases["first"]["id"]
    for step, on in (("contacted", "2026-10-02"), ("engaged", "2026-10-03"),
                     ("disengaged", "2026-10-09")):  # fmt: skip
        moved = await client.post(
            f"/referrals/{first_id}/events", json={"type": step, "on": on}, headers=cases["fran"]
        )
        assert moved.status_code == 201, moved.text
    await ParticipantAlert.insert(
        ParticipantAlert(referral=first_id, kind="at_risk", raised_on=date(2026, 10, 20)),
        ParticipantAlert(referral=cases["second"]["id"], kind="at_risk",
                         raised_on=date(2026, 10, 21)),
    )  # fmt: skip
    case = (await client.get("/victims", headers=cases["vic"])).json()["items"][0]
    assert case["latest_alert"] == {
        "kind": "at_risk",
        "raised_on": "2026-10-20",
        "withdrawn_on": None,
    }
    assert (case["status"], case["status_on"]) == ("disengaged", "2026-10-09")

    alerts = await client.get("/victims/alerts", headers=cases["vic"])
    assert alerts.status_code == 200, alerts.text
    page = alerts.json()
    assert page["total"] == 2  # not the other worker's perpetrator's alert
    assert [(a["kind"], a["raised_on"]) for a in page["items"]] == [
        ("at_risk", "2026-10-20"),
        ("disengaged", "2026-10-09"),
    ]
    assert {a["referral_id"] for a in page["items"]} == {first_id}
    assert page["items"][0]["victim_ids"] == [cases["vic_victim"]]
    assert page["items"][0]["reference"] == cases["first"]["reference"]

    paged = (await client.get("/victims/alerts", params={"limit": 1, "offset": 1},
                              headers=cases["vic"])).json()  # fmt: skip
    assert (paged["total"], [a["raised_on"] for a in paged["items"]]) == (2, ["2026-10-09"])

    val_alerts = (await client.get("/victims/alerts", headers=cases["val"])).json()
    assert [(a["kind"], a["raised_on"]) for a in val_alerts["items"]] == [("at_risk", "2026-10-21")]


async def test_admins_read_every_victim_and_every_read_is_audited(client, sign_in, cases):
    admin = await sign_in(Role.admin, "alice")
    page = (await client.get("/victims", headers=admin)).json()
    assert page["total"] == 2
    assert {c["victim"]["id"] for c in page["items"]} == {cases["vic_victim"], cases["val_victim"]}
    await client.get("/victims", headers=cases["vic"])
    await client.get("/victims/alerts", headers=cases["vic"])
    rows = await AuditEvent.select().where(
        (AuditEvent.action == "read") & AuditEvent.username.is_in(["alice", "vic"])
    )
    caseload_reads = sorted(
        (r["username"], r["record_id"])
        for r in rows
        if r["record_type"] == "victim" and json.loads(r["detail"]).get("view") == "caseload"
    )
    assert caseload_reads == sorted(
        [("alice", cases["vic_victim"]), ("alice", cases["val_victim"]),
         ("vic", cases["vic_victim"])]
    )  # fmt: skip


async def test_an_empty_caseload_is_an_empty_page(client, sign_in, cases):
    new = await sign_in(Role.victim_worker, "newcomer")
    for path in ("/victims", "/victims/alerts"):
        page = (await client.get(path, headers=new)).json()
        assert (page["items"], page["total"]) == ([], 0)


@pytest.mark.parametrize("role", [Role.referrer, Role.facilitator, Role.monitor])
async def test_no_other_role_reads_a_caseload(client, sign_in, cases, role):
    headers = await sign_in(role, f"someone-{role.value}")
    for path in ("/victims", "/victims/alerts"):
        response = await client.get(path, headers=headers)
        assert response.status_code == 403, (path, response.text)
        assert (await client.get(path)).status_code == 401
