"""No route but the victim workers' ever shows what a victim/survivor is or said.

Walks every route in the OpenAPI schema with facilitator, referrer and monitor
tokens, using the real ids of a referral, its victim, a group and a session
wherever a path takes one, and searches every answer for the victim's name,
phone number and the words of their feedback.
"""

from __future__ import annotations

import re
import uuid

import pytest

from programme.platform.tables import Role
from tests.builders import VICTIM_TRACES

pytestmark = pytest.mark.anyio

DISCLOSURE = "he threatened my sister again"


@pytest.fixture
async def everything(client, referral_with_victim, victim_id, victim_worker, sign_in):
    fran = await sign_in(Role.facilitator, "fran")
    for step in ("contacted", "engaged"):
        await client.post(
            f"/referrals/{referral_with_victim}/events",
            json={"type": step, "on": "2026-10-02"},
            headers=fran,
        )
    group = await client.post(
        "/groups",
        json={"name": "G", "starts_on": "2026-06-01", "facilitators": ["fran"], "capacity": 10},
        headers=fran,
    )
    group_id = group.json()["id"]
    await client.post(
        f"/groups/{group_id}/members", json={"referral_id": referral_with_victim}, headers=fran
    )
    session = await client.post(
        f"/groups/{group_id}/sessions", json={"number": 1, "held_on": "2026-10-06"}, headers=fran
    )
    feedback = await client.post(
        f"/victims/{victim_id}/feedback",
        json={
            "stage": "intake",
            "collected_on": "2026-10-05",
            "behaviour": "worse",
            "feels_safer": "no",
            "note": DISCLOSURE,
        },
        headers=victim_worker,
    )
    assert feedback.status_code == 201
    return {
        "referral_id": referral_with_victim,
        "victim_id": victim_id,
        "group_id": group_id,
        "session_id": session.json()["id"],
        "fran": fran,
    }


def fill(path: str, ids: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1).split(":")[0]
        return ids.get(name, str(uuid.uuid4()))

    return re.sub(r"\{([^}]+)\}", value, path)


async def test_no_route_leaks_victim_data_to_other_roles(client, everything, sign_in):
    schema = (await client.get("/schema/openapi.json")).json()
    tokens = {
        "facilitator": await sign_in(Role.facilitator, "leak-facilitator"),
        "referrer": await sign_in(Role.referrer, "leak-referrer"),
        "monitor": await sign_in(Role.monitor, "leak-monitor"),
        "facilitator of the group": (
            await client.post("/auth/login", json={"username": "fran", "password": "x"})
        ).status_code
        and {},
    }
    tokens.pop("facilitator of the group")
    walked = 0
    for path, operations in schema["paths"].items():
        for method in operations:
            if method.upper() not in {"GET", "POST", "PUT", "PATCH", "DELETE"}:
                continue
            concrete = fill(path, everything)
            for role, headers in tokens.items():
                response = await client.request(method.upper(), concrete, json={}, headers=headers)
                walked += 1
                assert response.status_code < 500, (role, method, path, response.text)
                for trace in (*VICTIM_TRACES, "+441144960888", DISCLOSURE):
                    assert trace not in response.text, (role, method, path, trace)
    assert walked > 100
