"""A person already being worked with: the second referrer learns that, and whom to
contact, but never another agency's reference for them."""

from __future__ import annotations

import pytest

from programme.platform.tables import Role
from referrals.tables import Referral
from tests.builders import good_referral

pytestmark = pytest.mark.anyio

FIRST_AGENCY = "Sheffield Drug and Alcohol Service"


@pytest.fixture
async def first_reference(client, sign_in) -> str:
    referrer = await sign_in(Role.referrer, "dee", agency=FIRST_AGENCY)
    response = await client.post("/referrals", json=good_referral(), headers=referrer)
    assert response.status_code == 201, response.text
    return response.json()["reference"]


async def test_a_referrer_of_another_agency_is_told_whom_to_contact_not_the_reference(
    client, sign_in, first_reference
):
    police = await sign_in(Role.referrer, "rita", agency="South Yorkshire Police")
    again = good_referral(first_name=" JORDAN", received_on="2026-10-05")
    response = await client.post("/referrals", json=again, headers=police)
    assert response.status_code == 409, response.text
    body = response.json()
    assert first_reference not in response.text
    assert FIRST_AGENCY not in response.text
    assert "existing_reference" not in body
    assert body["errors"] == [{"code": "already_referred", "field": "", "message": body["detail"]}]
    assert "already has an open referral" in body["detail"]
    assert "facilitators" in body["detail"]
    assert await Referral.count() == 1


async def test_the_same_agencys_referrer_is_given_the_reference(client, sign_in, first_reference):
    colleague = await sign_in(Role.referrer, "dan", agency=FIRST_AGENCY)
    response = await client.post("/referrals", json=good_referral(), headers=colleague)
    assert response.status_code == 409, response.text
    assert response.json()["existing_reference"] == first_reference
    assert first_reference in response.json()["errors"][0]["message"]


async def test_a_facilitator_recording_a_self_referral_is_given_the_reference(
    client, sign_in, first_reference
):
    facilitator = await sign_in(Role.facilitator, "fran")
    response = await client.post("/referrals", json=good_referral(), headers=facilitator)
    assert response.status_code == 409, response.text
    assert response.json()["existing_reference"] == first_reference
