"""Shared fixtures: a real PostgreSQL, a fresh schema state per test, signed-in clients.

Without ``DATABASE_URL`` the tests run on their own embedded PostgreSQL in a
temporary data directory (never the user's). With it, they run against that
server; every table is emptied before each test, so point it at a scratch
database.
"""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

_TEMP_DATA_DIR: str | None = None
if not os.environ.get("DATABASE_URL"):
    # Short path: the embedded server's Unix socket lives in it.
    _TEMP_DATA_DIR = tempfile.mkdtemp(prefix="inspire-test-")
    os.environ["INSPIRE_DATA_DIR"] = _TEMP_DATA_DIR
else:
    os.environ.setdefault(
        "INSPIRE_SECRET_KEY", "test-signing-key-not-for-production-use-0123456789"
    )
    os.environ.setdefault(
        "INSPIRE_ENCRYPTION_KEY", "test-encryption-key-not-for-production-0123456789"
    )
    os.environ.setdefault(
        "INSPIRE_PSEUDONYM_KEY", "test-pseudonym-key-not-for-production-use-0123456789"
    )

from litestar import Litestar  # noqa: E402

from programme.app import create_app  # noqa: E402
from programme.platform import database  # noqa: E402
from programme.platform.accounts import access  # noqa: E402
from programme.platform.accounts import services as accounts  # noqa: E402
from programme.platform.accounts.passwords import hash_password  # noqa: E402
from programme.platform.accounts.schemas import Principal  # noqa: E402
from programme.platform.settings import get_settings  # noqa: E402
from programme.platform.tables import Account, Role  # noqa: E402

PASSWORD = "a perfectly long test password"

INSPIRE = str(Path(sys.executable).parent / "inspire")
"""The console script, run as a user runs it: in its own process."""


def inspire(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [INSPIRE, *args], input=stdin, capture_output=True, text=True, timeout=300, env=env
    )


# Ofcom's drama numbers for Sheffield (0114 496 0000-0999): valid, never anyone's.
PHONE = "0114 496 0123"
PHONE_E164 = "+441144960123"
ADMIN = Principal(id=None, username="test-setup", role="system")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _TEMP_DATA_DIR:
        shutil.rmtree(_TEMP_DATA_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session", autouse=True)
def migrated_database() -> None:
    asyncio.run(database.migrate())


async def empty_every_table() -> None:
    """Start each test from empty tables (the migrations table excepted).

    ``session_replication_role = replica`` switches off triggers for this one
    connection, which is the only way past the audit table's append-only rule.
    """
    import asyncpg

    connection = await asyncpg.connect(**database.engine().config)
    try:
        tables = await connection.fetch(
            "SELECT tablename FROM pg_tables"
            " WHERE schemaname = 'public' AND tablename <> 'migration'"
        )
        names = ", ".join(f'"{row["tablename"]}"' for row in tables)
        async with connection.transaction():
            await connection.execute("SET LOCAL session_replication_role = replica")
            await connection.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    finally:
        await connection.close()


@pytest.fixture
async def app() -> AsyncIterator[Litestar]:
    service = create_app(get_settings())
    async with service.lifespan():
        yield service


@pytest.fixture
async def clean_database() -> None:
    await empty_every_table()


@pytest.fixture
async def client(app: Litestar, clean_database: None) -> AsyncIterator[httpx.AsyncClient]:
    """HTTP straight into the app on the test's own event loop.

    Litestar's AsyncTestClient runs the app on a separate portal thread and
    serves one request at a time, which would hide races the concurrency tests
    exist to catch, and puts the connection pool on another loop than the test.
    """
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


NEW_SIGNING_KEY = "a new signing key, as after a leak, 0123456789"
"""An ``INSPIRE_SECRET_KEY`` that no test starts with."""


@pytest.fixture
async def client_after_new_signing_key(
    app: Litestar, client: httpx.AsyncClient
) -> AsyncIterator[httpx.AsyncClient]:
    """HTTP into the same service restarted with ``NEW_SIGNING_KEY``, every other key unchanged.

    It shares ``app``'s connection pool and database, so it needs no start-up of its own.
    Tokens signed before the change are refused by it; sign in again with ``log_in``.
    """
    restarted = create_app(replace(app.state.settings, secret_key=NEW_SIGNING_KEY))
    transport = httpx.ASGITransport(app=restarted)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def log_in(http: httpx.AsyncClient, username: str) -> dict[str, str]:
    """Bearer headers from ``POST /auth/login``, for an account made with ``sign_in``."""
    response = await http.post("/auth/login", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


SignIn = Callable[..., Awaitable[dict[str, str]]]


@functools.cache
def password_hash() -> str:
    """PASSWORD hashed once: argon2 is slow on purpose, and tests make many accounts."""
    return hash_password(PASSWORD)


@pytest.fixture
def sign_in(app: Litestar) -> SignIn:
    """Create an account of a role and return bearer headers for it.

    The token is issued the way ``POST /auth/login`` issues it; the login route
    itself is tested in tests/programme/test_auth.py.
    """

    async def _sign_in(
        role: Role, username: str | None = None, agency: str | None = None
    ) -> dict[str, str]:
        name = username or f"{role.value}-user"
        if role == Role.referrer and agency is None:
            agency = "South Yorkshire Police"
        agency_id = (await accounts.get_or_create_agency(agency, ADMIN))[0] if agency else None
        rows = await Account.insert(
            Account(username=name, password_hash=password_hash(), role=role.value, agency=agency_id)
        ).returning(Account.id)
        principal = await accounts.principal_for(rows[0]["id"])
        assert principal is not None
        token = access.issue_token(app.state.jwt_auth, principal, app.state.settings)
        return {"Authorization": f"Bearer {token}"}

    return _sign_in


def good_referral(**overrides: Any) -> dict[str, Any]:
    """A referral that passes every check; override fields to break one."""
    body: dict[str, Any] = {
        "received_on": "2026-10-01",
        "first_name": "Jordan",
        "last_name": "Testperson",
        "date_of_birth": "1990-05-17",
        "gender": "male",
        "phone": PHONE,
        "local_authority": "Rotherham",
        "relationship": "partner",
        "risk_level": "medium",
        "prior_incidents": 2,
        "substance_misuse": False,
        "mental_health": True,
        "children_in_household": True,
        "on_probation_programme": False,
        "consent_given": True,
        "consent_obtained_on": "2026-09-30",
        "consent_method": "verbal",
        "notes": "Agreed to a call on weekday mornings.",
    }
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not ...}


def distinct_referral(n: int, **overrides: Any) -> dict[str, Any]:
    """A good referral of the n-th distinct person (0 <= n < 1000)."""
    # Names are matched on their letters only, so spell the number in letters.
    spelt = "".join("abcdefghij"[int(digit)] for digit in str(n))
    return good_referral(
        **{
            "first_name": f"Person{spelt}",
            "last_name": "Example",
            "date_of_birth": f"{1960 + n % 40}-03-{1 + n % 28:02d}",
            "phone": f"0114 496 0{n:03d}",
            **overrides,
        }
    )


MakeReferrals = Callable[..., Awaitable[list[str]]]


@pytest.fixture
def make_referrals(client: httpx.AsyncClient, sign_in: SignIn) -> MakeReferrals:
    """Submit ``count`` referrals and move each to ``status`` (default engaged)."""
    tokens: dict[str, dict[str, str]] = {}

    async def _make(
        count: int,
        status: str = "engaged",
        start: int = 0,
        received_on: str = "2026-10-01",
        moved_on: str = "2026-10-02",
    ) -> list[str]:
        if not tokens:
            tokens["referrer"] = await sign_in(Role.referrer, "maker-referrer")
            tokens["facilitator"] = await sign_in(Role.facilitator, "maker-facilitator")
        ids = []
        steps = ["contacted", "engaged", "started"]
        for n in range(start, start + count):
            body = distinct_referral(n, received_on=received_on, consent_obtained_on=received_on)
            response = await client.post("/referrals", json=body, headers=tokens["referrer"])
            assert response.status_code == 201, response.text
            referral_id = response.json()["id"]
            for step in steps[: steps.index(status) + 1] if status in steps else []:
                moved = await client.post(
                    f"/referrals/{referral_id}/events",
                    json={"type": step, "on": moved_on},
                    headers=tokens["facilitator"],
                )
                assert moved.status_code == 201, moved.text
            ids.append(referral_id)
        return ids

    return _make
