"""The first-run set-up link, browser sessions' accounts, and changing one's own password.

No web framework here: the pages in ``web.controllers`` call these.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from uuid import UUID

from programme.platform import database
from programme.platform.accounts import services as accounts
from programme.platform.accounts.passwords import password_problems
from programme.platform.accounts.schemas import AccountCreate, Principal
from programme.platform.database import engine
from programme.platform.errors import FieldError, InvalidInput, NotFound
from programme.platform.settings import Settings
from programme.platform.tables import Role
from programme.platform.web import queries

SETUP_LINK_LIFETIME = timedelta(hours=24)
"""How long the first-run link printed by ``inspire serve`` works."""

SETUP_ACTOR = Principal(id=None, username="first-run set-up", role="system")
"""Who the audit trail names for the first admin's creation."""

MAX_PASSWORD_LENGTH = 1024
"""As the API's schema: argon2 over a megabyte of 'password' is a denial of service."""


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def open_first_run(now: datetime) -> str | None:
    """A new one-time set-up token while no account exists; None once one does.

    Only its digest is stored; any earlier unused link ends, so the link last
    printed is the only one that works.
    """
    async with engine().transaction():
        await database.fetch(queries.LOCK_FIRST_RUN)
        if (await database.fetch(queries.ANY_ACCOUNT))[0]["found"]:
            return None
        await database.fetch(queries.END_SETUP_LINKS, now)
        token = secrets.token_urlsafe(32)
        await database.fetch(queries.NEW_SETUP_LINK, _digest(token), now + SETUP_LINK_LIFETIME)
    return token


LINK_DEAD = "This set-up link has expired or has been used. Sign in instead."


async def setup_link_works(token: str, now: datetime) -> bool:
    """Whether ``token`` would still make the first admin: no account yet, unused, unexpired."""
    if (await database.fetch(queries.ANY_ACCOUNT))[0]["found"]:
        return False
    return bool(await database.fetch(queries.USABLE_SETUP_LINK, _digest(token), now))


def _new_password_problems(password: str, again: str, field: str) -> list[FieldError]:
    problems = password_problems(password, field)
    if len(password) > MAX_PASSWORD_LENGTH:
        problems.append(
            FieldError("invalid", field, f"Use at most {MAX_PASSWORD_LENGTH} characters.")
        )
    if not problems and again != password:
        problems.append(FieldError("mismatch", f"{field}_again", "The two passwords differ."))
    return problems


async def first_admin(
    token: str, username: str, password: str, again: str, now: datetime
) -> Principal:
    """Create the first admin with the one-time link, which then never works again.

    Under the first-run lock, so two people opening the link at once make one
    admin: the second finds an account and the link dead.
    """
    data = AccountCreate(username=username, password=password, role=Role.admin)
    problems = [p for p in accounts.account_problems(data) if p.field != "password"]
    problems += _new_password_problems(password, again, "password")
    if problems:
        raise InvalidInput(errors=problems)
    async with engine().transaction():
        await database.fetch(queries.LOCK_FIRST_RUN)
        found = await database.fetch(queries.USABLE_SETUP_LINK, _digest(token), now)
        if not found or (await database.fetch(queries.ANY_ACCOUNT))[0]["found"]:
            raise NotFound(LINK_DEAD)
        account = await accounts.create_account(data, SETUP_ACTOR)
        await database.fetch(queries.USE_SETUP_LINK, found[0]["id"], now)
    principal = await accounts.principal_for(account.id)
    assert principal is not None
    return principal


def session_fingerprint(password_hash: str, generation: int, secret: str) -> str:
    """What a browser session keeps of the password and token generation it was opened under.

    A keyed digest of the hash and the generation, so the session store holds
    nothing a guesser could use; a new password gives a new fingerprint, ending
    every session opened under the old one, and so does what ends bearer tokens
    (a deactivation, a role change, an admin's reset: ``accounts.access``).
    """
    material = f"{generation}:{password_hash}".encode()
    return hmac.new(secret.encode(), material, hashlib.sha256).hexdigest()[:32]


async def session_principal(account_id: UUID, fingerprint: str, secret: str) -> Principal | None:
    """The person a browser session belongs to, or None if the account, its password or its
    token generation changed."""
    found = await accounts.principal_and_hash(account_id)
    if found is None:
        return None
    principal, password_hash = found
    expected = session_fingerprint(password_hash, principal.token_generation, secret)
    if not hmac.compare_digest(expected, fingerprint):
        return None
    return principal


async def current_fingerprint(account_id: UUID, secret: str) -> str | None:
    found = await accounts.principal_and_hash(account_id)
    if found is None:
        return None
    principal, password_hash = found
    return session_fingerprint(password_hash, principal.token_generation, secret)


async def change_password(
    actor: Principal,
    current: str,
    new: str,
    again: str,
    address: str,
    settings: Settings,
    refusals: accounts.RecentRefusals,
) -> None:
    """Change the signed-in person's own password (``accounts.services.change_own_password``),
    typed twice on the page."""
    extra = []
    if len(new) > MAX_PASSWORD_LENGTH:
        extra.append(FieldError("invalid", "new", f"Use at most {MAX_PASSWORD_LENGTH} characters."))
    if not extra and not password_problems(new, "new") and again != new:
        extra.append(FieldError("mismatch", "new_again", "The two passwords differ."))
    await accounts.change_own_password(
        actor, current, new, address, settings, refusals, extra_problems=extra
    )
