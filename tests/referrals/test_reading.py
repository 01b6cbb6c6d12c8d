"""Who sees which referrals, in which view, and that every read is audited."""

from __future__ import annotations

import asyncio
import hashlib
import hmac

import pytest

from programme.platform.tables import AuditEvent, Role
from referrals.tables import Person, Referral
from tests.builders import good_referral, log_in

pytestmark = pytest.mark.anyio

PERSONAL = ("Jordan", "Testperson", "1990-05-17", "4960123", "weekday mornings")


@pytest.fixture
async def two_agencies(client, sign_in):
    """One referral from the police and one from early help; returns both tokens and ids."""
    police = await sign_in(Role.referrer, "rita", agency="South Yorkshire Police")
    early_help = await sign_in(Role.referrer, "erin", agency="Rotherham Early Help")
    first = await client.post("/referrals", json=good_referral(), headers=police)
    second = await client.post(
        "/referrals",
        json=good_referral(
            first_name="Casey", last_name="Example", date_of_birth="1985-02-03",
            phone="0114 496 0456", received_on="2026-08-15", risk_level="high",
            consent_obtained_on="2026-08-14",
        ),
        headers=early_help,
    )  # fmt: skip
    assert first.status_code == second.status_code == 201
    return police, early_help, first.json()["id"], second.json()["id"]


@pytest.mark.smoke
async def test_a_referrer_sees_only_their_agency_and_only_status_and_timeline(client, two_agencies):
    police, _, police_id, early_help_id = two_agencies
    listing = (await client.get("/referrals", headers=police)).json()
    assert [item["id"] for item in listing["items"]] == [police_id]
    assert listing["total"] == 1
    item = listing["items"][0]
    assert item["view"] == "status"
    assert set(item) == {
        "view", "id", "reference", "agency", "received_on", "status", "status_on", "timeline"
    }  # fmt: skip
    detail = await client.get(f"/referrals/{police_id}", headers=police)
    assert detail.status_code == 200
    for trace in PERSONAL:
        assert trace not in detail.text
    other = await client.get(f"/referrals/{early_help_id}", headers=police)
    assert other.status_code == 404


async def test_a_referrer_cannot_widen_their_view_with_the_agency_filter(client, two_agencies):
    police, _, _, early_help_id = two_agencies
    row = await Referral.select(Referral.agency).where(Referral.id == early_help_id).first()
    response = await client.get(f"/referrals?agency={row['agency']}", headers=police)
    assert response.status_code == 403
    assert "Casey" not in response.text


async def test_facilitators_see_the_named_record(client, two_agencies, sign_in):
    facilitator = await sign_in(Role.facilitator, "fran")
    _, _, police_id, _ = two_agencies
    detail = (await client.get(f"/referrals/{police_id}", headers=facilitator)).json()
    assert detail["view"] == "named"
    assert (detail["first_name"], detail["last_name"]) == ("Jordan", "Testperson")
    assert detail["date_of_birth"] == "1990-05-17"
    assert detail["phone"] == "+441144960123"
    listing = (await client.get("/referrals", headers=facilitator)).json()
    assert listing["total"] == 2


async def test_monitors_see_no_name_birth_date_or_phone(client, two_agencies, sign_in):
    monitor = await sign_in(Role.monitor, "mo")
    _, _, police_id, _ = two_agencies
    listing = await client.get("/referrals", headers=monitor)
    detail = await client.get(f"/referrals/{police_id}", headers=monitor)
    for response in (listing, detail):
        assert response.status_code == 200
        for trace in (*PERSONAL, "Casey", "Example", "1985-02-03", "4960456"):
            assert trace not in response.text
    body = detail.json()
    assert body["view"] == "pseudonymous"
    assert body["age_band"] == "35-44"
    assert body["pseudonym"].startswith("P-")
    assert body["agency"] == "South Yorkshire Police"


async def test_a_pseudonym_is_stable_across_a_persons_referrals(client, sign_in):
    referrer = await sign_in(Role.referrer, "rita")
    facilitator = await sign_in(Role.facilitator, "fran")
    monitor = await sign_in(Role.monitor, "mo")
    first = (await client.post("/referrals", json=good_referral(), headers=referrer)).json()
    await client.post(
        f"/referrals/{first['id']}/events", json={"type": "closed", "on": "2026-10-02"},
        headers=facilitator,
    )  # fmt: skip
    second = (
        await client.post(
            "/referrals", json=good_referral(received_on="2026-10-03"), headers=referrer
        )
    ).json()
    a = (await client.get(f"/referrals/{first['id']}", headers=monitor)).json()["pseudonym"]
    b = (await client.get(f"/referrals/{second['id']}", headers=monitor)).json()["pseudonym"]
    assert a == b


async def test_changing_the_signing_key_leaves_pseudonyms_as_they_were(
    app, client, client_after_new_signing_key, sign_in
):
    referrer = await sign_in(Role.referrer, "rita")
    monitor = await sign_in(Role.monitor, "mo")
    referral = (await client.post("/referrals", json=good_referral(), headers=referrer)).json()
    path = f"/referrals/{referral['id']}"
    before = (await client.get(path, headers=monitor)).json()["pseudonym"]

    after_change = client_after_new_signing_key
    assert (await after_change.get(path, headers=monitor)).status_code == 401
    again = await after_change.get(path, headers=await log_in(after_change, "mo"))
    assert again.status_code == 200, again.text
    assert again.json()["pseudonym"] == before

    # Nor is it the digest a holder of the signing key could compute for themselves.
    row = await Referral.select(Referral.person).where(Referral.id == referral["id"]).first()
    signing_key = app.state.settings.token_secret().encode()
    by_signing_key = hmac.new(signing_key, b"person:" + row["person"].bytes, hashlib.sha256)
    assert before != "P-" + by_signing_key.hexdigest()[:12].upper()


async def test_filters_and_pagination(client, two_agencies, sign_in):
    facilitator = await sign_in(Role.facilitator, "fran")
    _, _, police_id, early_help_id = two_agencies
    await client.post(
        f"/referrals/{police_id}/events", json={"type": "contacted", "on": "2026-10-02"},
        headers=facilitator,
    )  # fmt: skip

    async def ids(query: str) -> list[str]:
        response = await client.get(f"/referrals?{query}", headers=facilitator)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    assert await ids("status=contacted") == [police_id]
    assert await ids("status=accepted") == [early_help_id]
    assert await ids("received_from=2026-09-01") == [police_id]
    assert await ids("received_to=2026-08-31") == [early_help_id]
    assert await ids("received_from=2026-08-01&received_to=2026-12-31") == [
        police_id,
        early_help_id,
    ]
    row = await Referral.select(Referral.agency).where(Referral.id == early_help_id).first()
    assert await ids(f"agency={row['agency']}") == [early_help_id]
    first_page = (await client.get("/referrals?limit=1", headers=facilitator)).json()
    second_page = (await client.get("/referrals?limit=1&offset=1", headers=facilitator)).json()
    assert first_page["total"] == second_page["total"] == 2
    assert [first_page["items"][0]["id"], second_page["items"][0]["id"]] == [
        police_id,
        early_help_id,
    ]


async def test_bad_filters_list_every_problem(client, sign_in):
    facilitator = await sign_in(Role.facilitator, "fran")
    response = await client.get(
        "/referrals?status=lost&received_from=yesterday&limit=0", headers=facilitator
    )
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} >= {"status"}


async def test_every_read_of_a_referral_is_audited(client, two_agencies, sign_in):
    facilitator = await sign_in(Role.facilitator, "fran")
    _, _, police_id, early_help_id = two_agencies
    await client.get("/referrals", headers=facilitator)
    await client.get(f"/referrals/{police_id}", headers=facilitator)
    reads = await AuditEvent.select(AuditEvent.record_id).where(
        (AuditEvent.action == "read") & (AuditEvent.record_type == "referral")
        & (AuditEvent.username == "fran")
    )  # fmt: skip
    assert sorted(r["record_id"] for r in reads) == sorted([police_id, early_help_id, police_id])


async def test_two_simultaneous_referrals_of_one_person_make_one_referral(client, sign_in):
    police = await sign_in(Role.referrer, "rita", agency="South Yorkshire Police")
    early_help = await sign_in(Role.referrer, "erin", agency="Rotherham Early Help")
    results = await asyncio.gather(
        *(
            client.post("/referrals", json=good_referral(), headers=(police, early_help)[i % 2])
            for i in range(4)
        )
    )
    assert sorted(r.status_code for r in results) == [201, 409, 409, 409]
    assert await Referral.count() == 1
    assert await Person.count() == 1
