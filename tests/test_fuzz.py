"""Schemathesis against the service's own OpenAPI document: no 5xx, no answer it does not declare.

Every operation of ``/schema/openapi.json`` is called in-process (ASGI, the
app's lifespan started by Schemathesis) as each role and with no token: one
test per operation and caller, 39 x 6 of them. Each runs every check
Schemathesis has (``not_a_server_error``, ``status_code_conformance``,
``content_type_conformance``, ``response_headers_conformance``,
``response_schema_conformance``, ``negative_data_rejection``,
``positive_data_acceptance``, ``missing_required_header``, ``ignored_auth``,
``unsupported_method``, ``allow_header_conformance``, ...) plus one of ours,
``no_undeclared_field_refused``, over the phases the pytest integration has:
the document's examples, the coverage phase's boundary and negative cases
(wrong types, missing fields, methods the path does not take) and then
``MAX_EXAMPLES`` fuzzed cases, valid and invalid alike. The seed is fixed and
Hypothesis derandomised, so a run finds what the last run found.

The database is emptied once, then filled with one of each thing a path can
name (a referral naming a victim, contacted and engaged, placed in a group
that has a session; the victim's feedback), made through the API by the roles
that make them. Well-formed ids in a path are swapped for the real one of the
same name (always in the coverage phase, three fuzzed cases in four), so an
operation gets past its 404 into the code behind it. Tokens are issued the
way ``POST /auth/login`` issues them, not through it: argon2 is slow on
purpose, and the login throttle would lock the accounts.

``pytest -m fuzz`` runs only these; the README's plain ``pytest`` (and so CI)
runs them with the rest. A failure names the operation and caller and gives a
curl line (tokens filtered out) to reproduce it against ``inspire serve``.

Nothing is excluded: every operation, every caller, every check. What is
relaxed, and why, is said beside it in ``CONFIG``; what is not run is the
stateful phase, which belongs to Schemathesis's command line, not its pytest
integration; the checks that need it (``use_after_free``,
``ensure_resource_availability``, ``object_level_authorization``) find
nothing to judge here.
"""

from __future__ import annotations

import asyncio
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
import schemathesis

from programme.platform.tables import Account, Role
from tests.builders import ADMIN, VICTIM, good_referral, password_hash

if TYPE_CHECKING:
    import httpx
    from litestar import Litestar

pytestmark = pytest.mark.fuzz

SEED = 20_261_127
MAX_EXAMPLES = 20
"""Fuzzed cases per operation and caller. The coverage phase adds its own (about as
many again), which no setting bounds: about 12,000 requests in all, 5-6 minutes here."""

CONFIG = f"""
seed = {SEED}
# A judgement of time, which a test on a shared two-core machine must not make.
suppress-health-check = ["too_slow"]

[generation]
mode = "all"
max-examples = {MAX_EXAMPLES}
deterministic = true
# No example database: each run is the seed's run, whatever ran before on this machine.
database = "none"
# The bearer token is not a generated parameter: each test sends its caller's token, or
# none. Generated, a case "missing" it would still carry the caller's token, and the 2xx
# it earns would be reported as invalid data accepted.
with-security-parameters = false

[output.sanitization]
# Schemathesis's default markers less "session": a session here is a programme session
# (core_sessions, session_id), and a reproduction needs its values. Tokens and passwords
# stay hidden.
sensitive-markers = ["token", "key", "secret", "password", "auth", "passwd", "credential"]

[checks]
enabled = true
# Relaxed: a valid body or query may still be refused with 422. The service's rules say
# more than JSON Schema can (no date before 2015, consent dated before the referral,
# facilitators who have accounts, a session inside its group's dates, an analysis that
# has data to fit); each 422 names its rule. What the check would also catch, the
# document allowing a field the service refuses, `no_undeclared_field_refused` still
# does.
positive_data_acceptance.expected-statuses = ["2XX", "3XX", 401, 403, 404, 409, 422, 429]
"""
"""Schemathesis's settings, as a ``schemathesis.toml`` would hold them."""


@schemathesis.check
def no_undeclared_field_refused(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> bool | None:
    """A valid case refused for a field the document lets it send.

    The bodies refuse unknown fields (``unknown_field``), so the document must say
    so (``additionalProperties: false``); where it does not, clients are told they
    may send what will be refused.
    """
    if case.meta is None or case.meta.generation.mode != schemathesis.GenerationMode.POSITIVE:
        return None
    if response.status_code != 422:
        return None
    body = response.json()
    errors = body.get("errors", []) if isinstance(body, dict) else []
    refused = [e.get("field") for e in errors if e.get("code") == "unknown_field"]
    if refused:
        raise AssertionError(
            f"Fields the document allows were refused as unknown: {refused}. "
            "Declare additionalProperties: false for this body."
        )
    return None


ROLES: tuple[Role | None, ...] = (*Role, None)
"""Each role, then nobody (no token, or whatever bearer value Schemathesis makes up)."""

FACILITATOR = "fuzz-facilitator"
"""The facilitator whose token is used: the seeded group is theirs."""


@dataclass(frozen=True)
class World:
    """What the seeded database holds, by the name a path gives it, and a token per role."""

    ids: dict[str, str]
    headers: dict[Role | None, dict[str, str]]


def _username(role: Role) -> str:
    return FACILITATOR if role is Role.facilitator else f"fuzz-{role.value}"


async def _empty_tables() -> None:
    """As the ``clean_database`` fixture: every table but the migrations', triggers off."""
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


async def _sign_in(app: Litestar, role: Role) -> dict[str, str]:
    """An account of ``role`` and bearer headers for it, as the ``sign_in`` fixture makes them."""
    from programme.platform.accounts import access
    from programme.platform.accounts import services as accounts

    agency = None
    if role is Role.referrer:
        agency = (await accounts.get_or_create_agency("South Yorkshire Police", ADMIN))[0]
    rows = await Account.insert(
        Account(
            username=_username(role), password_hash=password_hash(), role=role.value, agency=agency
        )
    ).returning(Account.id)
    principal = await accounts.principal_for(rows[0]["id"])
    assert principal is not None
    token = access.issue_token(app.state.jwt_auth, principal, app.state.settings)
    return {"Authorization": f"Bearer {token}"}


def _created(response: httpx.Response) -> Any:
    assert response.status_code in (200, 201), response.text
    return response.json()


async def _seed(app: Litestar) -> World:
    """Empty the database, then make one of each thing a path can name, through the API."""
    import httpx

    await _empty_tables()
    headers: dict[Role | None, dict[str, str]] = {None: {}}
    for role in Role:
        headers[role] = await _sign_in(app, role)
    referrer, facilitator = headers[Role.referrer], headers[Role.facilitator]
    victim_worker = headers[Role.victim_worker]

    async with app.lifespan():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            referral = _created(
                await http.post(
                    "/referrals", json=good_referral(victims=[VICTIM]), headers=referrer
                )
            )
            referral_id = referral["id"]
            for step in ("contacted", "engaged"):
                _created(
                    await http.post(
                        f"/referrals/{referral_id}/events",
                        json={"type": step, "on": "2026-10-02"},
                        headers=facilitator,
                    )
                )
            group = _created(
                await http.post(
                    "/groups",
                    json={
                        "name": "Fuzz group",
                        "starts_on": "2026-06-01",
                        "facilitators": [FACILITATOR],
                        "capacity": 10,
                    },
                    headers=facilitator,
                )
            )
            _created(
                await http.post(
                    f"/groups/{group['id']}/members",
                    json={"referral_id": referral_id},
                    headers=facilitator,
                )
            )
            session = _created(
                await http.post(
                    f"/groups/{group['id']}/sessions",
                    json={"number": 1, "held_on": "2026-10-06"},
                    headers=facilitator,
                )
            )
            victims = _created(
                await http.get(f"/referrals/{referral_id}/victims", headers=victim_worker)
            )
            _created(
                await http.post(
                    f"/victims/{victims[0]['id']}/feedback",
                    json={
                        "stage": "intake",
                        "collected_on": "2026-10-05",
                        "behaviour": "reduced",
                        "feels_safer": "yes",
                    },
                    headers=victim_worker,
                )
            )
    ids = {
        "referral_id": referral_id,
        "victim_id": victims[0]["id"],
        "group_id": group["id"],
        "session_id": session["id"],
    }
    return World(ids=ids, headers=headers)


async def _served_document(app: Litestar) -> dict[str, Any]:
    """``/schema/openapi.json`` as the app serves it, asked in-process and without its lifespan.

    The document needs no database, so it can be read while pytest collects the tests
    (one per operation and role), before any fixture has started one.
    """
    import httpx

    from programme.platform.accounts.access import OPENAPI_PATH

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        response = await http.get(f"{OPENAPI_PATH}/openapi.json")
    response.raise_for_status()
    document: dict[str, Any] = response.json()
    return document


def _service() -> schemathesis.BaseSchema:
    """The OpenAPI document the app serves, its operations to be called on that app.

    What ``schemathesis.openapi.from_asgi`` does, without starting the app (and so
    the database) at collection: Schemathesis starts the app's lifespan on its own
    event loop at the first request.
    """
    from programme.app import create_app
    from programme.platform.settings import get_settings

    app = create_app(get_settings())
    document = asyncio.run(_served_document(app))
    loaded = schemathesis.openapi.from_dict(document, config=schemathesis.Config.from_str(CONFIG))
    loaded.app = app
    return loaded


SCHEMA = _service()


@pytest.fixture(scope="module")
def world(migrated_database: None) -> Iterator[World]:
    """The seeded database, for every test in this module.

    The seeding app runs its own lifespan here and closes its pool before
    Schemathesis starts SCHEMA's app: the engine's one pool must only ever serve one
    event loop at a time.
    """
    from schemathesis.python import asgi

    from programme.app import create_app
    from programme.platform.settings import get_settings

    seeded = asyncio.run(_seed(create_app(get_settings())))
    try:
        yield seeded
    finally:
        # Schemathesis keeps a started app running until the process exits; stop it (and
        # its connection pool) now, so the tests after this module start their own.
        asgi.shutdown_lifespans()


def _is_uuid(value: object) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def use_real_ids(case: schemathesis.Case, ids: dict[str, str]) -> None:
    """Swap well-formed ids in the path for the seeded record's of the same name.

    Always in the coverage phase, whose cases are few and chosen, so that they
    reach the code behind the 404; in three fuzzed cases in four, decided by the
    generated value itself (so a run is the same run every time), the rest trying
    the 404. A malformed id is left alone: it is the case's point.
    """
    coverage = case.meta is not None and case.meta.phase.name == "coverage"
    for name, value in (case.path_parameters or {}).items():
        if name not in ids or not _is_uuid(value):
            continue
        if coverage or zlib.crc32(str(value).encode()) % 4:
            case.path_parameters[name] = ids[name]


@pytest.mark.parametrize("role", ROLES, ids=lambda role: role.value if role else "no-token")
@SCHEMA.parametrize()
def test_every_operation(case: schemathesis.Case, role: Role | None, world: World) -> None:
    use_real_ids(case, world.ids)
    case.call_and_validate(headers=world.headers[role] or None)
