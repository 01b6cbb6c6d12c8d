"""Fixtures for outcomes: a referral naming a victim, and a victim worker."""

from __future__ import annotations

import pytest

from programme.platform.tables import Role
from tests.conftest import good_referral

VICTIM = {
    "first_name": "Verity",
    "last_name": "Survivorson",
    "phone": "0114 496 0888",
    "relationship": "partner",
    "consent_to_contact": True,
    "consent_obtained_on": "2026-09-29",
}
VICTIM_TRACES = ("Verity", "Survivorson", "4960888", "496 0888")


@pytest.fixture
async def victim_worker(sign_in):
    return await sign_in(Role.victim_worker, "vic")


@pytest.fixture
async def referral_with_victim(client, sign_in):
    """A referral naming one consenting victim; returns the referral's id."""
    referrer = await sign_in(Role.referrer, "rita")
    response = await client.post(
        "/referrals", json=good_referral(victims=[VICTIM]), headers=referrer
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


@pytest.fixture
async def victim_id(client, referral_with_victim, victim_worker):
    response = await client.get(f"/referrals/{referral_with_victim}/victims", headers=victim_worker)
    assert response.status_code == 200, response.text
    return response.json()[0]["id"]
