"""What a backup file holds, and whether it may be restored here.

A backup is an uncompressed tar file of two members: ``inspire-backup.json``
(the manifest below) and ``database.dump``, PostgreSQL's own custom-format dump
of the ``public`` schema (already compressed), so ``tar -xf`` and
``pg_restore`` can read it without this program.

It holds no key. Anyone holding a backup and the encryption key can read every
victim's contact details, so the two are kept apart, as the database and the
keys are. Instead it holds a check value of each key the data was written with
(HKDF under a label of its own, from which the key cannot be worked back), so
a restore can tell before it touches anything whether the keys in place here
can read what it would bring back.
"""

from __future__ import annotations

import re
from datetime import datetime
from urllib.parse import unquote, urlsplit, urlunsplit

import msgspec

from programme.platform.crypto import derive_key

FORMAT = "inspire-backup"
FORMAT_VERSION = 1
MANIFEST_NAME = "inspire-backup.json"
DUMP_NAME = "database.dump"

_KEY_CHECK_SALT = b"inspire-backup-key-check"


class KeyChecks(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Check values of the keys the backed-up data depends on."""

    encryption: list[str]
    """One per key in ``INSPIRE_ENCRYPTION_KEY``, newest first: any may have encrypted a value."""
    pseudonym: str


class Manifest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    format: str
    format_version: int
    made_at: datetime
    inspire_version: str
    server_version: str
    migrations: list[str]
    """Migrations applied to the backed-up database, as ``app:id``."""
    keys: KeyChecks
    dump_sha256: str
    dump_bytes: int


def key_check(secret: str, purpose: str) -> str:
    return derive_key(secret, _KEY_CHECK_SALT, purpose.encode()).hex()


def key_checks(encryption_secrets: list[str], pseudonym_secret: str) -> KeyChecks:
    return KeyChecks(
        encryption=[key_check(key, "encryption") for key in encryption_secrets],
        pseudonym=key_check(pseudonym_secret, "pseudonym"),
    )


def read_manifest(raw: bytes) -> Manifest:
    """The manifest of a backup; ``ValueError`` saying why when it is not one we can restore."""
    try:
        manifest = msgspec.json.decode(raw, type=Manifest)
    except msgspec.MsgspecError:
        raise ValueError("its description is unreadable") from None
    if manifest.format != FORMAT:
        raise ValueError("it is not an inspire backup")
    if manifest.format_version > FORMAT_VERSION:
        raise ValueError(
            f"it was written by a newer version of inspire (backup format "
            f"{manifest.format_version}): upgrade inspire to restore it"
        )
    return manifest


def key_problems(
    backup: KeyChecks, encryption_here: list[str] | None, pseudonym_here: str | None
) -> list[str]:
    """Why the keys in place here cannot serve the backed-up data (``None``: no key here).

    Every encryption key the backup names must be here (more may be, after a
    rotation): any of them may have encrypted a victim's details. The
    pseudonym key must be the same one, or every pseudonym, import fingerprint
    and generated reference would change.
    """
    problems = []
    if encryption_here is None:
        problems.append("there is no encryption key here")
    elif not set(backup.encryption) <= set(encryption_here):
        problems.append("the encryption key here is not the one the backup's data was written with")
    if pseudonym_here is None:
        problems.append("there is no pseudonym key here")
    elif pseudonym_here != backup.pseudonym:
        problems.append("the pseudonym key here is not the one the backup's data was written with")
    return problems


def unknown_migrations(backup: list[str], known: set[str]) -> list[str]:
    """Migrations in the backup that this version lacks: it comes from a newer version.

    Older backups are fine (migrations bring them forward); a newer one would
    leave tables this code does not understand.
    """
    return sorted(set(backup) - known)


def tool_connection(url: str) -> tuple[str, dict[str, str]]:
    """The connection string for PostgreSQL's tools, and the environment carrying its password.

    A password on a command line can be read by any user of the machine
    (``ps``); the environment only by the same user.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql") or not parts.password:
        return url, {}
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    netloc = f"{user}@{hostport}" if user else hostport
    return urlunsplit(parts._replace(netloc=netloc)), {"PGPASSWORD": unquote(parts.password)}


_QUOTED = re.compile(r"\"[^\"]*\"|'[^']*'")
_MARKERS = ("ERROR:", "FATAL:", "error:")


def tool_error(stderr: str) -> str:
    """The first error a PostgreSQL tool reported, without any value it quotes.

    PostgreSQL quotes the offending value in its messages (``invalid input
    syntax for type date: "..."``) and its DETAIL and CONTEXT lines can show a
    whole row: a failed restore must not put a victim's name on a screen.
    """
    lines = stderr.splitlines()
    for number, line in enumerate(lines):
        marker = next((m for m in _MARKERS if m in line), None)
        if marker is None:
            continue
        message = line.split(marker, 1)[1].strip()
        if "version mismatch" in message:
            # The client's own detail line says which versions; it quotes no data.
            message += "".join(
                f"; {d.split('detail:', 1)[1].strip()}"
                for d in lines[number + 1 : number + 2]
                if "detail:" in d
            )
        return _QUOTED.sub('"..."', message)[:300]
    return "it gave no reason"
