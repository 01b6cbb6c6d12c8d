"""National scale, issue 15 part 5: referral quality and victims' feedback against bare aggregates.

Each report as its service gives it (``analysis.services.referral_quality``, per
agency and quarter as ``GET /reports/referral-quality`` asks for it by default,
and ``victim_feedback_report`` as ``GET /reports/victim-feedback``) against one
hand-written SQL aggregate over the same tables giving the same numbers
(checked equal), alternated, under custom and generic plans as the quarterly
report is measured (``national_quarterly.PLAN_CACHE_MODES``), with EXPLAIN
(ANALYZE, BUFFERS) of every statement.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from harness import connect, execution_ms, explain, index_usage, log, median, project_database
from national_quarterly import PLAN_CACHE_MODES, _alternate, quarter_label

# The project's code this benchmark measures.
from analysis import queries, services

THRESHOLD = 5

BARE_QUALITY_SQL = f"""
SELECT a.name AS agency, date_trunc('quarter', s.received_on - interval '3 months')::date AS q,
       count(*) AS received,
       count(*) FILTER (WHERE s.accepted) AS accepted,
       count(*) FILTER (WHERE NOT s.accepted) AS returned,
       {", ".join(f"count(*) FILTER (WHERE s.reasons ? '{r}') AS {r}" for r in queries.REASONS)},
       avg(s.quality_score) AS mean_quality_score,
       count(*) FILTER (WHERE s.engaged) AS engaged
FROM (SELECT r.agency, r.received_on, true AS accepted, r.quality_score, NULL::jsonb AS reasons,
             e.referral IS NOT NULL AS engaged
      FROM referral r
      LEFT JOIN (SELECT DISTINCT referral FROM referral_event
                 WHERE type = 'engaged' AND voided_at IS NULL) e ON e.referral = r.id
      WHERE r.received_on BETWEEN $1 AND $2
      UNION ALL
      SELECT agency, received_on, false, NULL, reasons, false FROM returned_referral
      WHERE received_on BETWEEN $1 AND $2 AND NOT replaced) s
JOIN agency a ON a.id = s.agency
GROUP BY 1, 2
"""

BARE_FEEDBACK_SQL = """
SELECT date_trunc('quarter', collected_on - interval '3 months')::date AS q, stage,
       count(*) AS responded,
       count(*) FILTER (WHERE behaviour IN ('stopped', 'reduced')) AS improved
FROM feedback
WHERE collected_on BETWEEN $1 AND $2
GROUP BY 1, 2
"""


def _check_quality(report: list[dict[str, Any]], bare: list[Any]) -> None:
    found = {(r["agency"], quarter_label(r["q"])): r for r in bare}
    if len(found) != len(report):
        raise RuntimeError(f"quality: {len(report)} report rows, {len(found)} bare rows")
    for row in report:
        other = found[(row["agency"], row["quarter"])]
        mean = other["mean_quality_score"]
        expected = {
            "received": other["received"],
            "accepted": other["accepted"],
            "returned": other["returned"],
            "engaged": other["engaged"],
            "reasons": {r: other[r] for r in queries.REASONS},
            "mean_quality_score": None if mean is None else round(float(mean), 1),
        }
        got = {k: row[k] for k in expected}
        if got != expected:
            raise RuntimeError(f"quality differs for {row['agency']} {row['quarter']}: {got}")


def _check_feedback(report: Any, bare: list[Any]) -> None:
    found = {(quarter_label(r["q"]), r["stage"]): r for r in bare}
    if len(found) != len(report.rows):
        raise RuntimeError(f"feedback: {len(report.rows)} report rows, {len(found)} bare rows")
    for cell in report.rows:
        other = found[(cell.quarter, cell.stage)]
        if (cell.responded, cell.stopped_or_reduced) != (other["responded"], other["improved"]):
            raise RuntimeError(f"feedback differs for {cell.quarter} {cell.stage}")


async def reports_benchmark(repeats: int, first: Any, last: Any) -> dict[str, Any]:
    db = project_database().engine()
    low, high = first.first_day, last.last_day
    out: dict[str, Any] = {"first": first.label, "last": last.label, "repeats": repeats}
    for regime, mode in PLAN_CACHE_MODES:
        log(f"  {regime} plans (plan_cache_mode = {mode})")
        settings = {"plan_cache_mode": mode}
        await db.close_connection_pool()
        await db.start_connection_pool(min_size=0, max_size=4, server_settings=settings)
        connection = await connect(server_settings=settings)
        try:

            async def quality() -> Any:
                return await services.referral_quality(first, last)

            async def bare_quality(connection: Any = connection) -> Any:
                return await connection.fetch(BARE_QUALITY_SQL, low, high)

            async def feedback() -> Any:
                return await services.victim_feedback_report(first, last, THRESHOLD)

            async def bare_feedback(connection: Any = connection) -> Any:
                return await connection.fetch(BARE_FEEDBACK_SQL, low, high)

            candidates: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
                ("quality", quality),
                ("bare_quality", bare_quality),
                ("feedback", feedback),
                ("bare_feedback", bare_feedback),
            ]
            if regime == "custom":
                _check_quality(await quality(), await bare_quality())
                _check_feedback(
                    await services.victim_feedback_report(first, last, 1), await bare_feedback()
                )
                out["check"] = "equal: every count, reason, mean score and engaged count"
            times = await _alternate(candidates, repeats)
            m = {name: median(values) for name, values in times.items()}
            plans = {
                "quality": await explain(connection, queries.QUALITY_SQL, low, high),
                "bare_quality": await explain(connection, BARE_QUALITY_SQL, low, high),
                "feedback": await explain(connection, queries.FEEDBACK_SQL, low, high),
                "bare_feedback": await explain(connection, BARE_FEEDBACK_SQL, low, high),
            }
            out[regime] = {
                "plan_cache_mode": mode,
                "times": times,
                "median": m,
                "ratio_quality": m["quality"] / m["bare_quality"],
                "ratio_feedback": m["feedback"] / m["bare_feedback"],
                "plans": plans,
                "scans": {name: index_usage(plan) for name, plan in plans.items()},
                "execution_ms": {name: execution_ms(plan) for name, plan in plans.items()},
            }
        finally:
            await connection.close()
    await db.close_connection_pool()
    await db.start_connection_pool(min_size=0, max_size=4)
    return out
