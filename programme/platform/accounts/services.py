"""Accounts, agencies and signing in: the rules, free of any web framework."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from uuid import UUID

from asyncpg.exceptions import UniqueViolationError

from programme.platform import database
from programme.platform.accounts import queries, schemas
from programme.platform.accounts.passwords import (
    MIN_PASSWORD_LENGTH,
    hash_password,
    needs_rehash,
    verify_password,
)
from programme.platform.audit import services as audit
from programme.platform.database import engine
from programme.platform.errors import (
    Conflict,
    FieldError,
    InvalidInput,
    NotAuthenticated,
    TooManyAttempts,
)
from programme.platform.settings import Settings
from programme.platform.tables import Account, Agency, AuditAction, LoginThrottle, RecordType, Role

USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._@-]{1,99}$")
SELF_REFERRAL_AGENCY = "Self-referral"


def normalise_username(username: str) -> str:
    return username.strip().lower()


async def get_or_create_agency(name: str, actor: schemas.Principal) -> tuple[UUID, bool]:
    """The agency's id, creating it if new; also says whether it was created."""
    clean = " ".join(name.split())
    existing = await Agency.select(Agency.id).where(Agency.name.ilike(clean)).first()
    if existing is not None:
        return existing["id"], False
    rows = await database.fetch(queries.CREATE_AGENCY, clean)
    if rows:
        await audit.record(actor, AuditAction.create, RecordType.agency, rows[0]["id"])
        return rows[0]["id"], True
    again = await Agency.select(Agency.id).where(Agency.name == clean).first()
    assert again is not None
    return again["id"], False


async def list_agencies() -> list[schemas.Agency]:
    rows = await Agency.select().order_by(Agency.name)
    return [schemas.Agency(**row) for row in rows]


async def create_agency(name: str, actor: schemas.Principal) -> schemas.Agency:
    async with engine().transaction():
        agency_id, created = await get_or_create_agency(name, actor)
        if not created:
            raise Conflict("An agency with this name exists already.", extra={"id": str(agency_id)})
        row = await Agency.select().where(Agency.id == agency_id).first()
    assert row is not None
    return schemas.Agency(**row)


def _account_problems(data: schemas.AccountCreate) -> list[FieldError]:
    problems = []
    if not USERNAME_PATTERN.match(normalise_username(data.username)):
        problems.append(
            FieldError(
                "invalid",
                "username",
                "Use 2-100 lower-case letters, digits, '.', '_', '@' or '-'.",
            )
        )
    if len(data.password) < MIN_PASSWORD_LENGTH:
        problems.append(
            FieldError(
                "weak_password",
                "password",
                f"Use at least {MIN_PASSWORD_LENGTH} characters.",
            )
        )
    if data.role == Role.referrer and not data.agency:
        problems.append(FieldError("required", "agency", "A referrer must belong to an agency."))
    return problems


async def create_account(data: schemas.AccountCreate, actor: schemas.Principal) -> schemas.Account:
    """Add an account; a referrer's agency is created if it is new."""
    problems = _account_problems(data)
    if problems:
        raise InvalidInput(errors=problems)
    username = normalise_username(data.username)
    password_hash = hash_password(data.password)
    async with engine().transaction():
        agency_id = None
        if data.agency:
            agency_id, _ = await get_or_create_agency(data.agency, actor)
        try:
            rows = await Account.insert(
                Account(
                    username=username,
                    password_hash=password_hash,
                    role=data.role.value,
                    agency=agency_id,
                )
            ).returning(Account.id)
        except UniqueViolationError:
            raise Conflict("That username is taken.") from None
        account_id = rows[0]["id"]
        await audit.record(
            actor, AuditAction.create, RecordType.account, account_id, {"role": data.role.value}
        )
    return await get_account(account_id)


_ACCOUNT_COLUMNS = (
    Account.id,
    Account.username,
    Account.role,
    Account.agency.name.as_alias("agency"),
    Account.active,
    Account.created_at,
)


async def get_account(account_id: UUID) -> schemas.Account:
    row = await Account.select(*_ACCOUNT_COLUMNS).where(Account.id == account_id).first()
    assert row is not None
    return schemas.Account(**row)


async def list_accounts(actor: schemas.Principal) -> list[schemas.Account]:
    rows = await Account.select(*_ACCOUNT_COLUMNS).order_by(Account.username)
    await audit.record_many(
        actor, AuditAction.read, RecordType.account, [row["id"] for row in rows]
    )
    return [schemas.Account(**row) for row in rows]


async def principal_for(account_id: UUID) -> schemas.Principal | None:
    """The signed-in person behind a token, or None if the account is gone or inactive."""
    row = (
        await Account.select(
            Account.id,
            Account.username,
            Account.role,
            Account.agency.id.as_alias("agency_id"),
            Account.agency.name.as_alias("agency_name"),
        )
        .where((Account.id == account_id) & (Account.active.eq(True)))
        .first()
    )
    return None if row is None else schemas.Principal(**row)


async def _refuse_if_locked(username: str, now: datetime) -> None:
    row = (
        await LoginThrottle.select(LoginThrottle.locked_until)
        .where(LoginThrottle.username == username)
        .first()
    )
    if row and row["locked_until"] and row["locked_until"] > now:
        wait = int((row["locked_until"] - now).total_seconds()) + 1
        raise TooManyAttempts(retry_after_seconds=wait)


async def _count_failure(username: str, now: datetime, settings: Settings) -> None:
    """One more failure; the n-th within the lockout window locks the username."""
    window = timedelta(minutes=settings.login_lockout_minutes)
    await database.fetch(
        queries.COUNT_FAILURE,
        username,
        now,
        settings.login_max_failures,
        now + window,
        now - window,
    )


async def authenticate(username: str, password: str, settings: Settings) -> schemas.Principal:
    """Check a sign-in, slowing down guessing; the same answer for any wrong part."""
    name = normalise_username(username)
    now = datetime.now(UTC)
    await _refuse_if_locked(name, now)
    row = (
        await Account.select(Account.id, Account.password_hash, Account.active)
        .where(Account.username == name)
        .first()
    )
    stored_hash = row["password_hash"] if row else None
    if not verify_password(stored_hash, password) or row is None or not row["active"]:
        await _count_failure(name, now, settings)
        raise NotAuthenticated("Wrong username or password.")
    await LoginThrottle.delete().where(LoginThrottle.username == name)
    if needs_rehash(row["password_hash"]):
        await Account.update({Account.password_hash: hash_password(password)}).where(
            Account.id == row["id"]
        )
    principal = await principal_for(row["id"])
    assert principal is not None
    await audit.record(principal, AuditAction.login, RecordType.account, principal.id)
    return principal
