"""Which database failures are outages (503, try again) and which are our own bugs (a logged 500).

asyncpg raises ``InterfaceError`` both when a connection was lost and for
mistakes in the calling code; only the first is an outage. And however a
transaction ends, its connection goes back to the pool, so that neither the
pool nor the server's shutdown waits for one that never comes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator

import asyncpg
import httpx
import pytest
from litestar import get

from programme.app import create_app
from programme.platform import database
from programme.platform.accounts import access
from programme.platform.settings import get_settings

pytestmark = pytest.mark.anyio

PUBLIC = access.PUBLIC_ROUTE
HANG = 30
"""Seconds after which a wait is taken to be for ever (only ever reached on failure)."""


@get("/too-many-arguments", opt=PUBLIC)
async def too_many_arguments() -> str:
    await database.fetch("SELECT $1::int", 1, 2)
    return "not reached"


@get("/released-connection", opt=PUBLIC)
async def released_connection() -> str:
    async with database.connection() as connection:
        pass
    await connection.fetch("SELECT 1")
    return "not reached"


@get("/connection-lost", opt=PUBLIC)
async def connection_lost() -> str:
    async with database.connection() as connection:
        # The server ends this session, as it ends every session when it stops.
        with contextlib.suppress(asyncpg.PostgresError):
            await connection.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        await connection.fetch("SELECT 1")
    return "not reached"


class _Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def errors_logged() -> Iterator[list[logging.LogRecord]]:
    kept = _Kept()
    logger = logging.getLogger("programme.errors")
    logger.addHandler(kept)
    try:
        yield kept.records
    finally:
        logger.removeHandler(kept)


@pytest.fixture
async def http(clean_database) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        get_settings(), extra_routes=[too_many_arguments, released_connection, connection_lost]
    )
    transport = httpx.ASGITransport(app=app)
    async with (
        app.lifespan(),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
    ):
        yield client


@pytest.mark.parametrize("path", ["/too-many-arguments", "/released-connection"])
async def test_a_mistake_in_our_own_database_code_is_a_logged_500_not_an_outage(
    http, errors_logged, path
):
    response = await http.get(path)
    assert response.status_code == 500, response.text
    assert "Retry-After" not in response.headers
    assert response.json()["detail"] == "Something went wrong on our side; it has been logged."
    first_lines = [r.getMessage().splitlines()[0] for r in errors_logged if r.levelname == "ERROR"]
    assert first_lines == [f"unexpected InterfaceError on GET {path}"]


async def test_a_connection_lost_in_the_middle_of_work_is_an_outage(http, errors_logged):
    response = await http.get("/connection-lost")
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "5"
    assert not [r for r in errors_logged if r.levelname == "ERROR"]
    assert (await http.get("/health")).status_code == 200


async def _commit_that_fails() -> None:
    async with database.engine().transaction() as transaction:
        connection = transaction.connection
        await connection.execute(
            "CREATE TEMP TABLE once_only (n int UNIQUE DEFERRABLE INITIALLY DEFERRED)"
            " ON COMMIT DROP"
        )
        await connection.execute("INSERT INTO once_only VALUES (1), (1)")  # refused at COMMIT


async def test_a_transaction_whose_commit_fails_gives_its_connection_back(app):
    # More failed commits than the pool has connections: had any kept its
    # connection, the last would wait for one for ever.
    for _ in range(app.state.settings.pool_max_size + 1):
        with pytest.raises(asyncpg.UniqueViolationError):
            await asyncio.wait_for(_commit_that_fails(), HANG)
    rows = await asyncio.wait_for(database.fetch("SELECT 1 AS one"), HANG)
    assert [dict(row) for row in rows] == [{"one": 1}]


async def test_the_app_stops_while_a_connection_is_still_held(clean_database):
    """As after an outage, or with a request stuck: the pool's close must not wait for ever."""
    app = create_app(get_settings())

    async def serve_and_stop() -> None:
        async with app.lifespan():
            pool = database.engine().pool
            assert pool is not None
            await pool.acquire()  # never given back

    await asyncio.wait_for(serve_and_stop(), HANG)
    assert database.engine().pool is None
