"""Tables of the application core: agencies, accounts, login throttling, audit."""

from __future__ import annotations

from enum import StrEnum

from piccolo.columns import (
    JSONB,
    UUID,
    BigSerial,
    Boolean,
    ForeignKey,
    Integer,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class Role(StrEnum):
    """What an account may do; see the domain brief's table of users."""

    admin = "admin"
    referrer = "referrer"
    facilitator = "facilitator"
    victim_worker = "victim_worker"
    monitor = "monitor"


class AuditAction(StrEnum):
    read = "read"
    create = "create"
    update = "update"
    delete = "delete"
    export = "export"
    login = "login"
    logout = "logout"
    """A bearer token signed out of (``POST /auth/logout``): revoked until it expires."""
    restore = "restore"
    """The whole database replaced from a backup (``inspire restore``)."""


class RecordType(StrEnum):
    """What kind of record an audit row is about; admins filter the trail by it."""

    account = "account"
    agency = "agency"
    analysis = "analysis"
    attendance = "attendance"
    audit_trail = "audit_trail"
    """The audit trail itself: its downloads."""
    database = "database"
    """The whole database: backups and restores."""
    exit_review = "exit_review"
    group = "group"
    locked_quarter = "locked_quarter"
    """A reported quarter: locked, and each override of the lock with its reason."""
    programme = "programme"
    referral = "referral"
    reoffence_import = "reoffence_import"
    report = "report"
    returned_referral = "returned_referral"
    victim = "victim"
    victim_feedback = "victim_feedback"


class Agency(Table):
    """An organisation that refers people: a police force, a social care team, ..."""

    id = UUID(primary_key=True)
    name = Varchar(length=200, unique=True, help_text="The agency's name as referrers know it.")
    created_at = Timestamptz(default=TimestamptzNow())


class Account(Table):
    """A person who signs in: referrer, facilitator, victim worker, monitor or admin."""

    id = UUID(primary_key=True)
    username = Varchar(length=100, unique=True, help_text="Sign-in name, unique.")
    password_hash = Text(secret=True, help_text="argon2id hash; never the password.")
    role = Varchar(length=20, choices=Role, help_text="Decides every route it may call.")
    agency = ForeignKey(
        references=Agency,
        null=True,
        on_delete=OnDelete.restrict,
        help_text="The referrer's agency; referrers see only their agency's referrals.",
    )
    active = Boolean(default=True, help_text="Inactive accounts cannot sign in.")
    created_at = Timestamptz(default=TimestamptzNow())
    must_change_password = Boolean(
        default=False,
        help_text="Set by an admin's reset: nothing but choosing a new password until then.",
    )
    token_generation = Integer(
        default=0,
        help_text=(
            "Counts deactivations, role changes and resets; tokens and browser sessions"
            " of an earlier generation are refused."
        ),
    )


class RevokedToken(Table):
    """A bearer token signed out of before it expired: refused until then, then deleted."""

    jti = Varchar(length=64, primary_key=True, help_text="The token's unique id; nothing else.")
    expires_at = Timestamptz(index=True, help_text="When the token would have expired anyway.")


class ThrottleScope(StrEnum):
    """What a sign-in throttle record counts (see ``accounts.rules``)."""

    address = "address"
    username_at_address = "username_at_address"
    username = "username"


class LoginThrottle(Table):
    """Failed sign-ins per client address, per username, and per username at an address.

    Kept for usernames that do not exist too, so a delayed answer does not
    reveal whether the account exists. One row per (scope, username, address),
    unique (an index made in the migration); ``username`` is empty for an
    address's row and ``address`` for a username's. Rows past ``forget_at``
    count for nothing and are deleted as sign-ins fail.
    """

    id = BigSerial(primary_key=True)
    scope = Varchar(length=20, choices=ThrottleScope)
    username = Text(default="", help_text="As signed in with, normalised; may name no account.")
    address = Text(default="", help_text="The client address, an IPv6 client's /64.")
    failures = Integer(default=0, help_text="Checked attempts in a row that failed.")
    refused = Integer(default=0, help_text="Attempts refused while delayed.")
    last_failure_at = Timestamptz(null=True, default=None)
    delayed_until = Timestamptz(
        null=True, default=None, help_text="No password is checked for it before then."
    )
    forget_at = Timestamptz(
        index=True, help_text="From then on the row counts for nothing and may be deleted."
    )


class AuditEvent(Table):
    """Append-only record of who read or changed which record, and when.

    A database trigger refuses UPDATE, DELETE and TRUNCATE on this table, so
    not even the application can rewrite history.
    """

    id = BigSerial(primary_key=True)
    occurred_at = Timestamptz(default=TimestamptzNow())
    account_id = UUID(null=True, default=None, help_text="Who; null for the system itself.")
    username = Varchar(length=100, help_text="Who, as they signed in (or 'system').")
    role = Varchar(length=20, help_text="The role they acted in.")
    action = Varchar(length=10, choices=AuditAction)
    record_type = Varchar(length=50, help_text="What kind of record, e.g. 'referral'.")
    record_id = Varchar(length=64, null=True, default=None, index=True)
    detail = JSONB(default={}, help_text="Which fields or filters; never personal data.")


class SetupToken(Table):
    """The one-time link that lets the first admin choose a name and password.

    ``inspire serve`` makes one while no account exists and prints it on the
    console only; only its digest is kept, so a copy of the database cannot be
    used to open it. It works once, until ``expires_at``, and never once any
    account exists.
    """

    id = BigSerial(primary_key=True)
    token_digest = Varchar(length=64, unique=True, help_text="SHA-256 of the token, in hex.")
    created_at = Timestamptz(default=TimestamptzNow())
    expires_at = Timestamptz(help_text="The link is dead from then on.")
    used_at = Timestamptz(
        null=True, default=None, help_text="When the first admin was made with it."
    )
