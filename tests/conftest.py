"""Shared fixtures: a real PostgreSQL, a fresh schema state per test, signed-in clients.

Without ``DATABASE_URL`` the tests run on their own embedded PostgreSQL in a
temporary data directory (never the user's). With it, they run against that
server; every table is emptied before each test, so point it at a scratch
database.

Only the tests that ask for the database (``app``, ``client``,
``clean_database`` or a fixture built on them) start and migrate it, and the
app and its libraries are imported when a fixture first needs them: the rules'
unit tests run in about a second. What the tests build data with (bodies, CSV
files, the console script) is in ``tests/builders.py``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest

# Most tests record history over the API (referrals received months ago); the bound on
# back-dating is tested on its own with a lower value (tests/referrals/test_backdating.py).
os.environ.setdefault("INSPIRE_BACKDATE_DAYS", "36500")
# Many sign-in tests send dozens of attempts at once from one address; the per-address
# pace is tested on its own, with lower values (tests/programme/test_sign_in_door.py).
os.environ.setdefault("INSPIRE_LOGIN_BURST", "100000")

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

from programme.platform.tables import Account, Role  # noqa: E402
from tests.builders import (  # noqa: E402
    ADMIN,
    NEW_SIGNING_KEY,
    MakeReferrals,
    SignIn,
    distinct_referral,
    password_hash,
)

if TYPE_CHECKING:
    import httpx
    from litestar import Litestar


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _TEMP_DATA_DIR:
        # Stop the embedded server first: with its data directory gone it could not be
        # stopped at exit, and each run would leave a postgres process behind.
        from programme.platform import database

        database.release_embedded_server()
        shutil.rmtree(_TEMP_DATA_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def migrated_database() -> None:
    """Start the database (embedded unless DATABASE_URL) and migrate it, once a run."""
    import asyncio

    from programme.platform import database

    asyncio.run(database.migrate())


@pytest.fixture
async def app(migrated_database: None) -> AsyncIterator[Litestar]:
    from programme.app import create_app
    from programme.platform.settings import get_settings

    service = create_app(get_settings())
    async with service.lifespan():
        yield service


@pytest.fixture
async def clean_database(migrated_database: None) -> None:
    """Start each test from empty tables (the migrations table excepted).

    ``session_replication_role = replica`` switches off triggers for this one
    connection, which is the only way past the audit table's append-only rule.
    """
    import asyncpg

    from programme.platform import database

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
async def client(app: Litestar, clean_database: None) -> AsyncIterator[httpx.AsyncClient]:
    """HTTP straight into the app on the test's own event loop.

    Litestar's AsyncTestClient runs the app on a separate portal thread and
    serves one request at a time, which would hide races the concurrency tests
    exist to catch, and puts the connection pool on another loop than the test.
    """
    import httpx

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
async def client_after_new_signing_key(
    app: Litestar, client: httpx.AsyncClient
) -> AsyncIterator[httpx.AsyncClient]:
    """HTTP into the same service restarted with ``NEW_SIGNING_KEY``, every other key unchanged.

    It shares ``app``'s connection pool and database, so it needs no start-up of its own.
    Tokens signed before the change are refused by it; sign in again with ``log_in``.
    """
    from dataclasses import replace

    import httpx

    from programme.app import create_app

    restarted = create_app(replace(app.state.settings, secret_key=NEW_SIGNING_KEY))
    transport = httpx.ASGITransport(app=restarted)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
def sign_in(app: Litestar) -> SignIn:
    """Create an account of a role and return bearer headers for it.

    The token is issued the way ``POST /auth/login`` issues it; the login route
    itself is tested in tests/programme/test_auth.py.
    """
    from programme.platform.accounts import access
    from programme.platform.accounts import services as accounts

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
