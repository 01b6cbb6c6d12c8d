"""Benchmark 1: bulk import of N referral rows against a raw COPY of the same rows.

Each repeat, on emptied tables:

1. ``programme.imports.services.import_referrals`` on the CSV (timed; its phases
   are timed too, by wrapping the module's helpers and asyncpg's
   ``copy_records_to_table`` for the duration of the call: a few extra function
   calls, nothing else changes);
2. the baseline: the same bytes decoded and parsed by the ``csv`` module, then
   one asyncpg ``copy_records_to_table`` into a bare table with one text column
   per CSV column (no keys, no indexes, no checks);
3. ``programme.imports.rules.plan_import`` alone on the same bytes (the checking);
4. ``referrals.rules.dialable_uk_number`` alone on the file's phone numbers.

Reports medians over the repeats, and ratios against the baseline.
"""

from __future__ import annotations

import csv
import functools
import inspect
import io
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg
from harness import (
    connect,
    count_rows,
    create_text_table,
    drop_table,
    empty_every_table,
    log,
    median,
    stopwatch,
    today,
)
from referral_data import CSV_COLUMNS, expected_outcome, referrals_csv

from programme.imports import services as import_service
from programme.imports.rules import plan_import

# The project's code this benchmark measures (the one place bench/ names it).
from programme.platform.accounts.schemas import Principal
from programme.platform.crypto import KeyPurpose, purpose_key
from programme.platform.settings import get_settings
from referrals.rules import dialable_uk_number

BARE_TABLE = "bench_bare_import"
ACTOR = Principal(id=None, username="bench", role="system")
WARM_UP_ROWS = 1_000

PHASES = (
    "plan_import",
    "check_rows",
    "_drop_already_imported",
    "_existing_people",
    "_open_referrals",
    "check_overlaps",
    "_write",
    "_part_records",
)
"""import_service's helpers, in the order import_referrals calls them; each is timed if the
code measured has it (``plan_import`` and ``_write`` before the import wrote each part as it
was checked, ``check_rows`` and ``_part_records`` since: then they overlap, and the phases
add up to more than the whole)."""
COPY = "copy_records_to_table"
WRITTEN_TABLES = ("person", "referral", "referral_event", "returned_referral", "audit_event")
"""The tables import_referrals COPYs into, in its order."""


class PhaseTimes:
    """Seconds spent in each wrapped function."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.copies: list[tuple[str, list[str], Any]] = []
        """Every COPY the import made (table, columns, records), to make again alone."""

    def wrap(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        if inspect.iscoroutinefunction(function):

            async def timed_async(*args: Any, **kwargs: Any) -> Any:
                started = time.perf_counter()
                try:
                    return await function(*args, **kwargs)
                finally:
                    self.seconds[name] += time.perf_counter() - started

            return functools.wraps(function)(timed_async)

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - started

        return functools.wraps(function)(timed)


@contextmanager
def instrumented(times: PhaseTimes) -> Iterator[None]:
    """Time import_service's phases and every COPY, restoring everything afterwards."""
    originals = {
        name: getattr(import_service, name) for name in PHASES if hasattr(import_service, name)
    }
    connection_class: Any = asyncpg.connection.Connection
    original_copy = connection_class.copy_records_to_table
    try:
        for name, function in originals.items():
            setattr(import_service, name, times.wrap(name, function))

        async def timed_copy(self: Any, table_name: str, *args: Any, **kwargs: Any) -> Any:
            times.copies.append((table_name, list(kwargs["columns"]), kwargs["records"]))
            started = time.perf_counter()
            try:
                return await original_copy(self, table_name, *args, **kwargs)
            finally:
                elapsed = time.perf_counter() - started
                times.seconds[COPY] += elapsed
                times.seconds[f"{COPY}:{table_name}"] += elapsed

        connection_class.copy_records_to_table = functools.wraps(original_copy)(timed_copy)
        yield
    finally:
        for name, function in originals.items():
            setattr(import_service, name, function)
        connection_class.copy_records_to_table = original_copy


async def empty_tables_analysed() -> None:
    """Empty every table, then ANALYZE the ones the import writes.

    Else the statistics collector, counting the last repeat's rows, has autovacuum
    ANALYZE them in the middle of the next import: it sees none of its uncommitted rows
    but all their pages (``reltuples`` 0 on hundreds of pages), and every statement
    planned after that (the foreign-key checks, the reoffending cohort's refresh after
    each COPY slice) takes the tables for empty: a 20,000-row import went from 10 s to
    140 s. Analysed while empty, the tables have nothing left for autovacuum to do."""
    await empty_every_table()
    connection = await connect()
    try:
        await connection.execute(f"ANALYZE {', '.join(WRITTEN_TABLES)}, reoffending_cohort")
    finally:
        await connection.close()


async def run_import(
    content: bytes, rows: int, times: PhaseTimes | None = None
) -> tuple[float, dict[str, int]]:
    """Import ``content`` into emptied tables and check the outcome.

    Returns the seconds taken and the rows then in each table the import writes.
    """
    await empty_tables_analysed()
    settings = get_settings()
    now = today()
    with instrumented(times or PhaseTimes()), stopwatch() as watch:
        report = await import_service.import_referrals(
            content, ACTOR, settings, now, skip_invalid=False, create_agencies=True
        )
    accepted, returned = expected_outcome(rows)
    problems = []
    if report.errors or report.refused:
        problems.append(f"{report.refused} rows refused, first errors {report.errors[:3]}")
    if (report.imported, report.returned) != (accepted, returned):
        problems.append(
            f"imported {report.imported} + returned {report.returned}, "
            f"expected {accepted} + {returned}"
        )
    if report.already_present:
        problems.append(f"{report.already_present} rows already present in emptied tables")
    if problems:
        raise RuntimeError("the import did not do what it should: " + "; ".join(problems))
    stored = {name: await count_rows(name) for name in WRITTEN_TABLES}
    if stored["referral"] != accepted or stored["returned_referral"] != returned:
        raise RuntimeError(f"the tables do not hold the imported rows: {stored}")
    return watch.seconds, stored


async def run_copies_alone(times: PhaseTimes, stored: dict[str, int]) -> float:
    """The import's own COPYs made again, alone, into the emptied tables (its agencies put
    back first, untimed): the floor, free of whatever ran beside the import's COPYs."""
    connection = await connect()
    try:
        agencies = await connection.fetch("SELECT id, name, created_at FROM agency")
        await empty_tables_analysed()
        await connection.copy_records_to_table(
            "agency", records=[tuple(r) for r in agencies], columns=["id", "name", "created_at"]
        )
        with stopwatch() as watch:
            async with connection.transaction():
                for table_name, columns, records in times.copies:
                    await connection.copy_records_to_table(
                        table_name, records=records, columns=columns
                    )
    finally:
        await connection.close()
    again = {name: await count_rows(name) for name in WRITTEN_TABLES}
    again["audit_event"] += len(agencies)  # the agencies' creation, not a COPY
    if again != stored:
        raise RuntimeError(f"the COPYs made again stored {again}, the import {stored}")
    times.copies.clear()
    return watch.seconds


def parse_csv(content: bytes) -> tuple[list[str], list[tuple[str, ...]]]:
    reader = csv.reader(io.StringIO(content.decode("utf-8-sig"), newline=""))
    header = next(reader)
    return header, [tuple(values) for values in reader]


async def run_baseline(content: bytes, rows: int) -> tuple[float, float]:
    """Parse the CSV and COPY it as text into the bare table: (parse, copy) seconds."""
    connection = await connect()
    try:
        await connection.execute(f'TRUNCATE "{BARE_TABLE}"')
        with stopwatch() as parse_watch:
            header, records = parse_csv(content)
        with stopwatch() as copy_watch:
            await connection.copy_records_to_table(BARE_TABLE, records=records, columns=header)
        stored = await connection.fetchval(f'SELECT count(*) FROM "{BARE_TABLE}"')
    finally:
        await connection.close()
    if stored != rows:
        raise RuntimeError(f"the baseline COPY stored {stored} rows, not {rows}")
    return parse_watch.seconds, copy_watch.seconds


def run_plan(content: bytes) -> float:
    settings = get_settings()
    with stopwatch() as watch:
        plan = plan_import(
            content,
            today=today(),
            commissioned_areas=settings.commissioned_areas,
            fingerprint_key=purpose_key(settings, KeyPurpose.import_fingerprint),
            reference_key=purpose_key(settings, KeyPurpose.generated_reference),
        )
    if plan.errors:
        raise RuntimeError(f"plan_import found errors: {plan.errors[:3]}")
    return watch.seconds


def run_phones(phones: list[str]) -> float:
    with stopwatch() as watch:
        valid = sum(1 for phone in phones if dialable_uk_number(phone) is not None)
    if valid != len(phones):
        raise RuntimeError(f"{len(phones) - valid} generated phone numbers are not valid")
    return watch.seconds


async def benchmark(rows: int, repeats: int) -> dict[str, Any]:
    """Run benchmark 1; the pool must be open and migrations applied."""
    now = today()
    with stopwatch() as generation:
        content = referrals_csv(rows, now)
    log(
        f"import: generated {rows:,} rows ({len(content) / 1e6:.1f} MB)"
        f" in {generation.seconds:.1f}s"
    )
    _, parsed = parse_csv(content)
    phones = [record[CSV_COLUMNS.index("phone")] for record in parsed]
    del parsed

    await create_text_table(BARE_TABLE, CSV_COLUMNS)
    try:
        # Warm-up: loads phonenumbers' metadata, fills the pool, plans the queries.
        await run_import(referrals_csv(WARM_UP_ROWS, now), WARM_UP_ROWS)
        await run_baseline(referrals_csv(WARM_UP_ROWS, now), WARM_UP_ROWS)

        runs: list[dict[str, float]] = []
        for repeat in range(1, repeats + 1):
            times = PhaseTimes()
            import_seconds, stored = await run_import(content, rows, times)
            copies_alone = await run_copies_alone(times, stored)
            parse_seconds, copy_seconds = await run_baseline(content, rows)
            plan_seconds = run_plan(content)
            phone_seconds = run_phones(phones)
            run = {
                "import": import_seconds,
                "baseline_parse": parse_seconds,
                "baseline_copy": copy_seconds,
                "baseline": parse_seconds + copy_seconds,
                "plan_alone": plan_seconds,
                "phones_alone": phone_seconds,
                "copies_alone": copies_alone,
                "in_import_plan": times.seconds["plan_import"] + times.seconds["check_rows"],
                "in_import_lookups": sum(
                    times.seconds[name]
                    for name in (
                        "_drop_already_imported",
                        "_existing_people",
                        "_open_referrals",
                        "check_overlaps",
                    )
                ),
                "in_import_write_build": times.seconds["_write"] - times.seconds[COPY]
                if times.seconds["_write"]
                else times.seconds["_part_records"],
                "in_import_write_copy": times.seconds[COPY],
            }
            for name in WRITTEN_TABLES:
                run[f"copy_{name}"] = times.seconds[f"{COPY}:{name}"]
            run["in_import_other"] = run["import"] - sum(
                run[key]
                for key in (
                    "in_import_plan",
                    "in_import_lookups",
                    "in_import_write_build",
                    "in_import_write_copy",
                )
            )
            runs.append(run)
            log(
                f"import: repeat {repeat}/{repeats}: import {import_seconds:.2f}s "
                f"(plan {run['in_import_plan']:.2f}s), baseline {run['baseline']:.2f}s "
                f"(parse {parse_seconds:.2f}s + COPY {copy_seconds:.2f}s), "
                f"plan alone {plan_seconds:.2f}s, phones alone {phone_seconds:.2f}s"
            )
    finally:
        await empty_every_table()
        await drop_table(BARE_TABLE)

    medians = {key: median([run[key] for run in runs]) for key in runs[0]}
    return {
        "rows": rows,
        "repeats": repeats,
        "csv_bytes": len(content),
        "rows_written": stored,
        "runs": runs,
        "median": medians,
        "import_rows_per_s": rows / medians["import"],
        "baseline_rows_per_s": rows / medians["baseline"],
        "copy_rows_per_s": rows / medians["baseline_copy"],
        "ratio_import_to_baseline": medians["import"] / medians["baseline"],
        "ratio_import_to_copy": medians["import"] / medians["baseline_copy"],
        "uses_embedded_database": get_settings().uses_embedded_database,
    }
