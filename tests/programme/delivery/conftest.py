"""Fixtures for programme delivery: a facilitator, their group, engaged referrals."""

from __future__ import annotations

import pytest

from programme.platform.tables import Role


@pytest.fixture
async def fran(sign_in):
    return await sign_in(Role.facilitator, "fran")


@pytest.fixture
async def group(client, fran):
    """A group facilitated by fran, starting 2026-06-01, with room for 12."""
    response = await client.post(
        "/groups",
        json={"name": "Rotherham Tuesday", "starts_on": "2026-06-01", "facilitators": ["fran"],
              "capacity": 12},
        headers=fran,
    )  # fmt: skip
    assert response.status_code == 201, response.text
    return response.json()["id"]


@pytest.fixture
def add_members(client, fran):
    async def _add(group_id, referral_ids, headers=None):
        for referral_id in referral_ids:
            response = await client.post(
                f"/groups/{group_id}/members",
                json={"referral_id": referral_id, "joined_on": "2026-10-02"},
                headers=headers or fran,
            )
            assert response.status_code == 201, response.text

    return _add


@pytest.fixture
def add_session(client, fran):
    async def _add(group_id, number, held_on, kind="group", headers=None):
        response = await client.post(
            f"/groups/{group_id}/sessions",
            json={"number": number, "held_on": held_on, "kind": kind},
            headers=headers or fran,
        )
        assert response.status_code == 201, response.text
        return response.json()["id"]

    return _add


@pytest.fixture
def mark(client, fran):
    async def _mark(session_id, marks, headers=None):
        body = [{"referral_id": r, "status": s} for r, s in marks.items()]
        return await client.put(
            f"/sessions/{session_id}/attendance", json=body, headers=headers or fran
        )

    return _mark
