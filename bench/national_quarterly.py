"""National scale, benchmark 1: the quarterly report against one hand-written aggregate.

``analysis.services.quarterly`` over the run's quarters against a bare SQL
aggregate giving the same per-quarter counts and one more for the engagement
cohort (both checked equal to the report's), the report's two halves on their
own, EXPLAIN (ANALYZE, BUFFERS) of each, under custom and generic plans, and
optionally with a temporary candidate index (dropped straight after).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

from harness import connect, execution_ms, explain, index_usage, log, median, project_database

# The project's code this benchmark measures.
from analysis import queries, services
from programme.platform.quarters import Quarter, quarters_between

COUNT_COLUMNS = tuple(c for c in services.QUARTERLY_COLUMNS[1:] if c != "reported")
"""The report's counts, which the bare aggregate must reproduce (not the quarter's label
nor whether it was reported and locked)."""


def quarters_back(today: date, count: int) -> tuple[Quarter, Quarter]:
    """The first and the last of the ``count`` complete quarters before ``today``'s."""
    last = previous_quarter(Quarter.of(today))  # the last complete quarter
    first = last
    for _ in range(count - 1):
        first = previous_quarter(first)
    return first, last


def previous_quarter(quarter: Any) -> Any:
    return type(quarter)(quarter.year - (quarter.number == 1), (quarter.number - 2) % 4 + 1)


BARE_QUARTERLY_SQL = """
SELECT date_trunc('quarter', day - interval '3 months')::date AS quarter_start,
       count(*) FILTER (WHERE type IN ('accepted', 'returned')) AS referrals,
       count(*) FILTER (WHERE type = 'accepted') AS accepted,
       count(*) FILTER (WHERE type = 'returned') AS returned,
       count(*) FILTER (WHERE type = 'contacted') AS contacted,
       count(*) FILTER (WHERE type = 'engaged') AS engaging,
       count(*) FILTER (WHERE type = 'started') AS started,
       count(*) FILTER (WHERE type = 'completed') AS completed,
       count(*) FILTER (WHERE type = 'disengaged') AS disengaged,
       count(*) FILTER (WHERE type = 'withdrawn') AS withdrawn,
       count(*) FILTER (WHERE type = 'closed') AS closed
FROM (SELECT occurred_on AS day, type FROM referral_event
      WHERE occurred_on BETWEEN $1 AND $2
      UNION ALL
      SELECT received_on, 'returned' FROM returned_referral
      WHERE received_on BETWEEN $1 AND $2) AS happened
GROUP BY 1
ORDER BY 1
"""

# The engagement cohort the report also computes, written as one more aggregate.
BARE_COHORT_SQL = """
SELECT count(*) AS contacted, count(*) FILTER (WHERE e.referral IS NOT NULL) AS engaged
FROM referral_event c
LEFT JOIN (SELECT DISTINCT referral FROM referral_event WHERE type = 'engaged') e
       ON e.referral = c.referral
WHERE c.type = 'contacted' AND c.occurred_on BETWEEN $1 AND $2
"""


def report_parts_sql() -> dict[str, str]:
    """The report's two halves run on their own, cut from its text: the per-quarter
    counts (every CTE before ``cohort``) and the engagement cohort. Empty if the
    report's SQL no longer has that shape."""
    sql = queries.QUARTERLY_SQL
    try:
        counted_end = sql.index("), cohort AS (")
        counted = sql[sql.index("WITH happened AS") : counted_end]
        cohort_start = counted_end + len("), cohort AS (")
        cohort = sql[cohort_start : sql.index("\n)\nSELECT q.label")]
    except ValueError:
        return {}
    return {"counted": counted + ") SELECT * FROM counted", "cohort": cohort}


def quarter_label(quarter_start: date) -> str:
    """Label of a financial quarter from its date_trunc('quarter', day - 3 months)."""
    number = (quarter_start.month - 1) // 3 + 1
    year = quarter_start.year
    return f"Q{number} {year}-{(year + 1) % 100:02d}"


PLAN_CACHE_MODES = (("custom", "force_custom_plan"), ("generic", "force_generic_plan"))
"""asyncpg prepares every statement and keeps it per connection; PostgreSQL plans
the first five executions with the actual dates (custom plans), then may switch to
one generic plan, estimated without them. A pooled service connection that has
served the report five times runs the generic plan, so both are measured, each on
both sides, pinned with ``plan_cache_mode`` on every connection."""


async def quarterly_benchmark(
    repeats: int, first: Any, last: Any, index_test: bool
) -> dict[str, Any]:
    db = project_database().engine()
    labels = [q.label for q in quarters_between(first, last)]
    low, high = first.first_day, last.last_day
    parts = report_parts_sql()
    out: dict[str, Any] = {"first": first.label, "last": last.label, "repeats": repeats}
    for regime, mode in PLAN_CACHE_MODES:
        log(f"  {regime} plans (plan_cache_mode = {mode})")
        settings = {"plan_cache_mode": mode}
        await db.close_connection_pool()
        await db.start_connection_pool(min_size=0, max_size=4, server_settings=settings)
        connection = await connect(server_settings=settings)
        try:

            async def run_report() -> Any:
                return await services.quarterly(first, last)

            async def run_bare(connection: Any = connection) -> list[Any]:
                return await connection.fetch(BARE_QUARTERLY_SQL, low, high)

            async def run_bare_cohort(connection: Any = connection) -> Any:
                return await connection.fetchrow(BARE_COHORT_SQL, low, high)

            async def run_counted(connection: Any = connection) -> Any:
                return await connection.fetch(parts["counted"], low, high)

            async def run_cohort(connection: Any = connection) -> Any:
                return await connection.fetchrow(parts["cohort"], low, high)

            candidates: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
                ("report", run_report),
                ("bare", run_bare),
                ("bare_cohort", run_bare_cohort),
            ]
            if parts:
                candidates += [
                    ("report_part_counted", run_counted),
                    ("report_part_cohort", run_cohort),
                ]
            times = await _alternate(candidates, repeats)
            found: dict[str, Any] = {"plan_cache_mode": mode, "times": times}
            found["median"] = m = {name: median(values) for name, values in times.items()}
            found["ratio_report_to_bare"] = m["report"] / m["bare"]
            found["ratio_report_to_bare_plus_cohort"] = m["report"] / (m["bare"] + m["bare_cohort"])
            plans = {
                "report": await explain(connection, queries.QUARTERLY_SQL, low, high, labels),
                "bare": await explain(connection, BARE_QUARTERLY_SQL, low, high),
                "bare_cohort": await explain(connection, BARE_COHORT_SQL, low, high),
            }
            found["plans"] = plans
            found["scans"] = {name: index_usage(plan) for name, plan in plans.items()}
            found["execution_ms"] = {name: execution_ms(plan) for name, plan in plans.items()}
            if regime == "custom":
                out.update(await _check_quarterly(connection, first, last, labels))
                if index_test:
                    found["index_test"] = await _index_test(
                        connection,
                        [c for c in candidates if c[0] in ("report", "bare", "report_part_cohort")],
                        repeats,
                        queries.QUARTERLY_SQL,
                        low,
                        high,
                        labels,
                    )
            out[regime] = found
        finally:
            await connection.close()
    await db.close_connection_pool()
    await db.start_connection_pool(min_size=0, max_size=4)
    return out


async def _check_quarterly(
    connection: Any, first: Any, last: Any, labels: list[str]
) -> dict[str, Any]:
    """The report and the bare aggregates give the same numbers."""
    low, high = first.first_day, last.last_day
    report = await services.quarterly(first, last)
    bare = await connection.fetch(BARE_QUARTERLY_SQL, low, high)
    bare_cohort = await connection.fetchrow(BARE_COHORT_SQL, low, high)
    by_label = {quarter_label(row["quarter_start"]): row for row in bare}
    mismatches: list[Any] = []
    for row in report.rows[:-1]:
        found = by_label.get(row["quarter"])
        for column in COUNT_COLUMNS:
            expected = found[column] if found else 0
            if row[column] != expected:
                mismatches.append((row["quarter"], column, row[column], expected))
    if set(by_label) - set(labels):
        mismatches.append(("extra quarters in bare", sorted(set(by_label) - set(labels))))
    engagement = report.engagement_rate
    if (engagement.numerator, engagement.denominator) != (
        bare_cohort["engaged"],
        bare_cohort["contacted"],
    ):
        mismatches.append(("engagement cohort", engagement, dict(bare_cohort)))
    if mismatches:
        raise RuntimeError(f"report and bare aggregate disagree: {mismatches[:10]}")
    return {
        "check": "equal: every per-quarter count and the engagement cohort",
        "total": report.rows[-1],
        "engagement_rate": engagement,
        "rows_counted": int(sum(report.rows[-1][c] for c in COUNT_COLUMNS[1:])),
    }


async def _alternate(
    candidates: list[tuple[str, Callable[[], Awaitable[Any]]]], repeats: int
) -> dict[str, list[float]]:
    """One untimed warm-up of each, then ``repeats`` rounds taking each in turn."""
    for _, run in candidates:
        await run()
    times: dict[str, list[float]] = {}
    for round_number in range(repeats):
        for name, run in candidates:
            started = time.perf_counter()
            await run()
            times.setdefault(name, []).append(time.perf_counter() - started)
        log(
            f"  round {round_number + 1}/{repeats}: "
            + ", ".join(f"{name} {values[-1] * 1000:.0f} ms" for name, values in times.items())
        )
    return times


# Tried in the benchmark database only, then dropped. The report's engagement cohort
# needs the referrals that have an 'engaged' event: since aedaea1 it hashes them
# once (SELECT DISTINCT referral ... WHERE type = 'engaged'); before, it probed
# EXISTS once per contacted event. A partial index holding exactly those referrals
# serves either form from the index alone.
CANDIDATE_INDEXES = (
    "CREATE INDEX bench_referral_event_engaged ON referral_event (referral) WHERE type = 'engaged'",
)


async def _index_test(
    connection: Any,
    candidates: list[tuple[str, Callable[[], Awaitable[Any]]]],
    repeats: int,
    report_sql: str,
    low: date,
    high: date,
    labels: list[str],
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for statement in CANDIDATE_INDEXES:
        name = statement.split()[2]
        log(f"  temporary index: {statement}")
        started = time.perf_counter()
        await connection.execute(statement)
        await connection.execute("VACUUM (ANALYZE) referral_event")
        build = time.perf_counter() - started
        try:
            times = await _alternate(candidates, repeats)
            plan = await explain(connection, report_sql, low, high, labels)
            bare_plan = await explain(connection, BARE_QUARTERLY_SQL, low, high)
        finally:
            await connection.execute(f"DROP INDEX IF EXISTS {name}")
        m = {key: median(values) for key, values in times.items()}
        results[name] = {
            "statement": statement,
            "build_seconds": build,
            "median": m,
            "ratio_report_to_bare": m["report"] / m["bare"],
            "scans": index_usage(plan),
            "bare_scans": index_usage(bare_plan),
            "plan": plan,
        }
    return results
