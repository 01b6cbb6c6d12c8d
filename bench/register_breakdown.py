"""Saving a register, in-process: where a save spends its time.

The service's ``save_register`` called in this process (no HTTP, no auth), one
call at a time, twice over: once plain, once with asyncpg logging every SQL
statement and the wait for its answer.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

from harness import project_database, today
from register_setup import REGISTER_A, REGISTER_B, Setup, new_sessions

# The project's code this part measures.
from programme.delivery import services as register
from programme.delivery.rules import Mark
from programme.delivery.schemas import AttendanceMark
from programme.platform.accounts.services import principal_for


def query_label(sql: str) -> str:
    text = re.sub(r"\s+", " ", sql).strip()
    if text.startswith("SELECT pg_advisory_unlock_all()") or text.startswith("RESET ALL"):
        return "(pool release: asyncpg connection reset)"
    if text.upper() in {"BEGIN;", "BEGIN", "COMMIT;", "COMMIT"} or text.startswith("BEGIN"):
        return text.rstrip(";")
    text = re.sub(r'"', "", text)
    return text[:110] + ("..." if len(text) > 110 else "")


async def breakdown(setup: Setup, args: argparse.Namespace) -> dict[str, Any]:
    """``save_register`` called in-process (no HTTP, no auth), one call at a time.

    Two passes over the same calls: one plain (the time per call), one with an
    asyncpg query logger on every pooled connection (the statements, and the
    time spent waiting for each; logging itself adds a little to that pass).
    """
    count = args.breakdown_saves
    if not count:
        return {}
    logged: list[tuple[str, float]] = []

    def on_query(record: Any) -> None:
        logged.append((record.query, record.elapsed))

    async def attach(connection: Any) -> None:
        connection.add_query_logger(on_query)

    engine = project_database().engine()
    identical, changing = (UUID(s) for s in await new_sessions(setup, 2))
    now = today()
    registers = [
        [
            AttendanceMark(referral_id=referral_id, status=Mark(status))
            for referral_id, status in zip(setup.referrals, marks, strict=True)
        ]
        for marks in (REGISTER_A, REGISTER_B)
    ]
    Pass = dict[str, tuple[float, list[tuple[str, float]]]]

    async def one_pass(init: Any) -> Pass:
        await engine.start_connection_pool(min_size=1, max_size=2, init=init)
        try:
            principal = await principal_for(setup.facilitator_id)
            assert principal is not None
            calls: list[tuple[str, Callable[[int], Awaitable[Any]]]] = [
                (
                    "auth lookup (principal_for, every request)",
                    lambda i: principal_for(setup.facilitator_id),
                ),
                (
                    "save_register, identical",
                    lambda i: register.save_register(identical, registers[0], principal, now),
                ),
                (
                    # 10 warm-up calls end on register B, so the first measured one
                    # (A) is a correction again, and so is every one after it.
                    "save_register, changing",
                    lambda i: register.save_register(changing, registers[i % 2], principal, now),
                ),
            ]
            found: Pass = {}
            for label, work in calls:
                for i in range(10):
                    await work(i)
                await asyncio.sleep(0.05)  # the query loggers run via call_soon
                first = len(logged)
                started = time.perf_counter()
                for i in range(count):
                    await work(i)
                elapsed = time.perf_counter() - started
                await asyncio.sleep(0.05)
                found[label] = (elapsed, logged[first:])
            return found
        finally:
            await engine.close_connection_pool()

    plain = await one_pass(None)
    traced = await one_pass(attach)
    results: dict[str, Any] = {}
    for label, (elapsed, _) in plain.items():
        traced_elapsed, queries = traced[label]
        per_statement: dict[str, list[float]] = {}
        for sql, seconds in queries:
            per_statement.setdefault(query_label(sql), []).append(seconds)
        results[label] = {
            "calls": count,
            "ms_per_call": elapsed / count * 1000,
            "ms_per_call_traced": traced_elapsed / count * 1000,
            "statements_per_call": len(queries) / count,
            "sql_ms_per_call": sum(seconds for _, seconds in queries) / count * 1000,
            "top": sorted(
                (
                    {
                        "statement": name,
                        "per_call": len(times) / count,
                        "ms_per_call": sum(times) / count * 1000,
                    }
                    for name, times in per_statement.items()
                ),
                key=lambda row: -row["ms_per_call"],
            )[:10],
        }
    return results
