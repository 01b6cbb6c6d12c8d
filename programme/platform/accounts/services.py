"""Accounts, agencies and signing in: the rules, free of any web framework."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg
from asyncpg.exceptions import UniqueViolationError

from programme.platform import database
from programme.platform.accounts import queries, rules, schemas
from programme.platform.accounts.passwords import (
    hash_in_pool,
    needs_rehash,
    password_problems,
    verify_in_pool,
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
from programme.platform.paging import Page, Paging
from programme.platform.settings import Settings
from programme.platform.tables import (
    Account,
    Agency,
    AuditAction,
    RecordType,
    Role,
    ThrottleScope,
)

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


async def list_agencies(paging: Paging) -> Page[schemas.Agency]:
    rows = (
        await Agency.select()
        .order_by(Agency.name)
        .order_by(Agency.id)
        .limit(paging.limit)
        .offset(paging.offset)
    )
    return paging.page([schemas.Agency(**row) for row in rows], await Agency.count())


async def create_agency(name: str, actor: schemas.Principal) -> schemas.Agency:
    async with engine().transaction():
        agency_id, created = await get_or_create_agency(name, actor)
        if not created:
            raise Conflict("An agency with this name exists already.", extra={"id": str(agency_id)})
        row = await Agency.select().where(Agency.id == agency_id).first()
    assert row is not None
    return schemas.Agency(**row)


def account_problems(data: schemas.AccountCreate) -> list[FieldError]:
    problems = []
    if not USERNAME_PATTERN.match(normalise_username(data.username)):
        problems.append(
            FieldError(
                "invalid",
                "username",
                "Use 2-100 lower-case letters, digits, '.', '_', '@' or '-'.",
            )
        )
    problems.extend(password_problems(data.password))
    if data.role == Role.referrer and not data.agency:
        problems.append(FieldError("required", "agency", "A referrer must belong to an agency."))
    return problems


async def create_account(data: schemas.AccountCreate, actor: schemas.Principal) -> schemas.Account:
    """Add an account; a referrer's agency is created if it is new."""
    problems = account_problems(data)
    if problems:
        raise InvalidInput(errors=problems)
    username = normalise_username(data.username)
    password_hash = await hash_in_pool(data.password)
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


async def list_accounts(actor: schemas.Principal, paging: Paging) -> Page[schemas.Account]:
    rows = (
        await Account.select(*_ACCOUNT_COLUMNS)
        .order_by(Account.username)
        .limit(paging.limit)
        .offset(paging.offset)
    )
    await audit.record_many(
        actor, AuditAction.read, RecordType.account, [row["id"] for row in rows]
    )
    return paging.page([schemas.Account(**row) for row in rows], await Account.count())


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


PRUNE_AT_ONCE = 500
"""Forgotten throttle rows deleted per failed sign-in, at most."""


def throttle_policy(settings: Settings) -> rules.ThrottlePolicy:
    return rules.ThrottlePolicy(
        username_failures=settings.login_max_failures,
        address_failures=settings.login_max_failures_per_address,
        first_delay=timedelta(seconds=settings.login_delay_seconds),
        longest_delay=timedelta(minutes=settings.login_lockout_minutes),
    )


_LOCK_ORDER = (ThrottleScope.address, ThrottleScope.username_at_address, ThrottleScope.username)


def _keys(username: str, address: str) -> tuple[list[str], list[str], list[str]]:
    """Scopes, usernames and addresses of the three records, in lock order."""
    return (
        [scope.value for scope in _LOCK_ORDER],
        ["", username, username],
        [address, address, ""],
    )


def _throttle(row: asyncpg.Record) -> rules.Throttle:
    return rules.Throttle(
        failures=row["failures"],
        refused=row["refused"],
        last_failure_at=row["last_failure_at"],
        delayed_until=row["delayed_until"],
        forget_at=row["forget_at"],
    )


REMEMBERED_REFUSALS = 10_000
"""Refusals one worker remembers at most; past that, further ones are asked of the records."""


class RecentRefusals:
    """Refusals this worker gave, repeated without a query until each ends.

    What is remembered, and for how long: ``rules.remembered_refusal``.

    One per worker (the app's state). Refusals it repeats are tallied here and
    added to the records' ``refused`` the next time this worker locks them.
    """

    def __init__(self, most: int = REMEMBERED_REFUSALS) -> None:
        self._most = most
        self._until: dict[tuple[str, str | None], datetime] = {}
        self._tally: dict[tuple[str, str | None], int] = {}
        """Refusals repeated from memory, by record: (address, None) or ("", username)."""

    def __len__(self) -> int:
        return len(self._until)

    def refused_until(self, username: str, address: str, now: datetime) -> datetime | None:
        """When a refusal remembered for this attempt ends; None: ask the records.

        The address first (rule 1): a guesser's own address refuses it whatever it tries.
        """
        for key, record in (
            ((address, None), (address, None)),
            ((address, username), ("", username)),
        ):
            until = self._until.get(key)
            if until is None:
                continue
            if until <= now:
                del self._until[key]
                continue
            self._tally[record] = self._tally.get(record, 0) + 1
            return until
        return None

    def remember(
        self, username: str, address: str, admission: rules.Admission, now: datetime
    ) -> None:
        refusal = rules.remembered_refusal(admission)
        if refusal is None or refusal.until <= now:
            return
        if len(self._until) >= self._most:
            self._until = {key: until for key, until in self._until.items() if until > now}
            if len(self._until) >= self._most:
                return
        self._until[(address, None if refusal.any_username else username)] = refusal.until

    def forget(self, username: str, address: str) -> None:
        """A right password may have lifted a delay: ask the records again."""
        self._until.pop((address, None), None)
        for key in [key for key in self._until if key[1] == username]:
            del self._until[key]

    def take_tally(self, username: str, address: str) -> tuple[int, int]:
        """Refusals repeated since the last look: (the address's, the username's)."""
        return self._tally.pop((address, None), 0), self._tally.pop(("", username), 0)


async def _locked(username: str, address: str, now: datetime) -> rules.Attempt:
    """The three records, created if new, locked until the transaction ends."""
    rows = await database.fetch(queries.LOCK_THROTTLE, *_keys(username, address), now)
    found = {row["scope"]: _throttle(row) for row in rows}
    return rules.Attempt(*(found[scope.value] for scope in _LOCK_ORDER))


async def _save(username: str, address: str, records: rules.Attempt) -> None:
    stored = (records.address, records.username_at_address, records.username)
    await database.fetch(
        queries.SAVE_THROTTLE,
        *_keys(username, address),
        [r.failures for r in stored],
        [r.refused for r in stored],
        [r.last_failure_at for r in stored],
        [r.delayed_until for r in stored],
        [r.forget_at for r in stored],
    )


def _with_tally(records: rules.Attempt, address: int, username: int) -> rules.Attempt:
    return replace(
        records,
        address=replace(records.address, refused=records.address.refused + address),
        username=replace(records.username, refused=records.username.refused + username),
    )


async def _admit(
    username: str,
    address: str,
    now: datetime,
    policy: rules.ThrottlePolicy,
    refusals: RecentRefusals,
) -> rules.Admission:
    """Count the attempt before any password is checked, deciding it in the same lock.

    Reading the records, deciding and counting happen in one transaction that
    holds the records' row locks, so of many simultaneous guesses each sees
    every one counted before it, and no more are checked than the limits allow.
    Refusals this worker repeated from memory since it last held these records
    are added to their tallies here.
    """
    async with engine().transaction():
        admission = rules.admit(await _locked(username, address, now), now, policy)
        tally = refusals.take_tally(username, address)
        await _save(username, address, _with_tally(admission.records, *tally))
    return admission


async def _after_success(
    username: str, address: str, admission: rules.Admission, policy: rules.ThrottlePolicy
) -> None:
    now = datetime.now(UTC)
    async with engine().transaction():
        records = await _locked(username, address, now)
        await _save(username, address, rules.after_success(records, admission, now, policy))


async def _prune(now: datetime) -> None:
    await database.fetch(queries.PRUNE_THROTTLE, now, PRUNE_AT_ONCE)


async def authenticate(
    username: str, password: str, address: str, settings: Settings, refusals: RecentRefusals
) -> schemas.Principal:
    """Check a sign-in from a client address, slowing down guessing (see ``accounts.rules``).

    The same answer for any wrong part, and the same time: an unknown username
    is throttled like a real one and costs a hash all the same.
    """
    name = normalise_username(username)
    now = datetime.now(UTC)
    remembered = refusals.refused_until(name, address, now)
    if remembered is not None:
        raise TooManyAttempts(retry_after_seconds=rules.retry_after_seconds(remembered, now))
    policy = throttle_policy(settings)
    admission = await _admit(name, address, now, policy, refusals)
    if admission.retry_at is not None:
        refusals.remember(name, address, admission, now)
        await _prune(now)
        raise TooManyAttempts(retry_after_seconds=admission.retry_after_seconds(now))
    row = (
        await Account.select(Account.id, Account.password_hash, Account.active)
        .where(Account.username == name)
        .first()
    )
    stored_hash = row["password_hash"] if row else None
    if not await verify_in_pool(stored_hash, password) or row is None or not row["active"]:
        await _prune(now)
        raise NotAuthenticated("Wrong username or password.")
    await _after_success(name, address, admission, policy)
    refusals.forget(name, address)
    if needs_rehash(row["password_hash"]):
        await Account.update({Account.password_hash: await hash_in_pool(password)}).where(
            Account.id == row["id"]
        )
    principal = await principal_for(row["id"])
    assert principal is not None
    await audit.record(principal, AuditAction.login, RecordType.account, principal.id)
    return principal
