"""The sign-in door: a refusal already decided is answered before the request is read.

``platform.sign_in_door`` asks ``services.refused_at_the_door`` (a refusal
remembered for the address, or the address's pace, ``rules.Pace``) and answers
the same 429 as ``authenticate`` through the one error mapping, without
reading the body. Over HTTP (and raw ASGI where the body must be watched) into
the app on real PostgreSQL, plus the pure rule with a clock of its own.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from ipaddress import ip_network
from typing import Any

import jsonschema
import msgspec
import pytest
from litestar import Litestar, Request

from programme.platform.accounts import access, rules
from programme.platform.accounts.services import AddressPace, sign_in_pace
from programme.platform.errors import ErrorBody
from programme.platform.settings import ConfigurationError, Settings, get_settings
from programme.platform.sign_in_door import LOGIN_PATH
from programme.platform.tables import Role
from programme.platform.web import browser
from tests.programme.test_access_log import _Lines
from tests.programme.test_signin_refusal_memory import count_connections
from tests.programme.test_signin_throttle import (
    ATTACKER,
    OWNER,
    client_at,
    guess,
    patient,
    right,
    watch_verifies,
)

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
PACE = rules.Pace(burst=3, interval=timedelta(seconds=20))
TOO_MANY = "Too many failed attempts; try again later."


def paced_service(app: Litestar, burst: int = 3, **settings: Any) -> Litestar:
    """The service with a pace of ``burst`` at once, then one a minute: a test never outruns it."""
    return patient(app, login_burst=burst, login_attempts_per_minute=1, **settings)


# --- the pure rule ---


def test_the_pace_lets_a_burst_through_then_one_per_interval():
    full_at = None
    for _ in range(PACE.burst):
        refused, full_at = rules.paced(full_at, NOW, PACE)
        assert refused is None
    refused, full_at = rules.paced(full_at, NOW, PACE)
    assert refused == NOW + PACE.interval
    # Coming back when told: let through, and refused again at once after.
    refused, full_at = rules.paced(full_at, NOW + PACE.interval, PACE)
    assert refused is None
    refused, _ = rules.paced(full_at, NOW + PACE.interval, PACE)
    assert refused == NOW + 2 * PACE.interval


def test_a_refused_request_costs_the_address_nothing_more():
    """Hammering while refused does not push the time to come back further away."""
    full_at = None
    for _ in range(PACE.burst):
        _, full_at = rules.paced(full_at, NOW, PACE)
    told = [rules.paced(full_at, NOW + timedelta(seconds=s), PACE)[0] for s in range(0, 20, 2)]
    assert set(told) == {NOW + PACE.interval}


def test_an_address_whose_allowance_is_whole_again_owes_nothing():
    full_at = None
    for _ in range(PACE.burst):
        _, full_at = rules.paced(full_at, NOW, PACE)
    later = NOW + PACE.burst * PACE.interval
    for _ in range(PACE.burst):
        refused, full_at = rules.paced(full_at, later, PACE)
        assert refused is None


def test_each_address_has_a_pace_of_its_own_and_the_memory_is_bounded():
    pace = AddressPace(PACE, most=4)
    for _ in range(PACE.burst):
        assert pace.refused_until(ATTACKER, NOW) is None
    assert pace.refused_until(ATTACKER, NOW) == NOW + PACE.interval
    assert pace.refused_until(OWNER, NOW) is None
    # Full of addresses still owing: a new one is let through, not remembered.
    for n in range(3):
        assert pace.refused_until(f"10.0.0.{n}", NOW) is None
    assert len(pace) == 4
    assert pace.refused_until("10.0.0.9", NOW) is None
    assert len(pace) == 4
    # Once their allowances are whole again, they are forgotten to make room.
    later = NOW + PACE.burst * PACE.interval
    assert pace.refused_until("10.0.0.9", later) is None
    assert len(pace) == 1


# --- over HTTP ---


def assert_the_one_429(answer: Any) -> None:
    """The 429 ``authenticate`` gives: the one error shape, and ``Retry-After`` as the body says."""
    assert answer.status_code == 429
    body = msgspec.json.decode(answer.content, type=ErrorBody)
    assert (body.status_code, body.detail) == (429, TOO_MANY)
    assert [(e.code, e.field, e.message) for e in body.errors] == [
        ("too_many_attempts", "", TOO_MANY)
    ]
    seconds = answer.json()["retry_after_seconds"]
    assert isinstance(seconds, int) and seconds >= 1
    assert answer.headers["retry-after"] == str(seconds)


async def test_an_address_that_hammers_is_refused_at_the_door_and_the_owner_still_signs_in(
    client, app, sign_in, monkeypatch
):
    await sign_in(Role.admin, "alice")
    service = paced_service(app)
    checked = watch_verifies(monkeypatch)
    async with client_at(service, ATTACKER) as attacker:
        let_through = [await attacker.post(LOGIN_PATH, json=guess()) for _ in range(3)]
        taken = count_connections(monkeypatch)
        refused = [await attacker.post(LOGIN_PATH, json=right()) for _ in range(5)]
    assert [a.status_code for a in let_through] == [401] * 3
    for answer in refused:  # the right password too: the door does not read it
        assert_the_one_429(answer)
        assert 1 <= int(answer.headers["retry-after"]) <= 60
    assert (taken, len(checked)) == ([], 3)
    async with client_at(service, OWNER) as owner:
        assert (await owner.post(LOGIN_PATH, json=right())).status_code == 200


async def test_a_door_refusal_is_the_same_as_the_sign_in_s_own(client, app, sign_in):
    """Same shape, headers and Retry-After as the 429 ``authenticate`` raises (rule 1 here)."""
    service = patient(app, login_max_failures_per_address=2)
    async with client_at(service, ATTACKER) as attacker:
        for n in range(2):
            assert (await attacker.post(LOGIN_PATH, json=guess(f"user{n}"))).status_code == 401
        by_the_records = await attacker.post(LOGIN_PATH, json=guess("user2"))
        at_the_door = await attacker.post(LOGIN_PATH, json=guess("user3"))
    for answer in (by_the_records, at_the_door):
        assert_the_one_429(answer)
    assert by_the_records.json().keys() == at_the_door.json().keys()
    told = int(by_the_records.headers["retry-after"])
    assert told - 1 <= int(at_the_door.headers["retry-after"]) <= told  # the same delay
    same = ("content-type", "cache-control", "content-security-policy", "x-frame-options")
    assert {h: by_the_records.headers.get(h) for h in same} == {
        h: at_the_door.headers.get(h) for h in same
    }


def login_scope(address: str, path: str = LOGIN_PATH, **headers: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/json"),
            *((k.lower().replace("_", "-").encode(), v.encode()) for k, v in headers.items()),
        ],
        "client": (address, 40_000),
        "server": ("testserver", 80),
    }


async def call(service: Litestar, scope: dict[str, Any], body: bytes) -> tuple[int, bytes, int]:
    """Status, body and how many times the app asked for the request's body."""
    asked = []
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        asked.append(1)
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    await service(scope, receive, send)  # type: ignore[arg-type]
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    answer = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, answer, len(asked)


async def test_a_refused_sign_in_s_body_is_never_read(client, app, sign_in):
    await sign_in(Role.admin, "alice")
    service = paced_service(app, burst=1)
    body = json.dumps(right()).encode()
    first = await call(service, login_scope(ATTACKER), body)
    assert (first[0], first[2]) == (200, 1)  # within the pace: read, checked, let in
    status, answer, asked = await call(service, login_scope(ATTACKER), body)
    assert (status, asked) == (429, 0)
    assert msgspec.json.decode(answer, type=ErrorBody).detail == TOO_MANY
    # Another address is read and checked as ever.
    assert (await call(service, login_scope(OWNER), body))[::2] == (200, 1)


async def test_the_sign_in_form_is_refused_at_the_door_with_a_page(client, app):
    """The page's own answer to a 429 (``browser.page_error``), its form never read."""
    service = paced_service(app, burst=1)
    form = b"username=alice&password=whatever"
    scope = {**login_scope(ATTACKER, browser.SIGN_IN_PATH)}
    scope["headers"] = [(b"host", b"testserver"), (b"content-type", b"text/plain")]
    await call(service, dict(scope), form)  # within the pace (refused for its CSRF token)
    status, page, asked = await call(service, dict(scope), form)
    assert (status, asked) == (429, 0)
    assert TOO_MANY in page.decode() and "<html" in page.decode()
    async with client_at(service, ATTACKER) as attacker:
        answer = await attacker.post(browser.SIGN_IN_PATH, data={"username": "alice"})
    assert answer.status_code == 429
    assert answer.headers["content-type"].startswith("text/html")
    assert int(answer.headers["retry-after"]) >= 1


async def test_a_door_refusal_is_in_the_access_log_under_its_route(client, app):
    service = paced_service(app, burst=1)  # before the watch: a new app sets up logging anew
    lines = _Lines()
    logging.getLogger("programme.access").addHandler(lines)
    try:
        async with client_at(service, ATTACKER) as attacker:
            await attacker.post(LOGIN_PATH, json=guess())
            assert (await attacker.post(LOGIN_PATH, json=guess())).status_code == 429
    finally:
        logging.getLogger("programme.access").removeHandler(lines)
    assert lines.lines[-1].startswith(f"POST {LOGIN_PATH} 429 ")
    assert lines.lines[-1].endswith("account=-")


async def test_other_routes_and_methods_go_by_the_door(client, app):
    service = paced_service(app, burst=1)
    async with client_at(service, ATTACKER) as attacker:
        await attacker.post(LOGIN_PATH, json=guess())
        assert (await attacker.post(LOGIN_PATH, json=guess())).status_code == 429
        assert (await attacker.get("/health")).status_code == 200
        assert (await attacker.get(browser.SIGN_IN_PATH)).status_code == 200
        assert (await attacker.post("/auth/logout")).status_code == 401


# --- the client address: the same as the sign-in's ---


PROXY = "127.0.0.1"


async def test_behind_a_trusted_proxy_the_door_paces_the_forwarded_client(client, app):
    service = paced_service(app, burst=1, trusted_proxies=(ip_network(PROXY),))
    async with client_at(service, PROXY) as proxy:
        one = {"X-Forwarded-For": "203.0.113.50"}
        assert (await proxy.post(LOGIN_PATH, json=guess(), headers=one)).status_code == 401
        assert (await proxy.post(LOGIN_PATH, json=guess(), headers=one)).status_code == 429
        # Another client behind the same proxy is paced on its own.
        other = {"X-Forwarded-For": "203.0.113.51"}
        assert (await proxy.post(LOGIN_PATH, json=guess(), headers=other)).status_code == 401
    # Not through the trusted proxy: a header naming a fresh address changes nothing.
    async with client_at(service, ATTACKER) as direct:
        assert (await direct.post(LOGIN_PATH, json=guess())).status_code == 401
        lie = {"X-Forwarded-For": "198.51.100.200"}
        assert (await direct.post(LOGIN_PATH, json=guess(), headers=lie)).status_code == 429


CASES = [
    ("203.0.113.9", (), []),
    ("203.0.113.9", (), ["198.51.100.1"]),
    ("127.0.0.1", ("127.0.0.1",), ["198.51.100.1"]),
    ("127.0.0.1", ("127.0.0.1",), ["6.6.6.6, 198.51.100.1"]),
    ("127.0.0.1", ("127.0.0.1", "10.0.0.0/8"), ["6.6.6.6, 198.51.100.1, 10.1.2.3"]),
    ("127.0.0.1", ("127.0.0.1",), ["6.6.6.6", "198.51.100.1:5555"]),
    ("127.0.0.1", ("127.0.0.1",), ["not an address"]),
    ("127.0.0.1", ("127.0.0.1",), ["[2001:db8::1]:443"]),
    ("2001:db8::7", ("2001:db8::/32",), ["2001:db8:1::9"]),
    ("::ffff:10.0.0.1", (), []),
]


@pytest.mark.parametrize(("peer", "trusted", "forwarded"), CASES)
def test_the_door_keys_the_client_as_the_sign_in_does(peer, trusted, forwarded):
    settings = replace(
        Settings(database_url=None, data_dir=None, secret_key=None),  # type: ignore[arg-type]
        trusted_proxies=tuple(ip_network(t) for t in trusted),
    )
    scope = login_scope(peer)
    scope["headers"] += [(b"X-Forwarded-For", value.encode()) for value in forwarded]
    request: Request[Any, Any, Any] = Request(scope)  # type: ignore[arg-type]
    assert access.scope_client_address(scope, settings) == access.client_address(request, settings)


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Set variables with the returned monkeypatch; settings are read afresh, then restored."""
    get_settings.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    get_settings.cache_clear()


def test_the_pace_is_read_from_the_environment_and_refused_when_it_makes_no_sense(
    environment,
):
    environment.delenv("INSPIRE_LOGIN_BURST", raising=False)
    assert (get_settings().login_burst, get_settings().login_attempts_per_minute) == (10, 60)
    get_settings.cache_clear()
    environment.setenv("INSPIRE_LOGIN_BURST", "4")
    environment.setenv("INSPIRE_LOGIN_ATTEMPTS_PER_MINUTE", "30")
    assert sign_in_pace(get_settings()) == rules.Pace(burst=4, interval=timedelta(seconds=2))
    get_settings.cache_clear()
    environment.setenv("INSPIRE_LOGIN_ATTEMPTS_PER_MINUTE", "0")
    with pytest.raises(ConfigurationError) as refused:
        get_settings()
    assert str(refused.value) == "INSPIRE_LOGIN_ATTEMPTS_PER_MINUTE must be at least 1"


async def test_a_door_refusal_is_what_the_api_document_says_of_a_429(client, app):
    """Checked as a client generated from ``/schema/openapi.json`` would: body schema and header."""
    service = paced_service(app, burst=1)
    async with client_at(service, ATTACKER) as attacker:
        document = (await attacker.get("/schema/openapi.json")).json()
        await attacker.post(LOGIN_PATH, json=guess())
        refused = await attacker.post(LOGIN_PATH, json=guess())
    documented = document["paths"][LOGIN_PATH]["post"]["responses"]["429"]
    assert "Retry-After" in documented["headers"] and "retry-after" in refused.headers
    schema = documented["content"]["application/json"]["schema"]
    assert refused.headers["content-type"].startswith("application/json")
    jsonschema.validate(
        refused.json(),
        {**schema, "components": document["components"]},
        format_checker=jsonschema.FormatChecker(),
    )
