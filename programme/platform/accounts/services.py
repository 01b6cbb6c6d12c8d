"""Accounts, agencies and signing in: the rules, free of any web framework."""

from __future__ import annotations

import re
import secrets
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
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
    NotFound,
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


async def create_account(
    data: schemas.AccountCreate, actor: schemas.Principal, *, temporary: bool = False
) -> schemas.Account:
    """Add an account; a referrer's agency is created if it is new.

    ``temporary``: the password is one the admin passes on (the pages make one),
    so its owner must choose their own at the first sign-in.
    """
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
                    must_change_password=temporary,
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
    Account.must_change_password.as_alias("reset_pending"),
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


def _principal(row: Any) -> schemas.Principal:
    return schemas.Principal(
        id=row["id"],
        username=row["username"],
        role=row["role"],
        agency_id=row["agency_id"],
        agency_name=row["agency_name"],
        reset_pending=row["must_change_password"],
        token_generation=row["token_generation"],
    )


async def principal_for(account_id: UUID) -> schemas.Principal | None:
    """The signed-in person behind a token, or None if the account is gone or inactive."""
    rows = await database.fetch(queries.PRINCIPAL, account_id)
    return _principal(rows[0]) if rows else None


async def principal_and_hash(account_id: UUID) -> tuple[schemas.Principal, str] | None:
    """As ``principal_for``, with the password hash a browser session is bound to."""
    rows = await database.fetch(queries.PRINCIPAL, account_id)
    return (_principal(rows[0]), rows[0]["password_hash"]) if rows else None


async def token_revoked(jti: str | None) -> bool:
    """Whether the token was signed out of. A token without an id was never issued here."""
    if not jti:
        return True
    return bool((await database.fetch(queries.JTI_REVOKED, jti))[0]["revoked"])


async def revoke_token(jti: str | None, expires_at: datetime, actor: schemas.Principal) -> None:
    """Sign out a bearer token: refused from now until it would have expired anyway."""
    if not jti:
        return
    async with engine().transaction():
        await database.fetch(queries.PRUNE_REVOKED, datetime.now(UTC))
        await database.fetch(queries.REVOKE_JTI, jti, expires_at)
        await audit.record(actor, AuditAction.logout, RecordType.account, actor.id)


# --- what admins do to accounts ---


TEMPORARY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
"""No 0/o, 1/l/i: a temporary password is read out or copied by hand."""


def temporary_password() -> str:
    """Four groups of four: 16 characters (about 79 bits), past the 12-character minimum."""
    groups = ("".join(secrets.choice(TEMPORARY_ALPHABET) for _ in range(4)) for _ in range(4))
    return "-".join(groups)


async def _locked_account(account_id: UUID) -> Any:
    rows = await database.fetch(queries.LOCK_ACCOUNT, account_id)
    if not rows:
        raise NotFound("No such account.")
    return rows[0]


async def _check_change(change: str, target: Any, actor: schemas.Principal) -> None:
    """Refuse what ``rules.account_change_problem`` refuses, under the admins' row locks."""
    admins = [row["id"] for row in await database.fetch(queries.LOCK_ACTIVE_ADMINS)]
    problem = rules.account_change_problem(
        change,
        acting_on_self=actor.id == target["id"],
        target_is_active_admin=target["id"] in admins,
        other_active_admins=len([a for a in admins if a != target["id"]]),
    )
    if problem:
        raise Conflict(problem)


async def account_id_for(username: str) -> UUID:
    """The account a username names (the command line names accounts by username)."""
    row = (
        await Account.select(Account.id)
        .where(Account.username == normalise_username(username))
        .first()
    )
    if row is None:
        raise NotFound(f"No account is called {normalise_username(username)!r}.")
    return UUID(str(row["id"]))


async def get_account_for_admin(account_id: UUID, actor: schemas.Principal) -> schemas.Account:
    """One account, as an admin reads it (audited)."""
    row = await Account.select(*_ACCOUNT_COLUMNS).where(Account.id == account_id).first()
    if row is None:
        raise NotFound("No such account.")
    await audit.record(actor, AuditAction.read, RecordType.account, account_id)
    return schemas.Account(**row)


async def set_active(account_id: UUID, active: bool, actor: schemas.Principal) -> schemas.Account:
    """Deactivate (a leaver: every token and browser session refused at once) or reactivate.

    Either way every earlier token and session stays dead: a reactivated person signs in again.
    """
    async with engine().transaction():
        await database.fetch(queries.LOCK_ACTIVE_ADMINS)  # before the account: one lock order
        target = await _locked_account(account_id)
        if not active:
            await _check_change("deactivate", target, actor)
        if target["active"] != active:
            await database.fetch(queries.SET_ACTIVE, account_id, active)
            await audit.record(
                actor, AuditAction.update, RecordType.account, account_id, {"active": active}
            )
    return await get_account(account_id)


async def change_role(
    account_id: UUID, change: schemas.AccountChange, actor: schemas.Principal
) -> schemas.Account:
    """A new role (and agency): tokens and sessions issued under the old one are refused."""
    if change.role == Role.referrer and not change.agency:
        raise InvalidInput(
            errors=[FieldError("required", "agency", "A referrer must belong to an agency.")]
        )
    async with engine().transaction():
        await database.fetch(queries.LOCK_ACTIVE_ADMINS)
        target = await _locked_account(account_id)
        if target["role"] != change.role.value:
            await _check_change("change_role", target, actor)
        agency_id = None
        if change.agency:
            agency_id, _ = await get_or_create_agency(change.agency, actor)
        await database.fetch(queries.SET_ROLE, account_id, change.role.value, agency_id)
        await audit.record(
            actor,
            AuditAction.update,
            RecordType.account,
            account_id,
            {"fields": ["role", "agency"], "role": change.role.value},
        )
    return await get_account(account_id)


async def reset_password(account_id: UUID, actor: schemas.Principal) -> schemas.PasswordReset:
    """A temporary password, shown once; its owner must choose a new one at the next sign-in.

    Every token and browser session of the account ends at once: a reset is
    what an admin does when a password may be known to someone else.
    """
    password = temporary_password()
    password_hash = await hash_in_pool(password)
    async with engine().transaction():
        await _locked_account(account_id)
        await database.fetch(queries.RESET_HASH, account_id, password_hash)
        await audit.record(
            actor, AuditAction.update, RecordType.account, account_id, {"fields": ["password"]}
        )
    return schemas.PasswordReset(account=await get_account(account_id), temporary_password=password)


async def lockout(account_id: UUID, now: datetime) -> schemas.Lockout:
    """Whether the account's username is delayed now, and after how many failures."""
    row = await Account.select(Account.username).where(Account.id == account_id).first()
    if row is None:
        raise NotFound("No such account.")
    found = (await database.fetch(queries.USERNAME_DELAY, row["username"], now))[0]
    delayed = found["delayed_until"]
    return schemas.Lockout(
        username=row["username"],
        delayed_until=delayed if delayed is not None and delayed > now else None,
        failures=found["failures"],
    )


async def unlock(
    account_id: UUID, actor: schemas.Principal, refusals: RecentRefusals | None = None
) -> schemas.Lockout:
    """Lift the username's sign-in delay: its failures are forgotten, from every address.

    Addresses that failed keep their own records (rule 1 of ``accounts.rules``):
    a guessing address stays delayed whatever name it tries. This worker's memory
    of refusals for the username goes too; another worker repeats one it gave
    until the ``Retry-After`` it gave ends.
    """
    async with engine().transaction():
        target = await _locked_account(account_id)
        await database.fetch(queries.UNLOCK_USERNAME, target["username"])
        await audit.record(
            actor, AuditAction.update, RecordType.account, account_id, {"fields": ["lockout"]}
        )
    if refusals is not None:
        refusals.forget_username(target["username"])
    return await lockout(account_id, datetime.now(UTC))


async def change_own_password(
    actor: schemas.Principal,
    current: str,
    new: str,
    address: str,
    settings: Settings,
    refusals: RecentRefusals,
    extra_problems: list[FieldError] | None = None,
) -> None:
    """Change the signed-in person's own password, after checking the one they have now.

    The current password is checked as a sign-in is (throttled per username and
    address, audited), so a session left open cannot be used to guess it. The
    new one follows the same length rule as every other password, and after a
    reset must differ from the temporary one. A reset's demand is then met.
    """
    assert actor.id is not None
    problems = (
        [] if current else [FieldError("required", "current", "Enter your current password.")]
    )
    problems += password_problems(new, "new")
    problems += extra_problems or []
    if not problems and new == current:
        problems.append(
            FieldError("same_password", "new", "Choose a password different from the current one.")
        )
    if problems:
        raise InvalidInput(errors=problems)
    try:
        await authenticate(actor.username, current, address, settings, refusals)
    except NotAuthenticated:
        wrong = FieldError("wrong_password", "current", "Your current password is not right.")
        raise InvalidInput(errors=[wrong]) from None
    password_hash = await hash_in_pool(new)
    async with engine().transaction():
        await database.fetch(queries.SET_OWN_HASH, actor.id, password_hash)
        await audit.record(
            actor, AuditAction.update, RecordType.account, actor.id, {"fields": ["password"]}
        )


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

    def address_refused_until(self, address: str, now: datetime) -> datetime | None:
        """When a refusal remembered for the address itself (rule 1) ends; None: none known.

        All the sign-in door can ask: it has not read the username.
        """
        until = self._until.get((address, None))
        if until is None:
            return None
        if until <= now:
            del self._until[(address, None)]
            return None
        self._tally[(address, None)] = self._tally.get((address, None), 0) + 1
        return until

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

    def forget_username(self, username: str) -> None:
        """An admin unlocked the username: its refusals are asked of the records again."""
        for key in [key for key in self._until if key[1] == username]:
            del self._until[key]

    def take_tally(self, username: str, address: str) -> tuple[int, int]:
        """Refusals repeated since the last look: (the address's, the username's)."""
        return self._tally.pop((address, None), 0), self._tally.pop(("", username), 0)


PACED_ADDRESSES = 10_000
"""Addresses one worker keeps a pace for at most; past that, new ones are not paced."""


def sign_in_pace(settings: Settings) -> rules.Pace:
    return rules.Pace(
        burst=settings.login_burst,
        interval=timedelta(minutes=1) / settings.login_attempts_per_minute,
    )


class AddressPace:
    """Each address's sign-in pace in this worker (``rules.paced``): memory only.

    Per worker, as ``RecentRefusals``: with N workers an address gets up to N
    times the pace, which still bounds it. Nothing is stored: a restart forgives
    every pace, which costs nothing the records do not still hold.
    """

    def __init__(self, pace: rules.Pace, most: int = PACED_ADDRESSES) -> None:
        self._pace = pace
        self._most = most
        self._full_at: dict[str, datetime] = {}

    def __len__(self) -> int:
        return len(self._full_at)

    def refused_until(self, address: str, now: datetime) -> datetime | None:
        """Count one request from ``address``; when it may come back if it is refused."""
        known = self._full_at.get(address)
        if known is None and len(self._full_at) >= self._most:
            # An address whose allowance is whole again owes nothing: forget it.
            self._full_at = {a: full for a, full in self._full_at.items() if full > now}
            if len(self._full_at) >= self._most:
                return None
        refused, full_at = rules.paced(known, now, self._pace)
        self._full_at[address] = full_at
        return refused


def refused_at_the_door(
    address: str, now: datetime, refusals: RecentRefusals, pace: AddressPace
) -> int | None:
    """Seconds to wait if a sign-in from ``address`` is refused before it is read; None: read it.

    The two refusals that need no username: a refusal remembered for the address
    itself (rule 1 of ``accounts.rules``), which ``authenticate`` would repeat
    for any username, and the address's pace (``rules.Pace``). Everything else
    is decided by ``authenticate`` once the username is known.
    """
    until = refusals.address_refused_until(address, now) or pace.refused_until(address, now)
    return None if until is None else rules.retry_after_seconds(until, now)


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
    checked = await verify_in_pool(
        stored_hash, password, after_failures=admission.address_has_failed
    )
    if not checked or row is None or not row["active"]:
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
