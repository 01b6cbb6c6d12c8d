"""Helpers shared by the benchmarks: emptying the database, statistics, printing.

Import this only after ``run_referrals`` has set ``INSPIRE_DATA_DIR`` (it pulls in
the project's database module, which reads the settings once).
"""

from __future__ import annotations

import socket
import statistics
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import asyncpg

from programme.platform import database


async def connect() -> asyncpg.Connection:
    """A plain asyncpg connection to the benchmark's database (not from the pool)."""
    return await asyncpg.connect(**database.engine().config)


async def empty_every_table() -> None:
    """Empty every table but the migrations table, as tests/conftest.py does.

    ``session_replication_role = replica`` switches off triggers for this one
    transaction: the only way past the audit table's append-only rule.
    """
    connection = await connect()
    try:
        tables = await connection.fetch(
            "SELECT tablename FROM pg_tables"
            " WHERE schemaname = 'public' AND tablename <> 'migration'"
        )
        names = ", ".join(f'"{row["tablename"]}"' for row in tables)
        async with connection.transaction():
            await connection.execute("SET LOCAL session_replication_role = replica")
            await connection.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    finally:
        await connection.close()


async def create_text_table(name: str, columns: Sequence[str]) -> None:
    """A bare table: one nullable text column per name, no keys, no indexes."""
    connection = await connect()
    try:
        await connection.execute(f'DROP TABLE IF EXISTS "{name}"')
        body = ", ".join(f'"{column}" text' for column in columns)
        await connection.execute(f'CREATE TABLE "{name}" ({body})')
    finally:
        await connection.close()


async def drop_table(name: str) -> None:
    connection = await connect()
    try:
        await connection.execute(f'DROP TABLE IF EXISTS "{name}"')
    finally:
        await connection.close()


async def count_rows(table: str) -> int:
    connection = await connect()
    try:
        return int(await connection.fetchval(f'SELECT count(*) FROM "{table}"'))
    finally:
        await connection.close()


class Stopwatch:
    def __init__(self) -> None:
        self.seconds = 0.0


@contextmanager
def stopwatch() -> Iterator[Stopwatch]:
    watch = Stopwatch()
    started = time.perf_counter()
    try:
        yield watch
    finally:
        watch.seconds = time.perf_counter() - started


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (``fraction`` in 0..1) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.5)))
    return ordered[rank - 1]


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody is listening on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)
