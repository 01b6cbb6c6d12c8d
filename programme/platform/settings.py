"""Settings read from the environment once per process.

Every knob the service has lives here, so an operator can see in one place what
the environment may change. Values are parsed when first asked for and cached;
tests reset the cache with ``get_settings.cache_clear()``.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import platformdirs


class ConfigurationError(Exception):
    """The environment does not describe a service that can safely start."""


COMMISSIONED_AREAS = ("Barnsley", "Doncaster", "Rotherham", "Sheffield")


@dataclass(frozen=True)
class Settings:
    database_url: str | None
    """A real PostgreSQL server; when absent the embedded server is used."""
    data_dir: Path
    """Where the embedded database, generated keys and exports live."""
    secret_key: str | None
    """Signs access tokens. Required with ``DATABASE_URL``; generated otherwise."""
    token_ttl_minutes: int = 60
    login_max_failures: int = 5
    """Failed logins for one username before it is locked out."""
    login_lockout_minutes: int = 15
    commissioned_areas: tuple[str, ...] = field(default=COMMISSIONED_AREAS)
    pool_max_size: int = 10
    suppress_below: int = 5
    """Published counts from 1 to this minus one are shown as '<N'."""

    @property
    def uses_embedded_database(self) -> bool:
        return self.database_url is None

    def token_secret(self) -> str:
        """The token signing key, generating and keeping one for the embedded setup."""
        if self.secret_key:
            return self.secret_key
        if not self.uses_embedded_database:
            raise ConfigurationError(
                "INSPIRE_SECRET_KEY must be set when DATABASE_URL points at a real server"
            )
        return _kept_secret(self.data_dir / "secret_key")

    def encryption_key(self) -> str:
        """The key for encrypted columns; same rules as the signing key."""
        env = os.environ.get("INSPIRE_ENCRYPTION_KEY")
        if env:
            return env
        if not self.uses_embedded_database:
            raise ConfigurationError(
                "INSPIRE_ENCRYPTION_KEY must be set when DATABASE_URL points at a real server"
            )
        return _kept_secret(self.data_dir / "encryption_key")


def _kept_secret(path: Path) -> str:
    """Read a key from ``path``, creating it (owner-only) the first time."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return value


def _int(name: str, default: int, minimum: int = 1) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a whole number, not {raw!r}") from None
    if value < minimum:
        raise ConfigurationError(f"{name} must be at least {minimum}")
    return value


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
    return Settings(
        database_url=os.environ.get("DATABASE_URL") or None,
        data_dir=Path(data_dir).expanduser().resolve(),
        secret_key=os.environ.get("INSPIRE_SECRET_KEY") or None,
        token_ttl_minutes=_int("INSPIRE_TOKEN_TTL_MINUTES", 60),
        login_max_failures=_int("INSPIRE_LOGIN_MAX_FAILURES", 5),
        login_lockout_minutes=_int("INSPIRE_LOGIN_LOCKOUT_MINUTES", 15),
        commissioned_areas=_areas(),
        pool_max_size=_int("INSPIRE_DB_POOL_SIZE", 10),
        suppress_below=_int("INSPIRE_SUPPRESS_BELOW", 5),
    )
