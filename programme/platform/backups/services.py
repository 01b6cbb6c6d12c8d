"""Backing up the whole database, and restoring a backup, with PostgreSQL's own tools.

``pg_dump`` takes one consistent snapshot; the file appears under its name
only once it is complete (written beside it, then renamed), readable by its
owner alone. A restore runs ``pg_restore`` into ``psql`` as one transaction
that first locks every table, checks again that it holds no records (unless
told to replace them) and drops the schema: it either replaces the database
whole or changes nothing. The migrations then bring a backup from an older
version forward.

The tools run as child processes with a time limit, never on the event loop,
and their messages reach the screen only through ``rules.tool_error``, which
keeps the values PostgreSQL quotes off it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib.metadata
import io
import os
import shutil
import tarfile
import tempfile
from collections.abc import AsyncIterator, Awaitable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import asyncpg
import msgspec

from programme.platform import database
from programme.platform.audit import services as audit
from programme.platform.audit.schemas import Actor
from programme.platform.backups import queries, rules
from programme.platform.errors import ApplicationError, Conflict, InvalidInput
from programme.platform.settings import (
    ENCRYPTION_KEY,
    KEPT_IN,
    PSEUDONYM_KEY,
    Settings,
    encryption_keys,
)
from programme.platform.tables import AuditAction, RecordType

T = TypeVar("T")

_MANIFEST_LIMIT = 1 << 20
_CHUNK = 1 << 20


@dataclass(frozen=True)
class BackupMade:
    path: Path
    size_bytes: int
    made_at: datetime
    keys_to_keep: list[str]
    """Where the keys the backup does not hold are: files in the data directory, or variables."""
    private: bool
    """Whether the file system kept the file readable by its owner alone (a USB stick may not)."""


@dataclass(frozen=True)
class Restored:
    made_at: datetime
    replaced_tables: list[str]
    """Tables that held records before, replaced as asked (``--replace``)."""
    migrations_applied: int
    """Migrations run after restoring: a backup from an older version came forward."""
    key_problems: list[str]
    """Key differences the restore was told to ignore; empty when the keys matched."""


def keys_to_keep(settings: Settings) -> list[str]:
    """Where each key the data depends on is: the file holding it, or the variable giving it."""
    given = {ENCRYPTION_KEY: settings.encryption_secret, PSEUDONYM_KEY: settings.pseudonym_secret}
    return [
        name if value else str(settings.data_dir / KEPT_IN[name]) for name, value in given.items()
    ]


async def backup(target: Path, settings: Settings, actor: Actor) -> BackupMade:
    """Write a backup of the whole database to ``target``, replacing any file there at once."""
    await asyncio.to_thread(_check_target, target)
    pg_dump = database.client_tool("pg_dump")
    # Read (or, on a brand-new data directory, make) the keys before dumping,
    # so the check values describe the keys the data is written with.
    checks = rules.key_checks(encryption_keys(settings.encryption_key()), settings.pseudonym_key())
    dsn, env = rules.tool_connection(await asyncio.to_thread(database.database_url))
    try:
        migrations = [row["migration"] for row in await database.fetch(queries.APPLIED_MIGRATIONS)]
    except asyncpg.UndefinedTableError:
        raise Conflict(
            "the database was never set up (no migrations): nothing to back up"
        ) from None
    server_version = (await database.fetch(queries.SERVER_VERSION))[0]["server_version"]
    made_at = datetime.now(UTC)

    work = Path(await asyncio.to_thread(tempfile.mkdtemp, ".inspire-backup", dir=target.parent))
    try:
        dump = work / rules.DUMP_NAME
        await _dump(pg_dump, dsn, dump, env, settings.backup_timeout_minutes)
        digest, size = await asyncio.to_thread(_digest, dump)
        manifest = rules.Manifest(
            format=rules.FORMAT,
            format_version=rules.FORMAT_VERSION,
            made_at=made_at,
            inspire_version=_inspire_version(),
            server_version=server_version,
            migrations=migrations,
            keys=checks,
            dump_sha256=digest,
            dump_bytes=size,
        )
        written = work / "backup.tar"
        await asyncio.to_thread(_write_backup, written, manifest, dump)
        total, private = await asyncio.to_thread(_put_in_place, written, target)
    finally:
        await asyncio.to_thread(shutil.rmtree, work, ignore_errors=True)

    await audit.record(
        actor,
        AuditAction.export,
        RecordType.database,
        detail={"backup": "whole database", "bytes": total, "made_at": made_at.isoformat()},
    )
    return BackupMade(target, total, made_at, keys_to_keep(settings), private)


async def restore(
    source: Path,
    settings: Settings,
    actor: Actor,
    *,
    replace: bool = False,
    ignore_key_check: bool = False,
) -> Restored:
    """Replace the database with the backup in ``source``, or change nothing and say why."""
    work = await asyncio.to_thread(_restore_folder, source, settings.data_dir)
    try:
        dump = work / rules.DUMP_NAME
        try:
            manifest = await asyncio.to_thread(_unpack, source, dump)
        except ValueError as exc:
            raise InvalidInput(f"{source} cannot be restored: {exc}") from None

        newer = rules.unknown_migrations(manifest.migrations, database.known_migrations())
        if newer:
            raise Conflict(
                f"the backup comes from a newer version of inspire ({len(newer)} migrations "
                f"this version does not have): upgrade inspire, then restore it"
            )
        problems = rules.key_problems(manifest.keys, *_keys_here(settings))
        if problems and not ignore_key_check:
            raise Conflict(
                f"refused: {'; '.join(problems)}. Put the keys kept with this backup in place "
                f"({', '.join(keys_to_keep(settings))}) and restore again; --ignore-key-check "
                f"restores anyway, and victims' details written under other keys stay unreadable"
            )

        pg_restore = database.client_tool("pg_restore")
        psql = database.client_tool("psql")
        dsn, env = rules.tool_connection(await asyncio.to_thread(database.database_url))
        others = (await database.fetch(queries.OTHER_CONNECTIONS))[0]["n"]
        if others:
            open_now = "another connection is" if others == 1 else f"{others} other connections are"
            raise Conflict(
                f"{open_now} open to the database (is inspire serve running?): "
                f"stop them, then restore"
            )
        holding = await _tables_with_records()
        if holding and not replace:
            named = ", ".join(holding[:4]) + (
                f" and {len(holding) - 4} more" if holding[4:] else ""
            )
            raise Conflict(
                f"the database holds records (in {named}): restoring would replace them all; "
                f"add --replace if that is what you want"
            )

        await _restore_dump(
            pg_restore, psql, dsn, dump, replace, env, settings.backup_timeout_minutes
        )
    finally:
        await asyncio.to_thread(shutil.rmtree, work, ignore_errors=True)

    await database.migrate()
    applied = len(database.known_migrations() - set(manifest.migrations))
    await audit.record(
        actor,
        AuditAction.restore,
        RecordType.database,
        detail={
            "backup_made_at": manifest.made_at.isoformat(),
            "replaced_tables": holding,
            "migrations_applied": applied,
            "key_check_ignored": bool(problems),
        },
    )
    return Restored(manifest.made_at, holding, applied, problems)


async def _tables_with_records() -> list[str]:
    tables = [row["table_name"] for row in await database.fetch(queries.PUBLIC_TABLES)]
    return [
        table for table in tables if (await database.fetch(queries.has_records(table)))[0]["found"]
    ]


def _keys_here(settings: Settings) -> tuple[list[str] | None, str | None]:
    """Check values of the keys in place here, without making a key that is not."""
    not_kept = settings.keys_not_kept()
    encryption = (
        None
        if ENCRYPTION_KEY in not_kept
        else [rules.key_check(k, "encryption") for k in encryption_keys(settings.encryption_key())]
    )
    pseudonym = (
        None
        if PSEUDONYM_KEY in not_kept
        else rules.key_check(settings.pseudonym_key(), "pseudonym")
    )
    return encryption, pseudonym


async def _dump(pg_dump: Path, dsn: str, dump: Path, env: dict[str, str], minutes: int) -> None:
    command: list[str | Path] = [
        pg_dump,
        "--format=custom",
        "--schema=public",
        f"--file={dump}",
        f"--dbname={dsn}",
    ]
    process = await _start(command, env)
    async with _killed_at_end([process]):
        (_, stderr) = await _within(
            minutes, "pg_dump", "nothing was written", process.communicate()
        )
    _check("pg_dump", process, stderr, "nothing was written")


async def _restore_dump(
    pg_restore: Path,
    psql: Path,
    dsn: str,
    dump: Path,
    replace: bool,
    env: dict[str, str],
    minutes: int,
) -> None:
    """Feed pg_restore's SQL to psql as one transaction that commits only on the whole of it.

    psql commits at the end of its input, and its input also ends when
    pg_restore fails halfway (a damaged dump, a full disk, a kill): that would
    commit a dropped schema and half the data. So psql's last command refuses
    to commit unless the input ended with ``RESTORE_COMPLETE``, which is
    written only after pg_restore has finished without error.
    """
    done = "nothing was changed"
    ends = dict(zip(("read", "write"), os.pipe(), strict=True))

    def close(end: str) -> None:
        fd = ends.pop(end, None)
        if fd is not None:
            os.close(fd)

    psql_command: list[str | Path] = [
        psql,
        "--no-psqlrc",
        "--quiet",
        "--single-transaction",
        "--set=ON_ERROR_STOP=1",
        f"--dbname={dsn}",
        "--command",
        queries.LOCK_EVERY_TABLE,
        *([] if replace else ["--command", queries.REFUSE_IF_RECORDS]),
        "--command",
        queries.DROP_SCHEMA,
        "--file=-",
        "--command",
        queries.COMMIT_ONLY_IF_COMPLETE,
    ]
    processes: list[asyncio.subprocess.Process] = []
    try:
        producer = await _start(
            [pg_restore, "--no-owner", "--no-privileges", "--file=-", dump],
            env,
            stdout=ends["write"],
        )
        processes.append(producer)
        consumer = await _start(psql_command, env, stdin=ends["read"])
        processes.append(consumer)
        close("read")

        async def produce() -> bytes:
            try:
                _, stderr = await producer.communicate()
                if producer.returncode == 0:
                    with contextlib.suppress(BrokenPipeError):  # psql stopped at its own error
                        await asyncio.to_thread(
                            os.write, ends["write"], queries.RESTORE_COMPLETE.encode()
                        )
                return stderr
            finally:
                close("write")  # psql's input ends here, with the mark or without it

        async def both() -> tuple[bytes, tuple[bytes, bytes]]:
            produced, consumed = await asyncio.gather(produce(), consumer.communicate())
            return produced, consumed

        async with _killed_at_end(processes):
            restore_errors, (_, psql_errors) = await _within(
                minutes, "pg_restore and psql", done, both()
            )
    finally:
        close("read")
        close("write")
    failures = [("psql", consumer, psql_errors), ("pg_restore", producer, restore_errors)]
    if b"inspire_restore_complete" in psql_errors:
        failures.reverse()  # psql refused to commit because pg_restore failed: that is the cause
    for name, process, stderr in failures:
        _check(name, process, stderr, done)


async def _start(
    command: Sequence[str | Path], env: dict[str, str], *, stdin: int = -1, stdout: int = -1
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *map(str, command),
        stdin=asyncio.subprocess.DEVNULL if stdin == -1 else stdin,
        stdout=asyncio.subprocess.DEVNULL if stdout == -1 else stdout,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **env, "PGCONNECT_TIMEOUT": "30"},
    )


async def _within(minutes: int, what: str, done: str, work: Awaitable[T]) -> T:
    try:
        return await asyncio.wait_for(work, timeout=minutes * 60)
    except TimeoutError:
        raise ApplicationError(
            f"{what} did not finish within {minutes} minutes "
            f"(INSPIRE_BACKUP_TIMEOUT_MINUTES): {done}"
        ) from None


@contextlib.asynccontextmanager
async def _killed_at_end(processes: list[asyncio.subprocess.Process]) -> AsyncIterator[None]:
    """No tool outlives its command: on a time-out, an interrupt or an error they are killed."""
    try:
        yield
    finally:
        for process in processes:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()


def _check(name: str, process: asyncio.subprocess.Process, stderr: bytes, done: str) -> None:
    if process.returncode == 0:
        return
    message = stderr.decode(errors="replace")
    if queries.RECORDS_FOUND in message:
        raise Conflict(f"records arrived in the database while restoring: {done}")
    raise ApplicationError(f"{name} failed ({rules.tool_error(message)}): {done}")


def _check_target(target: Path) -> None:
    if target.is_dir():
        raise InvalidInput(f"{target} is a folder: name the backup file to write")
    if not target.parent.is_dir():
        raise InvalidInput(f"{target.parent} does not exist: make the folder first")


def _restore_folder(source: Path, data_dir: Path) -> Path:
    """A private folder for the dump on its way in, once ``source`` is known to be a file.

    In the data directory rather than the system's temporary one, which may be
    too small for a whole database.
    """
    if not source.is_file():
        raise InvalidInput(f"{source}: no such file")
    data_dir.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=".inspire-restore-", dir=data_dir))


def _digest(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _write_backup(path: Path, manifest: rules.Manifest, dump: Path) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        with tarfile.open(fileobj=handle, mode="w", format=tarfile.PAX_FORMAT) as tar:
            described = msgspec.json.format(msgspec.json.encode(manifest), indent=2)
            entry = tarfile.TarInfo(rules.MANIFEST_NAME)
            entry.size, entry.mode = len(described), 0o600
            entry.mtime = int(manifest.made_at.timestamp())
            tar.addfile(entry, io.BytesIO(described))
            entry = tarfile.TarInfo(rules.DUMP_NAME)
            entry.size, entry.mode = manifest.dump_bytes, 0o600
            entry.mtime = int(manifest.made_at.timestamp())
            with dump.open("rb") as contents:
                tar.addfile(entry, contents)
        handle.flush()
        os.fsync(handle.fileno())


def _put_in_place(written: Path, target: Path) -> tuple[int, bool]:
    """Rename the finished file over ``target``; its size, and whether it is owner-only."""
    os.replace(written, target)
    # The rename itself must reach the disk, or a crash could leave the old file.
    folder = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
    placed = target.stat()
    return placed.st_size, not placed.st_mode & 0o077


def _unpack(source: Path, dump: Path) -> rules.Manifest:
    """Read the manifest and copy the dump out, checking it is what was written."""
    try:
        with tarfile.open(source, mode="r:") as tar:
            manifest = rules.read_manifest(_member(tar, rules.MANIFEST_NAME, _MANIFEST_LIMIT))
            stream = tar.extractfile(_entry(tar, rules.DUMP_NAME))
            if stream is None:
                raise ValueError(f"its {rules.DUMP_NAME} is not a file")
            digest = hashlib.sha256()
            size = 0
            fd = os.open(dump, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with stream, os.fdopen(fd, "wb") as copy:
                while chunk := stream.read(_CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
                    copy.write(chunk)
    except (tarfile.TarError, EOFError):
        raise ValueError("it is not an inspire backup, or it is damaged or cut short") from None
    if size != manifest.dump_bytes or digest.hexdigest() != manifest.dump_sha256:
        raise ValueError("it is damaged: its database dump is not the one it was written with")
    return manifest


def _entry(tar: tarfile.TarFile, name: str) -> tarfile.TarInfo:
    try:
        return tar.getmember(name)
    except KeyError:
        raise ValueError(f"it is not an inspire backup (it holds no {name})") from None


def _member(tar: tarfile.TarFile, name: str, limit: int) -> bytes:
    entry = _entry(tar, name)
    stream = tar.extractfile(entry)
    if stream is None or entry.size > limit:
        raise ValueError(f"it is not an inspire backup (its {name} is not one)")
    with stream:
        return stream.read()


def _inspire_version() -> str:
    try:
        return importlib.metadata.version("inspire-tracker")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
