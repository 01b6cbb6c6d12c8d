"""Saving a register, the set-up: 12 engaged referrals in one group, and its sessions.

All over HTTP against the real service, as a referrer and a facilitator would
do it: the referrals (moved to engaged), the group, its members, then as many
past sessions as the cases need. Also the two registers the cases send.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any
from uuid import UUID

import httpx
from harness import today

REGISTER_SIZE = 12
# Register A: 6 attended, 2 late, 2 absent, 2 excused. Register B moves every
# line one mark on (attended -> late -> absent -> excused -> attended), so
# switching between them corrects all 12 lines and moves people in and out of
# "present" (which starts, un-starts and re-dates referrals).
NEXT_MARK = {"attended": "late", "late": "absent", "absent": "excused", "excused": "attended"}
REGISTER_A = ["attended"] * 6 + ["late"] * 2 + ["absent"] * 2 + ["excused"] * 2
REGISTER_B = [NEXT_MARK[mark] for mark in REGISTER_A]
CORE_SESSIONS = 24  # the programme's default; further sessions are numbered one-to-ones
HISTORY_DAYS = 400
"""How long ago everyone engaged: each session gets a past day of its own after it (the
server is started with back-dating allowed, as a year of history would have come in)."""
HTTP_TIMEOUT = 30.0


def referral_body(n: int, last_name: str, received_on: date) -> dict[str, Any]:
    """The n-th distinct person, as tests/conftest.py ``distinct_referral`` makes them."""
    return {
        "received_on": received_on.isoformat(),
        "first_name": f"Person{n}",
        "last_name": last_name,
        "date_of_birth": f"{1960 + n % 40}-03-{1 + n % 28:02d}",
        "gender": "male",
        "phone": f"0114 496 0{n:03d}",  # Ofcom drama numbers: valid, never anyone's
        "local_authority": "Rotherham",
        "relationship": "partner",
        "risk_level": "medium",
        "prior_incidents": 2,
        "substance_misuse": False,
        "mental_health": True,
        "children_in_household": True,
        "on_probation_programme": False,
        "consent_given": True,
        "consent_obtained_on": received_on.isoformat(),
        "consent_method": "verbal",
        "notes": "Benchmark referral.",
    }


def expect(response: Any, status: int, what: str) -> Any:
    if response.status_code != status:
        raise RuntimeError(f"{what}: HTTP {response.status_code}: {response.text[:500]}")
    return response.json()


@dataclass
class Setup:
    service: str
    bare: str | None
    facilitator_id: UUID
    facilitator_headers: dict[str, str]
    referrals: list[UUID]
    group_id: str
    sessions: list[str] = field(default_factory=list)
    session_dates: list[date] = field(default_factory=list)


async def build_setup(
    service: str, bare: str | None, users: dict[str, tuple[str, str]], tag: str, first: int = 0
) -> Setup:
    """Sign in, then 12 engaged referrals in one group of 12, all over HTTP (people
    ``first`` to ``first + 11``: another group's set-up starts where this one ends)."""
    now = today()
    received_on = now - timedelta(days=HISTORY_DAYS + 10)
    engaged_on = now - timedelta(days=HISTORY_DAYS)
    async with httpx.AsyncClient(base_url=service, timeout=HTTP_TIMEOUT) as http:
        headers = {}
        for role, (username, password) in users.items():
            token = expect(
                await http.post("/auth/login", json={"username": username, "password": password}),
                200,
                f"login {username}",
            )
            headers[role] = {"Authorization": f"Bearer {token['access_token']}"}
        me = expect(await http.get("/auth/me", headers=headers["facilitator"]), 200, "me")
        referrals: list[UUID] = []
        for n in range(first, first + REGISTER_SIZE):
            body = referral_body(n, f"Bench{tag}", received_on)
            accepted = expect(
                await http.post("/referrals", json=body, headers=headers["referrer"]),
                201,
                f"referral {n}",
            )
            for step in ("contacted", "engaged"):
                expect(
                    await http.post(
                        f"/referrals/{accepted['id']}/events",
                        json={"type": step, "on": engaged_on.isoformat()},
                        headers=headers["facilitator"],
                    ),
                    201,
                    f"referral {n} {step}",
                )
            referrals.append(UUID(accepted["id"]))
        group = expect(
            await http.post(
                "/groups",
                json={
                    "name": f"Bench register {tag}",
                    "starts_on": engaged_on.isoformat(),
                    "facilitators": [users["facilitator"][0]],
                    "capacity": REGISTER_SIZE,
                },
                headers=headers["facilitator"],
            ),
            201,
            "group",
        )
        for referral_id in referrals:
            expect(
                await http.post(
                    f"/groups/{group['id']}/members",
                    json={"referral_id": str(referral_id), "joined_on": engaged_on.isoformat()},
                    headers=headers["facilitator"],
                ),
                201,
                "member",
            )
    return Setup(
        service=service,
        bare=bare,
        facilitator_id=UUID(me["id"]),
        facilitator_headers=headers["facilitator"],
        referrals=referrals,
        group_id=group["id"],
    )


async def new_sessions(setup: Setup, count: int) -> list[str]:
    """``count`` more past sessions: core group sessions 1-24, then numbered one-to-ones."""
    first_day = today() - timedelta(days=HISTORY_DAYS - 1)  # the day after everyone engaged
    made = []
    async with httpx.AsyncClient(base_url=setup.service, timeout=HTTP_TIMEOUT) as http:
        for _ in range(count):
            k = len(setup.sessions)
            if k < CORE_SESSIONS:
                number, kind = k + 1, "group"
            else:
                number, kind = k - CORE_SESSIONS + 1, "one_to_one"
            # A day of its own: a group meets at most once a day for each kind of session.
            held_on = first_day + timedelta(days=k)
            if held_on >= today():
                raise RuntimeError(f"more than {HISTORY_DAYS - 1} sessions: widen HISTORY_DAYS")
            created = expect(
                await http.post(
                    f"/groups/{setup.group_id}/sessions",
                    json={"number": number, "held_on": held_on.isoformat(), "kind": kind},
                    headers=setup.facilitator_headers,
                ),
                201,
                f"session {k}",
            )
            setup.sessions.append(created["id"])
            setup.session_dates.append(held_on)
            made.append(created["id"])
    return made


def register_json(referrals: Sequence[UUID]) -> list[bytes]:
    return [
        json.dumps(
            [
                {"referral_id": str(referral_id), "status": status}
                for referral_id, status in zip(referrals, register, strict=True)
            ]
        ).encode()
        for register in (REGISTER_A, REGISTER_B)
    ]
