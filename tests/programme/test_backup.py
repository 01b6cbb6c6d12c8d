"""``inspire backup`` and ``inspire restore``: a backup restores, whole or not at all.

Every command runs as a user runs it, in its own process, on data directories
of the test's own (never the user's, nor the suite's database).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from programme.platform import database
from programme.platform.backups import rules
from tests.builders import INSPIRE, PASSWORD
from tests.builders import inspire as run_inspire

KEYS = ("INSPIRE_SECRET_KEY", "INSPIRE_ENCRYPTION_KEY", "INSPIRE_PSEUDONYM_KEY")
KEY_FILES = ("encryption_key", "pseudonym_key")
"""What the backup says to keep apart from it, and all a restore needs besides."""
FIRST, LAST = "Q1 2022-23", "Q2 2026-27"
REPO = Path(__file__).resolve().parents[2]


def env_for(data_dir: Path, **extra: str) -> dict[str, str]:
    """The embedded database in ``data_dir``, its keys from the files there (as by default)."""
    env = {k: v for k, v in os.environ.items() if k not in (*KEYS, "DATABASE_URL")}
    env["INSPIRE_DATA_DIR"] = str(data_dir)
    env.update(extra)
    return env


def inspire(data_dir: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return run_inspire(*args, stdin=stdin, env=env_for(data_dir))


def one_line_refusal(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result.stderr


QUERY = """
import asyncio, json, sys
from programme.platform import database
rows = asyncio.run(database.fetch(sys.argv[1]))
print(json.dumps([dict(row) for row in rows], default=str))
"""


def query(data_dir: Path, sql: str) -> list[dict[str, Any]]:
    """Rows from the database in ``data_dir``, asked in a process of its own."""
    result = subprocess.run(
        [sys.executable, "-c", QUERY, sql],
        env=env_for(data_dir),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


VICTIMS = """
import asyncio, hashlib, json
from outcomes import services
from outcomes.tables import Victim
from programme.platform.accounts.schemas import Principal

async def main():
    worker = Principal(id=None, username="backup-test", role="victim_worker")
    digest, first = hashlib.sha256(), None
    ids = [row["id"] for row in await Victim.select(Victim.id).order_by(Victim.id)]
    for victim_id in ids:
        victim = await services.get_victim(victim_id, worker, audited=False)
        digest.update(f"{victim.id}|{victim.first_name}|{victim.last_name}|{victim.phone}".encode())
        first = first or {"id": str(victim.id), "first_name": victim.first_name}
    print(json.dumps({"count": len(ids), "digest": digest.hexdigest(), "first": first}))

asyncio.run(main())
"""


def victims(data_dir: Path) -> dict[str, Any]:
    """Every victim's details as the victims' service decrypts them, digested."""
    result = subprocess.run(
        [sys.executable, "-c", VICTIMS],
        env=env_for(data_dir),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def reports(data_dir: Path) -> dict[str, Any]:
    """The quarterly and referral-quality reports and the reoffending analysis, as JSON."""
    asked = {
        "quarterly": ["report", "quarterly", "--from", FIRST, "--to", LAST, "--format", "json"],
        "quality": [
            "report",
            "referral-quality",
            "--from",
            FIRST,
            "--to",
            LAST,
            "--format",
            "json",
        ],
        "reoffending": [
            "analyse",
            "reoffending",
            "--group-by",
            "engaged",
            "--covariates",
            "age_at_referral,risk_level",
            "--as-of",
            "2026-09-30",
            "--format",
            "json",
        ],
    }
    answers = {}
    for name, args in asked.items():
        result = inspire(data_dir, *args)
        assert result.returncode == 0, result.stderr
        answers[name] = json.loads(result.stdout)
    return answers


def assert_same_figures(got: Any, expected: Any, where: str = "") -> None:
    """Equal, floating-point numbers to twelve significant figures."""
    if isinstance(expected, float) and isinstance(got, float):
        assert math.isclose(got, expected, rel_tol=1e-12, abs_tol=1e-12), where
    elif isinstance(expected, dict) and isinstance(got, dict):
        assert got.keys() == expected.keys(), where
        for key in expected:
            assert_same_figures(got[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, list) and isinstance(got, list):
        assert len(got) == len(expected), where
        for number, (item, wanted) in enumerate(zip(got, expected, strict=True)):
            assert_same_figures(item, wanted, f"{where}[{number}]")
    else:
        assert got == expected, where


def restored_fingerprint(data_dir: Path) -> list[dict[str, Any]]:
    """Enough of a database to tell whether a restore changed it."""
    return query(
        data_dir,
        "SELECT (SELECT count(*) FROM referral) AS referrals,"
        " (SELECT count(*) FROM victim) AS victims,"
        " (SELECT count(*) FROM attendance) AS registers,"
        " (SELECT max(received_on) FROM referral) AS latest",
    )


def copy_keys(source: Path, target: Path) -> None:
    for name in KEY_FILES:
        shutil.copy2(source / name, target / name)


@pytest.fixture(scope="module")
def new_data_dir() -> Iterator[Callable[[], Path]]:
    made: list[Path] = []

    def make() -> Path:
        # Short: the embedded server's Unix socket lives in it.
        made.append(Path(tempfile.mkdtemp(prefix="inspire-bk-")))
        return made[-1]

    yield make
    for path in made:
        shutil.rmtree(path, ignore_errors=True)


@dataclass(frozen=True)
class Source:
    data_dir: Path
    backup: Path
    backup_output: str
    passwords: dict[str, str]
    reports: dict[str, Any]
    victims: dict[str, Any]


@pytest.fixture(scope="module")
def source(new_data_dir: Callable[[], Path]) -> Source:
    """Demo data in a data directory of its own, its backup, and what it answers."""
    data_dir = new_data_dir()
    demo = inspire(data_dir, "demo", "--referrals", "150")
    assert demo.returncode == 0, demo.stderr
    passwords = dict(
        line.split()[1::2] for line in demo.stdout.splitlines() if line.startswith("account ")
    )
    backup = new_data_dir() / "inspire.backup"
    made = inspire(data_dir, "backup", str(backup))
    assert made.returncode == 0, made.stderr
    return Source(data_dir, backup, made.stdout, passwords, reports(data_dir), victims(data_dir))


@dataclass(frozen=True)
class Restored:
    data_dir: Path
    output: str
    fingerprint: list[dict[str, Any]]


@pytest.fixture(scope="module")
def restored(source: Source, new_data_dir: Callable[[], Path]) -> Restored:
    """A new data directory holding only the two keys, with the backup restored into it."""
    data_dir = new_data_dir()
    copy_keys(source.data_dir, data_dir)
    result = inspire(data_dir, "restore", str(source.backup))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("restored the backup made"), result.stdout
    return Restored(data_dir, result.stdout + result.stderr, restored_fingerprint(data_dir))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_restored_database_answers_the_same_reports_and_its_victims_still_decrypt(
    source, restored
):
    data_dir = restored.data_dir
    assert source.victims["count"] > 0
    assert source.reports["reoffending"]["events"] > 0
    answers = reports(data_dir)
    assert answers["quarterly"] == source.reports["quarterly"]
    assert answers["quality"] == source.reports["quality"]
    # The restored tables lie in another physical order; the cohort is read in a
    # fixed one, so near-tied risk scores rank alike and the concordance (which once
    # moved in the fourth decimal here) holds still.
    assert_same_figures(answers["reoffending"], source.reports["reoffending"])
    assert victims(data_dir) == source.victims

    # Over HTTP, as the demo's victim worker, whose password came back with the backup.
    port = free_port()
    server = subprocess.Popen(
        [INSPIRE, "serve", "--port", str(port)],
        env=env_for(data_dir),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            for _ in range(300):
                try:
                    if http.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert server.poll() is None, "inspire serve exited early"
                time.sleep(0.2)
            login = http.post(
                "/auth/login",
                json={
                    "username": "demo-victim-worker",
                    "password": source.passwords["demo-victim-worker"],
                },
            )
            assert login.status_code == 200, login.text
            worker = {"Authorization": f"Bearer {login.json()['access_token']}"}
            victim = http.get(f"/victims/{source.victims['first']['id']}", headers=worker)
            assert victim.status_code == 200, victim.text
            assert victim.json()["first_name"] == source.victims["first"]["first_name"]

            # Restoring under a running server would pull its tables from under it.
            busy = inspire(data_dir, "restore", str(source.backup), "--replace")
            assert "inspire serve" in one_line_refusal(busy)
    finally:
        # Ctrl-C, not SIGTERM: after SIGTERM the server's process dies before it can stop
        # the embedded PostgreSQL, which would outlive the test.
        server.send_signal(signal.SIGINT)
        server.wait(timeout=60)

    last = query(
        data_dir,
        "SELECT username, action, record_type FROM audit_event"
        " WHERE action = 'restore' ORDER BY id DESC LIMIT 1",
    )
    assert last == [{"username": "cli", "action": "restore", "record_type": "database"}]


def test_backup_and_restore_print_no_personal_data(source, restored):
    first_name = source.victims["first"]["first_name"]
    for output in (source.backup_output, restored.output):
        assert first_name not in output


def test_the_backup_is_its_owners_alone_holds_no_key_and_is_postgresqls_own_dump(
    source, new_data_dir
):
    assert stat.S_IMODE(source.backup.stat().st_mode) == 0o600
    content = source.backup.read_bytes()
    for name in KEY_FILES:
        assert (source.data_dir / name).read_text().strip().encode() not in content
        assert str(source.data_dir / name) in source.backup_output  # where to keep it
    assert "does not hold the keys" in source.backup_output
    with tarfile.open(source.backup) as tar:
        assert tar.getnames() == [rules.MANIFEST_NAME, rules.DUMP_NAME]
        unpacked = new_data_dir()
        tar.extract(rules.DUMP_NAME, unpacked, filter="data")
    listing = subprocess.run(
        [str(pg_restore()), "--list", str(unpacked / rules.DUMP_NAME)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listing.returncode == 0, listing.stderr
    assert "TABLE DATA public referral" in listing.stdout


def pg_restore() -> Path:
    import pgserver

    return Path(pgserver.__file__).parent / "pginstall" / "bin" / "pg_restore"


def test_restoring_over_records_is_refused_without_replace_and_replaces_them_with_it(
    source, new_data_dir
):
    data_dir = new_data_dir()
    copy_keys(source.data_dir, data_dir)
    added = inspire(
        data_dir, "user", "add", "alice", "--role", "admin", "--password-stdin",
        stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    alice = "SELECT username FROM account WHERE username = 'alice'"

    refused = inspire(data_dir, "restore", str(source.backup))
    message = one_line_refusal(refused)
    assert "holds records" in message and "account" in message and "--replace" in message
    assert query(data_dir, alice) == [{"username": "alice"}]

    replaced = inspire(data_dir, "restore", str(source.backup), "--replace")
    assert replaced.returncode == 0, replaced.stderr
    assert "replacing the records it held" in replaced.stdout
    assert query(data_dir, alice) == []
    assert victims(data_dir) == source.victims


def write_key(data_dir: Path, name: str, value: str) -> None:
    (data_dir / name).write_text(value)


OTHER_KEY = "a key that is not the backup's, long enough 0123456789"


@pytest.mark.parametrize(
    ("keys_here", "named"),
    [
        ({}, ["no encryption key", "no pseudonym key"]),
        ({"encryption_key": OTHER_KEY}, ["encryption key here is not"]),
        ({"pseudonym_key": OTHER_KEY}, ["pseudonym key here is not"]),
    ],
    ids=["no keys", "other encryption key", "other pseudonym key"],
)
def test_a_restore_under_keys_that_cannot_read_the_backup_is_refused(
    source, new_data_dir, keys_here, named
):
    data_dir = new_data_dir()
    if keys_here:
        copy_keys(source.data_dir, data_dir)
        for name, value in keys_here.items():
            write_key(data_dir, name, value)
    message = one_line_refusal(inspire(data_dir, "restore", str(source.backup)))
    assert all(reason in message for reason in named), message
    assert "--ignore-key-check" in message
    assert query(data_dir, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'") == []
    if not keys_here:  # and it made none: the next start must not invent keys either
        assert not any((data_dir / name).exists() for name in KEY_FILES)


def test_told_to_ignore_the_keys_a_restore_goes_ahead_with_a_warning(
    source, restored, new_data_dir
):
    data_dir = new_data_dir()
    copy_keys(source.data_dir, data_dir)
    write_key(data_dir, "pseudonym_key", OTHER_KEY)
    result = inspire(data_dir, "restore", str(source.backup), "--ignore-key-check")
    assert result.returncode == 0, result.stderr
    assert "warning: the pseudonym key here is not" in result.stderr
    assert restored_fingerprint(data_dir) == restored.fingerprint


def test_a_rotated_encryption_key_that_still_lists_the_old_one_restores(source, new_data_dir):
    data_dir = new_data_dir()
    copy_keys(source.data_dir, data_dir)
    old = (source.data_dir / "encryption_key").read_text().strip()
    write_key(data_dir, "encryption_key", f"{OTHER_KEY},{old}")
    result = inspire(data_dir, "restore", str(source.backup))
    assert result.returncode == 0, result.stderr
    assert victims(data_dir) == source.victims


def forged(backup: Path, target: Path, dump: bytes | None = None, **manifest: Any) -> Path:
    """``backup`` with its dump or manifest changed, the checksum made to match the new dump."""
    with tarfile.open(backup) as tar:
        described = json.loads(tar.extractfile(rules.MANIFEST_NAME).read())  # type: ignore[union-attr]
        original = tar.extractfile(rules.DUMP_NAME).read()  # type: ignore[union-attr]
    dump = original if dump is None else dump
    described |= {"dump_sha256": hashlib.sha256(dump).hexdigest(), "dump_bytes": len(dump)}
    described |= manifest
    with tarfile.open(target, "w") as tar:
        for name, data in (
            (rules.MANIFEST_NAME, json.dumps(described).encode()),
            (rules.DUMP_NAME, dump),
        ):
            entry = tarfile.TarInfo(name)
            entry.size = len(data)
            tar.addfile(entry, io.BytesIO(data))
    return target


def damaged(kind: str, backup: Path, folder: Path) -> Path:
    target = folder / f"{kind}.backup"
    content = backup.read_bytes()
    if kind == "missing":
        return folder / "no-such.backup"
    if kind == "not a backup":
        target.write_bytes(os.urandom(4096))
    elif kind == "cut short":
        target.write_bytes(content[: len(content) // 2])
    elif kind == "no description":
        with tarfile.open(target, "w") as tar:
            tar.add(backup, arcname="something-else")
    elif kind == "dump altered":
        with tarfile.open(backup) as tar:
            offset = tar.getmember(rules.DUMP_NAME).offset_data
        spoilt = bytearray(content)
        spoilt[offset + 1000] ^= 0xFF
        target.write_bytes(bytes(spoilt))
    elif kind == "dump ends early":
        # Checksum and all in order, yet pg_restore fails halfway through the data: the
        # schema dropped and the tables made must not be committed.
        with tarfile.open(backup) as tar:
            dump = tar.extractfile(rules.DUMP_NAME).read()  # type: ignore[union-attr]
        forged(backup, target, dump[: int(len(dump) * 0.9)])
    return target


@pytest.mark.parametrize(
    ("kind", "said"),
    [
        ("missing", "no such file"),
        ("not a backup", "not an inspire backup"),
        ("cut short", "damaged or cut short"),
        ("no description", "holds no inspire-backup.json"),
        ("dump altered", "damaged"),
        # Where the cut falls decides which tool stops first: pg_restore at the end of
        # its input, or psql at the half row pg_restore handed it. Either way, one line.
        ("dump ends early", ("pg_restore failed", "psql failed")),
    ],
)
def test_a_missing_or_damaged_backup_is_refused_in_one_line_and_changes_nothing(
    source, restored, kind, said
):
    bad = damaged(kind, source.backup, source.backup.parent)
    message = one_line_refusal(inspire(restored.data_dir, "restore", str(bad), "--replace"))
    assert any(words in message for words in ([said] if isinstance(said, str) else said)), message
    assert restored_fingerprint(restored.data_dir) == restored.fingerprint


def test_a_backup_from_a_newer_version_is_refused(source, restored):
    newer = forged(
        source.backup,
        source.backup.parent / "newer.backup",
        migrations=[*sorted(database.known_migrations()), "referrals:2999-01-01T00:00:00:000000"],
    )
    message = one_line_refusal(inspire(restored.data_dir, "restore", str(newer), "--replace"))
    assert "newer version of inspire" in message


def test_a_backup_from_an_older_version_comes_forward(new_data_dir):
    older = new_data_dir()
    added = inspire(
        older, "user", "add", "alice", "--role", "admin", "--password-stdin",
        stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    # As the database was before its latest referrals migration (the index the paged
    # caseload reads at national scale).
    undone = subprocess.run(
        ["piccolo", "migrations", "backwards", "referrals", "--auto_agree"],
        env=env_for(older, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}"),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert undone.returncode == 0, undone.stderr
    index = "SELECT indexname FROM pg_indexes WHERE indexname = 'referral_status_reached'"
    assert query(older, index) == []
    backup = older / "older.backup"
    assert inspire(older, "backup", str(backup)).returncode == 0

    newer = new_data_dir()
    copy_keys(older, newer)
    result = inspire(newer, "restore", str(backup))
    assert result.returncode == 0, result.stderr
    assert "1 migration applied" in result.stdout
    assert query(newer, index) == [{"indexname": "referral_status_reached"}]
    assert query(newer, "SELECT username FROM account") == [{"username": "alice"}]


@pytest.mark.parametrize("command", ["backup", "restore"])
def test_with_a_real_server_and_no_postgresql_tools_it_says_so_in_one_line(
    source, new_data_dir, command
):
    env = env_for(
        new_data_dir(),
        DATABASE_URL="postgresql://nobody@127.0.0.1:1/none",
        PATH="/nonexistent",
        **{key: f"{key.lower()}-long-enough-for-a-test" for key in KEYS},
    )
    args = [str(source.backup), "--ignore-key-check"] if command == "restore" else ["x.backup"]
    result = run_inspire(command, *args, env=env)
    tool = "pg_dump" if command == "backup" else "pg_restore"
    assert f"{tool} is not on PATH" in one_line_refusal(result)


# The rules, on their own.


def test_the_password_travels_in_the_environment_not_on_the_command_line():
    dsn, env = rules.tool_connection("postgresql://inspire:s%40cret@db.example:5432/inspire")
    assert dsn == "postgresql://inspire@db.example:5432/inspire"
    assert env == {"PGPASSWORD": "s@cret"}
    assert rules.tool_connection("postgresql://postgres:@/postgres?host=/tmp/x") == (
        "postgresql://postgres:@/postgres?host=/tmp/x",
        {},
    )


def test_a_tools_error_reaches_the_screen_without_the_values_it_quotes():
    stderr = (
        'psql:<stdin>:812: ERROR:  invalid input syntax for type date: "Jade Parkin"\n'
        'CONTEXT:  COPY person, line 3, column date_of_birth: "Jade Parkin"\n'
    )
    assert rules.tool_error(stderr) == 'invalid input syntax for type date: "..."'
    mismatch = (
        "pg_dump: error: aborting because of server version mismatch\n"
        "pg_dump: detail: server version: 17.2; pg_dump version: 15.20\n"
    )
    assert rules.tool_error(mismatch) == (
        "aborting because of server version mismatch; server version: 17.2; pg_dump version: 15.20"
    )


def test_every_encryption_key_the_backup_names_must_be_here():
    backup = rules.key_checks(["new key 0123456789", "old key 0123456789"], "pseudonyms 0123456789")
    same = rules.key_checks(
        ["newer 0123456789", "new key 0123456789", "old key 0123456789"], "pseudonyms 0123456789"
    )
    assert rules.key_problems(backup, same.encryption, same.pseudonym) == []
    dropped_old = rules.key_checks(["new key 0123456789"], "pseudonyms 0123456789")
    assert rules.key_problems(backup, dropped_old.encryption, dropped_old.pseudonym) == [
        "the encryption key here is not the one the backup's data was written with"
    ]
    assert rules.key_problems(backup, None, None) == [
        "there is no encryption key here",
        "there is no pseudonym key here",
    ]
