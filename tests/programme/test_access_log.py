"""The access log: one line per request naming the route, status, time and account, never what
was sent (paths, queries and bodies can carry names)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from uuid import uuid4

import pytest

from programme.platform.tables import Role

pytestmark = pytest.mark.anyio

FIRST, LAST, BORN, PHONE = "Jordan", "Testperson", "1990-05-17", "0114 496 0123"
LINE = re.compile(
    r"(?P<method>\S+) (?P<route>\S+) (?P<status>\d{3}) \d+\.\dms account=(?P<account>\S+)"
)


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def access_lines() -> Iterator[list[str]]:
    kept = _Lines()
    logger = logging.getLogger("programme.access")
    logger.addHandler(kept)
    try:
        yield kept.lines
    finally:
        logger.removeHandler(kept)


async def test_each_request_is_one_line_of_route_status_time_and_account(
    client, sign_in, access_lines
):
    headers = await sign_in(Role.referrer, "rita")
    account = (await client.get("/auth/me", headers=headers)).json()["id"]
    someone = uuid4()
    access_lines.clear()

    await client.get("/referrals", params={"status": "accepted", "limit": 5}, headers=headers)
    await client.get(f"/referrals/{someone}", headers=headers)
    await client.post(
        "/referrals",
        json={"first_name": FIRST, "last_name": LAST, "date_of_birth": BORN, "phone": PHONE},
        headers=headers,
    )
    await client.get(f"/people/{FIRST}-{LAST}", params={"born": BORN})
    await client.post("/auth/login", json={"username": f"{FIRST}.{LAST}", "password": PHONE * 2})

    found = [LINE.fullmatch(line) for line in access_lines]
    assert all(found), access_lines
    assert [(m["method"], m["route"], m["status"], m["account"]) for m in found if m] == [
        ("GET", "/referrals", "200", account),
        ("GET", "/referrals/{referral_id}", "404", account),
        ("POST", "/referrals", "422", account),
        ("GET", "-", "404", "-"),
        ("POST", "/auth/login", "401", "-"),
    ]


async def test_nothing_sent_is_written_only_the_route(client, sign_in, access_lines):
    headers = await sign_in(Role.referrer, "rita")
    await client.get("/referrals", params={"agency": f"{FIRST} {LAST}"}, headers=headers)
    await client.post(
        "/referrals",
        json={"first_name": FIRST, "last_name": LAST, "date_of_birth": BORN, "phone": PHONE},
        headers=headers,
    )
    await client.get(f"/people/{FIRST}{LAST}/{BORN}")
    await client.post("/auth/login", json={"username": f"{FIRST}{LAST}", "password": PHONE * 2})

    written = "\n".join(access_lines)
    assert len(access_lines) == 4
    for sent in (FIRST, LAST, BORN, "1990", "496", "agency", "?", "people"):
        assert sent.lower() not in written.lower(), written
