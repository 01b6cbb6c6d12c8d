"""Admins may read victims'/survivors' records (audited), and never make them."""

from __future__ import annotations

import pytest

from outcomes.tables import Victim
from programme.platform.tables import Role
from tests.builders import VICTIM

pytestmark = pytest.mark.anyio


async def test_an_admin_cannot_add_a_victim_to_a_referral(
    client, sign_in, referral_with_victim, victim_worker
):
    admin = await sign_in(Role.admin, "alice")
    before = await Victim.count()
    another = {**VICTIM, "first_name": "Another", "phone": "0114 496 0999"}
    response = await client.post(
        f"/referrals/{referral_with_victim}/victims", json=another, headers=admin
    )
    assert response.status_code == 403, response.text
    assert response.json()["errors"][0]["code"] == "not_permitted"
    assert await Victim.count() == before

    read = await client.get(f"/referrals/{referral_with_victim}/victims", headers=admin)
    assert read.status_code == 200, read.text

    added = await client.post(
        f"/referrals/{referral_with_victim}/victims", json=another, headers=victim_worker
    )
    assert added.status_code == 201, added.text
    assert await Victim.count() == before + 1
