"""Quality counts referrals, not attempts: a referral refused, fixed and sent again by the same
agency in the same quarter replaces its return, so it does not raise the agency's return rate."""

from __future__ import annotations

import pytest

from programme.platform.tables import Role
from referrals.tables import ReturnedReferral
from tests.builders import distinct_referral, good_referral
from tests.counting import app  # noqa: F401 - every count as it is

pytestmark = pytest.mark.anyio


@pytest.fixture
async def monitor(sign_in):
    return await sign_in(Role.monitor, "mo")


async def quality(client, monitor, quarter="Q3 2026-27"):
    response = await client.get(
        "/reports/referral-quality", params={"from": quarter, "to": quarter}, headers=monitor
    )
    assert response.status_code == 200, response.text
    return {row["agency"]: row for row in response.json()["rows"]}


async def quarterly(client, monitor, quarter="Q3 2026-27"):
    response = await client.get(
        "/reports/quarterly", params={"from": quarter, "to": quarter}, headers=monitor
    )
    return response.json()["rows"][0]


async def send(client, headers, **overrides):
    return await client.post("/referrals", json=good_referral(**overrides), headers=headers)


async def test_a_fix_and_resend_does_not_raise_the_agencys_return_rate(client, sign_in, monitor):
    referrer = await sign_in(Role.referrer, "rita")
    refused = await send(client, referrer, consent_given=False, received_on="2026-10-01")
    assert refused.status_code == 422
    fixed = await send(client, referrer, received_on="2026-10-02")
    assert fixed.status_code == 201, fixed.text
    row = (await quality(client, monitor))["South Yorkshire Police"]
    assert (row["received"], row["accepted"], row["returned"]) == (1, 1, 0)
    assert row["reasons"]["consent_missing"] == 0
    counted = await quarterly(client, monitor)
    assert (counted["referrals"], counted["accepted"], counted["returned"]) == (1, 1, 0)


async def test_a_person_refused_twice_counts_once_with_the_latest_reasons(client, sign_in, monitor):
    referrer = await sign_in(Role.referrer, "rita")
    await send(client, referrer, consent_given=False, received_on="2026-10-01")
    # Name written differently (case, accents, spaces): the same person.
    await send(
        client, referrer, first_name=" JORDAN", last_name="Testpérson", phone=None,
        received_on="2026-10-03",
    )  # fmt: skip
    row = (await quality(client, monitor))["South Yorkshire Police"]
    assert (row["received"], row["returned"]) == (1, 1)
    assert row["reasons"]["no_contact_number"] == 1
    assert row["reasons"]["consent_missing"] == 0
    assert await ReturnedReferral.count() == 2  # both kept, one counted


async def test_other_people_and_other_agencies_are_counted_apart(client, sign_in, monitor):
    police = await sign_in(Role.referrer, "rita")
    health = await sign_in(Role.referrer, "hal", agency="Rotherham Health")
    await send(client, police, consent_given=False, received_on="2026-10-01")
    await client.post(
        "/referrals",
        json=distinct_referral(7, consent_given=False, received_on="2026-10-01"),
        headers=police,
    )
    await send(client, health, consent_given=False, received_on="2026-10-02")
    rows = await quality(client, monitor)
    assert rows["South Yorkshire Police"]["returned"] == 2
    assert rows["Rotherham Health"]["returned"] == 1
    # The health visitor's own resubmission replaces only the health visitor's return.
    assert (await send(client, health, received_on="2026-10-03")).status_code == 201
    rows = await quality(client, monitor)
    assert rows["South Yorkshire Police"]["returned"] == 2
    assert (rows["Rotherham Health"]["returned"], rows["Rotherham Health"]["accepted"]) == (0, 1)


async def test_a_return_in_an_earlier_quarter_stays_counted_in_it(client, sign_in, monitor):
    referrer = await sign_in(Role.referrer, "rita")
    await send(client, referrer, consent_given=False, received_on="2026-09-29")
    await send(client, referrer, received_on="2026-10-02")
    assert (await quality(client, monitor, "Q2 2026-27"))["South Yorkshire Police"]["returned"] == 1
    assert (await quality(client, monitor))["South Yorkshire Police"]["returned"] == 0


async def test_the_fingerprint_keeps_nothing_personal(client, sign_in):
    referrer = await sign_in(Role.referrer, "rita")
    await send(client, referrer, consent_given=False)
    (row,) = await ReturnedReferral.select(ReturnedReferral.person_fingerprint)
    fingerprint = row["person_fingerprint"]
    assert len(fingerprint) == 64 and int(fingerprint, 16) >= 0
    for trace in ("jordan", "testperson", "1990", "05-17"):
        assert trace not in fingerprint.lower()


async def test_a_return_without_a_name_matches_nothing(client, sign_in, monitor):
    referrer = await sign_in(Role.referrer, "rita")
    await send(client, referrer, first_name=None, received_on="2026-10-01")
    await send(client, referrer, received_on="2026-10-02")
    row = (await quality(client, monitor))["South Yorkshire Police"]
    assert (row["received"], row["returned"]) == (2, 1)
