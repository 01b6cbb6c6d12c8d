"""Settings read from the environment once per process.

Every knob the service has lives here, so an operator can see in one place what
the environment may change. Values are parsed when first asked for and cached;
tests reset the cache with ``get_settings.cache_clear()``.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import platformdirs


class ConfigurationError(Exception):
    """The environment does not describe a service that can safely start."""


COMMISSIONED_AREAS = ("Barnsley", "Doncaster", "Rotherham", "Sheffield")

SIGNING_KEY = "INSPIRE_SECRET_KEY"
ENCRYPTION_KEY = "INSPIRE_ENCRYPTION_KEY"
PSEUDONYM_KEY = "INSPIRE_PSEUDONYM_KEY"
MIN_KEY_LENGTH = 16
KEPT_IN = {
    SIGNING_KEY: "secret_key",
    ENCRYPTION_KEY: "encryption_key",
    PSEUDONYM_KEY: "pseudonym_key",
}
"""The file in the data directory that holds each key the environment does not give."""
EMBEDDED_DATABASE_URI = "INSPIRE_EMBEDDED_DATABASE_URI"

MAX_HASH_WORKERS = 64
"""Each argon2 hash holds 64 MiB while it runs: more threads than this is a typo."""

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Settings:
    database_url: str | None
    """A real PostgreSQL server; when absent the embedded server is used."""
    data_dir: Path
    """Where the embedded database, generated keys and exports live."""
    secret_key: str | None
    """Signs access tokens, and nothing else, so it can be changed after a leak."""
    encryption_secret: str | None = None
    """``INSPIRE_ENCRYPTION_KEY`` as given: encrypts victims' details and notes."""
    pseudonym_secret: str | None = None
    """``INSPIRE_PSEUDONYM_KEY`` as given: keys every digest that must stay stable
    for the life of the data (monitors' pseudonyms, import fingerprints, generated
    references)."""
    token_ttl_minutes: int = 60
    login_max_failures: int = 5
    """Failed sign-ins in a row for one username before its sign-ins are delayed."""
    login_max_failures_per_address: int = 20
    """Failed sign-ins in a row from one client address, whatever the usernames,
    before its sign-ins are delayed. Higher than the per-username limit because
    a whole office can share one address."""
    login_delay_seconds: int = 30
    """The first delay; each further failure doubles it."""
    login_lockout_minutes: int = 15
    """The longest delay, and how long failures are remembered after the last
    one (or after the end of its delay)."""
    login_burst: int = 10
    """Sign-in requests one client address may send at once, right or wrong,
    before the pace below holds it (429 before the request is read)."""
    login_attempts_per_minute: int = 60
    """After the burst, sign-in requests per minute from one client address."""
    password_hash_workers: int = 1
    """Threads that hash and verify passwords (argon2 takes 64 MiB and most of a
    core each); sign-ins beyond this wait their turn, off the event loop."""
    trusted_proxies: tuple[Network, ...] = ()
    """Reverse proxies whose ``X-Forwarded-For`` names the client; empty: none."""
    commissioned_areas: tuple[str, ...] = field(default=COMMISSIONED_AREAS)
    pool_max_size: int = 10
    suppress_below: int = 5
    """Published counts from 1 to this minus one are shown as '<N'."""
    backdate_days: int = 30
    """How far back (in days before today) a referral submitted over the API may be
    received, and a lifecycle event over the API may be dated. Older records come in
    through the import, which says how many rows were older than this."""
    backup_timeout_minutes: int = 60
    """How long ``inspire backup`` and ``inspire restore`` let PostgreSQL's tools run."""
    first_contact_working_days: int = 5
    """A new referral not contacted within this many working days (Monday to Friday) is
    highlighted on the facilitators' caseload. ``INSPIRE_FIRST_CONTACT_WORKING_DAYS``."""
    secure_cookies: bool = False
    """Mark the web pages' cookies Secure (sent over HTTPS only): set when served over HTTPS."""
    session_idle_seconds: int = 30 * 60
    """A browser session ends after this long without a request.

    ``INSPIRE_SESSION_IDLE_MINUTES`` in the environment; seconds here, so a test can be quick."""
    embedded_database_uri: str | None = None
    """Set by ``inspire serve`` for its worker processes: the embedded PostgreSQL
    the parent started, which the workers use without starting or stopping it."""

    @property
    def uses_embedded_database(self) -> bool:
        return self.database_url is None

    def token_secret(self) -> str:
        """The token signing key, generating and keeping one for the embedded setup."""
        return self._key(SIGNING_KEY, self.secret_key)

    def encryption_key(self) -> str:
        """The key (or comma-separated keys, newest first) for encrypted columns."""
        return self._key(ENCRYPTION_KEY, self.encryption_secret)

    def pseudonym_key(self) -> str:
        """The secret each purpose's digest key is derived from (see ``crypto.purpose_key``)."""
        key = self._key(PSEUDONYM_KEY, self.pseudonym_secret)
        if len(key) < MIN_KEY_LENGTH:
            raise _too_short(PSEUDONYM_KEY)
        return key

    def require_keys(self) -> None:
        """Refuse to start without every key, naming all the missing ones at once.

        Each key is otherwise read when first needed, so a missing one would let
        the server start and then fail request by request.
        """
        missing = [name for name, value in self._given_keys().items() if not value]
        if missing and not self.uses_embedded_database:
            raise ConfigurationError(_must_be_set(missing))
        self.token_secret()
        encryption_keys(self.encryption_key())
        self.pseudonym_key()

    def keys_not_kept(self) -> list[str]:
        """The keys neither given nor kept in the data directory: first use would make new ones.

        A restore asks this first, so that a backup is never restored under
        freshly generated keys that cannot read what the old ones wrote.
        """
        return [
            name
            for name, value in self._given_keys().items()
            if not value
            and not (self.uses_embedded_database and (self.data_dir / KEPT_IN[name]).exists())
        ]

    def _given_keys(self) -> dict[str, str | None]:
        return {
            SIGNING_KEY: self.secret_key,
            ENCRYPTION_KEY: self.encryption_secret,
            PSEUDONYM_KEY: self.pseudonym_secret,
        }

    def _key(self, name: str, given: str | None) -> str:
        if given:
            return given
        if not self.uses_embedded_database:
            raise ConfigurationError(_must_be_set([name]))
        return _kept_secret(self.data_dir / KEPT_IN[name])


def encryption_keys(value: str) -> list[str]:
    """The comma-separated keys in ``INSPIRE_ENCRYPTION_KEY``, newest first.

    Older keys stay listed so values they encrypted can still be read.
    """
    keys = [part.strip() for part in value.split(",") if part.strip()]
    if not keys or any(len(key) < MIN_KEY_LENGTH for key in keys):
        raise _too_short(ENCRYPTION_KEY)
    return keys


def _too_short(name: str) -> ConfigurationError:
    # People type these; a short one could be guessed from what it protects.
    return ConfigurationError(f"{name} must be at least {MIN_KEY_LENGTH} characters")


def _must_be_set(names: list[str]) -> str:
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f"{listed} must be set when DATABASE_URL points at a real server"


@lru_cache(maxsize=16)
def _kept_secret(path: Path) -> str:
    """Read a key from ``path``, creating it (owner-only) the first time.

    Read once per process, like the environment's keys: every page asks for the signing
    key, and reading a file on each request would be a disk read on the event loop.
    """
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return value


def _int(name: str, default: int, minimum: int = 1, maximum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a whole number, not {raw!r}") from None
    if value < minimum:
        raise ConfigurationError(f"{name} must be at least {minimum}")
    if maximum is not None and value > maximum:
        raise ConfigurationError(f"{name} must be at most {maximum}")
    return value


def _default_hash_workers() -> int:
    # Half the cores: the event loop and PostgreSQL need the rest during a sign-in flood.
    return max(1, (os.cpu_count() or 2) // 2)


def _networks(name: str) -> tuple[Network, ...]:
    """A comma-separated list of addresses and CIDR blocks, e.g. ``10.0.0.5,172.16.0.0/12``."""
    raw = os.environ.get(name) or ""
    networks = []
    bad = []
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            bad.append(part)
    if bad:
        raise ConfigurationError(
            f"{name} must list IP addresses or CIDR blocks; not: {', '.join(map(repr, bad))}"
        )
    return tuple(networks)


def _login_delays() -> tuple[int, int]:
    """The first delay (seconds) and the longest (minutes), the first within the longest."""
    first = _int("INSPIRE_LOGIN_DELAY_SECONDS", 30)
    longest = _int("INSPIRE_LOGIN_LOCKOUT_MINUTES", 15)
    if first > longest * 60:
        raise ConfigurationError(
            "INSPIRE_LOGIN_DELAY_SECONDS must not exceed INSPIRE_LOGIN_LOCKOUT_MINUTES in seconds"
        )
    return first, longest


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _flag(name: str, default: bool) -> bool:
    raw = (os.environ.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ConfigurationError(f"{name} must be true or false, not {raw!r}")


def _areas() -> tuple[str, ...]:
    raw = os.environ.get("INSPIRE_COMMISSIONED_AREAS")
    if not raw:
        return COMMISSIONED_AREAS
    areas = tuple(part.strip() for part in raw.split(",") if part.strip())
    if not areas:
        raise ConfigurationError("INSPIRE_COMMISSIONED_AREAS names no area")
    return areas


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    data_dir = os.environ.get("INSPIRE_DATA_DIR") or platformdirs.user_data_dir("inspire")
    first_delay, longest_delay = _login_delays()
    return Settings(
        database_url=os.environ.get("DATABASE_URL") or None,
        data_dir=Path(data_dir).expanduser().resolve(),
        secret_key=os.environ.get(SIGNING_KEY) or None,
        encryption_secret=os.environ.get(ENCRYPTION_KEY) or None,
        pseudonym_secret=os.environ.get(PSEUDONYM_KEY) or None,
        token_ttl_minutes=_int("INSPIRE_TOKEN_TTL_MINUTES", 60),
        login_max_failures=_int("INSPIRE_LOGIN_MAX_FAILURES", 5),
        login_max_failures_per_address=_int("INSPIRE_LOGIN_MAX_FAILURES_PER_ADDRESS", 20),
        login_delay_seconds=first_delay,
        login_lockout_minutes=longest_delay,
        login_burst=_int("INSPIRE_LOGIN_BURST", 10),
        login_attempts_per_minute=_int("INSPIRE_LOGIN_ATTEMPTS_PER_MINUTE", 60),
        password_hash_workers=_int(
            "INSPIRE_PASSWORD_HASH_WORKERS", _default_hash_workers(), maximum=MAX_HASH_WORKERS
        ),
        trusted_proxies=_networks("INSPIRE_TRUSTED_PROXIES"),
        commissioned_areas=_areas(),
        pool_max_size=_int("INSPIRE_DB_POOL_SIZE", 10),
        suppress_below=_int("INSPIRE_SUPPRESS_BELOW", 5),
        backup_timeout_minutes=_int("INSPIRE_BACKUP_TIMEOUT_MINUTES", 60),
        backdate_days=_int("INSPIRE_BACKDATE_DAYS", 30, minimum=0, maximum=36500),
        first_contact_working_days=_int("INSPIRE_FIRST_CONTACT_WORKING_DAYS", 5, maximum=365),
        secure_cookies=_flag("INSPIRE_SECURE_COOKIES", False),
        session_idle_seconds=_int("INSPIRE_SESSION_IDLE_MINUTES", 30, maximum=24 * 60) * 60,
        embedded_database_uri=os.environ.get(EMBEDDED_DATABASE_URI) or None,
    )
