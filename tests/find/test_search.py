"""POST /referrals/search: by reference, name or date of birth, each role in its own view.

Names go in the body, never the URL; names are folded as people are matched
(case, accents, spacing and punctuation do not matter; any part of a name finds
them); every search is audited without the values searched for.
"""

from __future__ import annotations

import json

import pytest

from programme.platform.tables import AuditEvent, Role
from tests.builders import VICTIM, good_referral

pytestmark = pytest.mark.anyio


async def submit(client, headers, **overrides):
    response = await client.post("/referrals", json=good_referral(**overrides), headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def search(client, headers, **body):
    return await client.post("/referrals/search", json=body, headers=headers)


@pytest.fixture
async def people(client, sign_in):
    """Seán O'Neil-Smith (Sheffield police), Jordan Testperson and Jordana Other (probation)."""
    police = await sign_in(Role.referrer, "rita")
    probation = await sign_in(Role.referrer, "pat", agency="Probation")
    sean = await submit(
        client, police, first_name="Seán", last_name="O'Neil-Smith", date_of_birth="1985-02-03",
        phone="0114 496 0201",
    )  # fmt: skip
    jordan = await submit(client, police)
    jordana = await submit(
        client, probation, first_name="Jordana", last_name="Other", date_of_birth="1990-05-17",
        phone="0114 496 0202",
    )  # fmt: skip
    return {"police": police, "probation": probation, "sean": sean, "jordan": jordan,
            "jordana": jordana}  # fmt: skip


def ids(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


async def test_staff_find_by_name_whatever_the_case_accents_and_spacing(client, sign_in, people):
    fran = await sign_in(Role.facilitator, "fran")
    sean = people["sean"]["id"]
    for name in ("sean o'neil-smith", "SEAN ONEIL SMITH", "Seán O Neil Smith", "oneilsmith",
                 "  sean   ", "smith sean", "seanoneilsmith", "oneilsmithsean"):  # fmt: skip
        assert ids(await search(client, fran, name=name)) == [sean], name
    assert ids(await search(client, fran, name="sean jones")) == []


async def test_part_of_a_name_finds_everyone_it_is_part_of(client, sign_in, people):
    admin = await sign_in(Role.admin, "alice")
    found = ids(await search(client, admin, name="jord"))
    assert sorted(found) == sorted([people["jordan"]["id"], people["jordana"]["id"]])
    assert ids(await search(client, admin, name="jord test")) == [people["jordan"]["id"]]


async def test_every_term_given_must_match(client, sign_in, people):
    fran = await sign_in(Role.facilitator, "fran")
    both = ids(await search(client, fran, date_of_birth="1990-05-17"))
    assert sorted(both) == sorted([people["jordan"]["id"], people["jordana"]["id"]])
    assert ids(await search(client, fran, name="jordana", date_of_birth="1990-05-17")) == [
        people["jordana"]["id"]
    ]
    assert ids(await search(client, fran, name="jordana", date_of_birth="1990-05-18")) == []
    reference = people["sean"]["reference"]
    assert ids(await search(client, fran, reference=reference, name="jordan")) == []


async def test_a_reference_is_matched_whole_in_any_case(client, sign_in, people):
    fran = await sign_in(Role.facilitator, "fran")
    reference = people["sean"]["reference"]
    assert ids(await search(client, fran, reference=f" {reference.lower()} ")) == [
        people["sean"]["id"]
    ]
    assert ids(await search(client, fran, reference=reference[:-1])) == []


async def test_staff_see_the_named_view_paged_with_a_total(client, sign_in, people):
    admin = await sign_in(Role.admin, "alice")
    response = await client.post(
        "/referrals/search", params={"limit": 1, "offset": 1}, json={"name": "jord"},
        headers=admin,
    )  # fmt: skip
    assert response.status_code == 200, response.text
    page = response.json()
    assert (page["total"], page["limit"], page["offset"], len(page["items"])) == (2, 1, 1, 1)
    assert page["items"][0]["view"] == "named"
    assert page["items"][0]["first_name"] in ("Jordan", "Jordana")


async def test_every_search_is_audited_without_what_was_searched_for(client, sign_in, people):
    fran = await sign_in(Role.facilitator, "fran")
    before = await AuditEvent.count()
    await search(client, fran, name="Seán", date_of_birth="1985-02-03")
    await search(client, fran, name="nobody here")
    rows = await AuditEvent.select().where(AuditEvent.id > before).order_by(AuditEvent.id)
    rows = [r for r in rows if r["username"] == "fran"]
    searches = [r for r in rows if r["record_id"] is None]
    assert [json.loads(r["detail"])["search"] for r in searches] == [
        ["name", "date_of_birth"],
        ["name"],
    ]  # a search that found nobody is on the trail too
    reads = [r for r in rows if r["record_id"] is not None]
    assert [(r["action"], r["record_type"], r["record_id"]) for r in reads] == [
        ("read", "referral", people["sean"]["id"])
    ]
    text = json.dumps([dict(r, occurred_at=None, account_id=None) for r in rows])
    for value in ("Seán", "Sean", "sean", "1985-02-03", "nobody"):
        assert value not in text


async def test_a_referrer_finds_by_reference_in_their_own_agency_only(client, people):
    police, probation = people["police"], people["probation"]
    own = await search(client, police, reference=people["sean"]["reference"])
    assert ids(own) == [people["sean"]["id"]]
    item = own.json()["items"][0]
    assert item["view"] == "status" and "first_name" not in item and "date_of_birth" not in item
    # Another agency's reference finds nothing, as if it did not exist.
    assert ids(await search(client, probation, reference=people["sean"]["reference"])) == []


@pytest.mark.parametrize(
    "body", [{"name": "Sean"}, {"date_of_birth": "1985-02-03"}, {"reference": "X", "name": "Sean"}]
)
async def test_a_referrer_may_not_search_by_name_or_date_of_birth(client, people, body):
    response = await search(client, people["police"], **body)
    assert response.status_code == 403, response.text
    assert response.json()["errors"][0]["code"] == "not_permitted"


async def test_monitors_may_not_search(client, sign_in, people):
    monitor = await sign_in(Role.monitor, "mo")
    response = await search(client, monitor, reference=people["sean"]["reference"])
    assert response.status_code == 403
    assert (await client.post("/referrals/search", json={"name": "x"})).status_code == 401


async def test_a_victim_worker_finds_only_referrals_of_the_victims_they_support(
    client, sign_in, people
):
    referral = await submit(
        client, people["police"], first_name="Jordan", last_name="Victimcase",
        date_of_birth="1970-01-01", phone="0114 496 0203", victims=[VICTIM],
    )  # fmt: skip
    vic = await sign_in(Role.victim_worker, "vic")
    other = await sign_in(Role.victim_worker, "val")
    # Named by the referrer, contacted by nobody yet: in no caseload.
    assert ids(await search(client, vic, name="jordan")) == []
    victims = await client.get(f"/referrals/{referral['id']}/victims", headers=vic)
    victim_id = victims.json()[0]["id"]
    consent = await client.post(
        f"/victims/{victim_id}/consent", json={"given": True, "on": "2026-10-02"}, headers=vic
    )
    assert consent.status_code == 201, consent.text
    found = await search(client, vic, name="jordan")
    assert ids(found) == [referral["id"]]  # not Jordan Testperson nor Jordana Other
    item = found.json()["items"][0]
    assert item["view"] == "status" and "first_name" not in item
    assert ids(await search(client, vic, reference=people["jordan"]["reference"])) == []
    assert ids(await search(client, other, name="jordan")) == []


async def test_a_withdrawn_referral_is_found_by_reference_only(client, sign_in, people):
    fran = await sign_in(Role.facilitator, "fran")
    sean = people["sean"]
    moved = await client.post(
        f"/referrals/{sean['id']}/events", json={"type": "withdrawn", "on": "2026-10-03"},
        headers=fran,
    )  # fmt: skip
    assert moved.status_code == 201, moved.text
    assert ids(await search(client, fran, name="sean")) == []
    assert ids(await search(client, fran, date_of_birth="1985-02-03")) == []
    found = await search(client, fran, reference=sean["reference"])
    assert ids(found) == [sean["id"]]
    assert found.json()["items"][0]["first_name"] is None  # still withheld


@pytest.mark.parametrize(
    ("body", "problems"),
    [
        ({}, [("required", "")]),
        ({"reference": "  "}, [("required", "reference")]),
        ({"name": "a"}, [("invalid", "name")]),
        ({"name": "'- ."}, [("invalid", "name")]),
        ({"surname": "Smith"}, [("unknown_field", "surname")]),
        ({"date_of_birth": "17/05/1990"}, [("invalid", "date_of_birth")]),
        ({"name": 7}, [("invalid", "name")]),
    ],
)
async def test_a_search_asking_for_nothing_readable_is_refused_naming_each_problem(
    client, sign_in, body, problems
):
    fran = await sign_in(Role.facilitator, "fran")
    response = await search(client, fran, **body)
    assert response.status_code == 422, response.text
    assert [(e["code"], e["field"]) for e in response.json()["errors"]] == problems


async def test_names_are_never_asked_for_in_the_url(client, sign_in):
    fran = await sign_in(Role.facilitator, "fran")
    response = await client.get("/referrals", params={"name": "Sean"}, headers=fran)
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "unknown_parameter"
    assert (await client.get("/referrals/search", headers=fran)).status_code == 405


async def test_a_page_past_the_last_still_counts_every_match(client, sign_in, people):
    fran = await sign_in(Role.facilitator, "fran")
    response = await client.post(
        "/referrals/search", params={"offset": 5}, json={"name": "jord"}, headers=fran
    )
    assert response.status_code == 200, response.text
    assert (response.json()["items"], response.json()["total"]) == ([], 2)
