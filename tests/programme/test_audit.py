"""The audit trail: written on every read or change of a person's record, never rewritten."""

from __future__ import annotations

import asyncpg
import pytest

from programme.platform import database
from programme.platform.tables import Account, AuditEvent, Role
from tests.builders import PASSWORD

pytestmark = pytest.mark.anyio


async def audit_rows(**where):
    query = AuditEvent.select().order_by(AuditEvent.id)
    for column, value in where.items():
        query = query.where(getattr(AuditEvent, column) == value)
    return await query


async def test_creating_an_account_over_http_writes_a_create_row(client, sign_in):
    headers = await sign_in(Role.admin, "alice")
    response = await client.post(
        "/accounts",
        json={
            "username": "rita",
            "password": "long enough password",
            "role": "referrer",
            "agency": "Rotherham Early Help",
        },
        headers=headers,
    )
    assert response.status_code == 201, response.text
    rows = await audit_rows(action="create", record_type="account", record_id=response.json()["id"])
    assert len(rows) == 1
    assert rows[0]["username"] == "alice"
    assert rows[0]["role"] == "admin"


async def test_reading_accounts_writes_one_read_row_per_account(client, sign_in):
    headers = await sign_in(Role.admin, "alice")
    await sign_in(Role.facilitator, "fran")
    before = len(await audit_rows(action="read"))
    response = await client.get("/accounts", headers=headers)
    assert response.status_code == 200
    reads = (await audit_rows(action="read"))[before:]
    assert sorted(row["record_id"] for row in reads) == sorted(
        a["id"] for a in response.json()["items"]
    )
    assert {row["username"] for row in reads} == {"alice"}


async def test_signing_in_is_recorded(client, sign_in):
    await sign_in(Role.monitor, "mo")
    response = await client.post("/auth/login", json={"username": "mo", "password": PASSWORD})
    assert response.status_code == 200
    account = await Account.select(Account.id).where(Account.username == "mo").first()
    rows = await audit_rows(action="login", account_id=account["id"])
    assert len(rows) == 1


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_event SET username = 'someone else'",
        "DELETE FROM audit_event",
        "TRUNCATE audit_event",
    ],
)
async def test_the_database_refuses_to_rewrite_the_audit_trail(client, sign_in, statement):
    headers = await sign_in(Role.admin, "alice")
    await client.get("/accounts", headers=headers)
    assert await AuditEvent.count() > 0
    connection = await asyncpg.connect(**database.engine().config)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await connection.execute(statement)
    finally:
        await connection.close()
    assert await AuditEvent.count() > 0
    assert await AuditEvent.count().where(AuditEvent.username == "someone else") == 0


async def test_admins_filter_the_audit_trail_by_record_and_by_account(client, sign_in):
    headers = await sign_in(Role.admin, "alice")
    created = await client.post(
        "/accounts",
        json={"username": "fran", "password": PASSWORD, "role": "facilitator"},
        headers=headers,
    )
    assert created.status_code == 201
    await client.post("/auth/login", json={"username": "fran", "password": PASSWORD})
    fran = await Account.select(Account.id).where(Account.username == "fran").first()
    alice = await Account.select(Account.id).where(Account.username == "alice").first()
    await client.get("/accounts", headers=headers)

    by_record = await client.get(f"/audit?record_id={fran['id']}", headers=headers)
    assert by_record.status_code == 200
    items = by_record.json()["items"]
    assert items and all(item["record_id"] == str(fran["id"]) for item in items)
    assert {item["action"] for item in items} >= {"create", "login", "read"}

    by_account = await client.get(f"/audit?account_id={alice['id']}&action=read", headers=headers)
    items = by_account.json()["items"]
    assert items and all(item["account_id"] == str(alice["id"]) for item in items)


async def test_only_admins_read_the_audit_trail(client, sign_in):
    for role in (Role.referrer, Role.facilitator, Role.victim_worker, Role.monitor):
        headers = await sign_in(role, f"{role.value}-x")
        assert (await client.get("/audit", headers=headers)).status_code == 403
