"""Health, and answering 503 (not 500) while the database is down, then recovering."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import httpx
import pgserver
import pytest
from pgserver._commands import pg_ctl

from programme.app import create_app
from programme.platform import database
from programme.platform.accounts import services as accounts
from programme.platform.accounts.schemas import AccountCreate
from programme.platform.settings import get_settings
from programme.platform.tables import Role
from tests.builders import ADMIN, PASSWORD

pytestmark = pytest.mark.anyio


@pytest.mark.smoke
async def test_health_reports_the_database(client):
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


@pytest.fixture
def throwaway_server():
    """A PostgreSQL of this test's own, which it may stop without harming anyone.

    The engine is pointed at it for the test and back afterwards, so the test
    works the same whether the suite runs on the embedded server or DATABASE_URL.
    """
    directory = Path(tempfile.mkdtemp(prefix="inspire-stop-"))
    server = pgserver.get_server(directory / "pgdata", cleanup_mode="delete")
    engine = database.engine()
    saved = engine.config
    engine.config = {"dsn": server.get_uri()}
    try:
        yield server
    finally:
        engine.config = saved
        server.cleanup()


async def test_every_route_answers_503_while_the_database_is_down_and_recovers(throwaway_server):
    server = throwaway_server
    await database.migrate()
    await accounts.create_account(
        AccountCreate(username="alice", password=PASSWORD, role=Role.admin), ADMIN
    )
    app = create_app(get_settings())
    async with (
        app.lifespan(),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as http,
    ):
        login = await http.post("/auth/login", json={"username": "alice", "password": PASSWORD})
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        assert (await http.get("/auth/me", headers=headers)).status_code == 200

        await asyncio.to_thread(
            pg_ctl, ["-m", "fast", "-w", "stop"], pgdata=server.pgdata, user=server.system_user
        )
        down = [
            await http.get("/health"),
            await http.get("/auth/me", headers=headers),
            await http.get("/accounts", headers=headers),
            await http.post("/auth/login", json={"username": "alice", "password": PASSWORD}),
        ]
        for response in down:
            assert response.status_code == 503, (response.request.url, response.text)
            assert response.headers["content-type"].startswith("application/json")
            assert "Traceback" not in response.text
        assert down[0].json() == {"status": "unavailable", "database": "unreachable"}

        await asyncio.to_thread(server.ensure_postgres_running)
        for _ in range(50):
            if (await http.get("/health")).status_code == 200:
                break
            await asyncio.sleep(0.2)
        assert (await http.get("/health")).status_code == 200
        me = await http.get("/auth/me", headers=headers)
        assert me.status_code == 200
        assert me.json()["username"] == "alice"
