"""Fixtures for outcomes: a referral naming a victim, and a victim worker."""

from __future__ import annotations

import pytest

from programme.platform.tables import Role
from tests.builders import VICTIM, good_referral


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
