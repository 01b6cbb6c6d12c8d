"""The reports and the reoffending analysis contract monitors ask for.

Reports: the quarterly table (referrals, returns, contact, engagement, starts
and completions per UK financial quarter), referral quality per agency, and
what victims/survivors say, in aggregate. Each is one SQL aggregate
(``analysis.queries``) and a little arithmetic.

The reoffending analysis: does the programme reduce reoffending, and how sure
can we be? Grouping by programme status (engaged, completed) from the referral
date flatters the programme: someone had to stay offence-free long enough to
engage or complete (immortal-time bias). That naive comparison is reported,
because it is what councils publish, beside two bias-aware ones: status as a
time-varying covariate in a Cox model, and a landmark analysis.

The cohort: one row per accepted referral. Time origin is the referral's
received date; the event is the person's first police-recorded domestic-abuse
incident strictly after it. Only what was known by the data cut-off (``as_of``)
counts: milestones and incidents after it are ignored, and referrals received
on or after it have no follow-up yet.

Before and after: police-recorded incidents in equal windows before and after
referral. A crude comparison, reported because commissioners ask for it:
referrals follow an incident, so incidents are at a peak just before referral
and would fall afterwards even with no programme at all (regression to the
mean). The survival analysis is the honest measure; this shows the raw counts
beside it.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import msgspec
import numpy as np
import pandas as pd
from scipy.stats import binomtest

from analysis import adjusted as adjusted_comparison
from analysis import cohort_read, queries, schemas
from analysis.proportions import (
    WITHHELD,
    is_small,
    rate_ratio,
    secondary_suppression,
    suppressed,
    wilson,
)
from analysis.rules import (
    COVARIATES,
    NOT_RECORDED,
    REFERENCE_LEVELS,
    STATUS_GROUPS,
    AnalysisRequest,
    CutOff,
    landmark_for,
    resolve_landmark,
)
from analysis.rules import data_cut_off as rules_cut_off
from analysis.schemas import BeforeAfter
from analysis.survival import AnalysisError, cox, kaplan_meier, logrank, time_varying_cox
from outcomes.schemas import FeedbackCell, FeedbackReport
from outcomes.tables import Stage
from programme.delivery.rules import DEFAULT_RULE
from programme.delivery.services import DEFAULT_PROGRAMME, waiting_summary
from programme.platform import database
from programme.platform.audit import services as audit
from programme.platform.audit.schemas import Actor
from programme.platform.locked_quarters import services as locked_quarters
from programme.platform.quarters import Quarter, quarters_between
from programme.platform.tables import AuditAction, RecordType
from programme.platform.threads import collector_paused, off_loop
from referrals.rules import whole_years

QUARTERLY_NOTES = [
    "Each column counts the events dated in that quarter: a person who started in one "
    "quarter may complete in a later one.",
    "referrals = accepted + returned (refused at the door: no consent, incomplete, inappropriate); "
    "a referral fixed and sent again in its quarter counts once.",
    "reported: 'reported' for a quarter an admin has locked as reported; 'revised since "
    "reported' once a write has landed in it after that (each audited with its reason).",
    "Completion rate = completed / started over the range; engagement rate = of referrals "
    "whose initial contact succeeded in the range, the share that engaged (the agreed "
    "definition). 95% Wilson intervals.",
]
QUALITY_NOTES = [
    "Per agency and the quarter the referral was received in. Returned referrals are counted "
    "once per reason they failed, so reasons can add up to more than 'returned'.",
    "A referral refused and sent again, fixed, by the same agency in the same quarter is one "
    "referral: the resubmission replaces the return, so each refused person counts once.",
    "mean_quality_score: share of the useful optional details given, accepted referrals only.",
    "share_engaged: of the accepted referrals, the share that went on to engage (so far).",
]

QUARTERLY_COLUMNS = (
    "quarter",
    "referrals",
    "accepted",
    "returned",
    "contacted",
    "engaging",
    "started",
    "completed",
    "disengaged",
    "withdrawn",
    "closed",
    "reported",
)

COUNTED = QUARTERLY_COLUMNS[:-1]
"""The columns the SQL counts (all but ``reported``)."""


BY = ("agency", "local_authority")
"""What the reports can be broken down by, beside the programme as a whole."""

SUPPRESSION_NOTE = (
    "Counts from 1 to {below} are shown as '<{threshold}' (INSPIRE_SUPPRESS_BELOW), and a "
    "rate or share is withheld where it would reveal such a count. Totals are of the real "
    "counts; where a total would let a '<{threshold}' be worked out by subtracting the rest, "
    "another count is withheld too and shown as '[c]'."
)


def suppression_note(threshold: int) -> list[str]:
    if threshold <= 1:
        return []
    return [SUPPRESSION_NOTE.format(below=threshold - 1, threshold=threshold)]


@dataclass(frozen=True)
class Rate:
    numerator: int | str
    denominator: int | str
    """Published: '<N' for 1 to N-1 (the suppression threshold)."""
    rate: float | None
    ci_low: float | None
    ci_high: float | None


@dataclass(frozen=True)
class GroupRates:
    group: str
    completion_rate: Rate
    engagement_rate: Rate


@dataclass(frozen=True)
class QuarterlyReport:
    rows: list[dict[str, Any]]
    """One per quarter in the range, then 'Total'; by agency or local authority, each
    group's quarters and its 'Total' (the group in the column named as ``by``), then the
    whole programme's 'Total' (group 'All')."""
    completion_rate: Rate
    """Completed / started, over the range (the progress report's 55%)."""
    engagement_rate: Rate
    """Of referrals whose initial contact succeeded in the range, the share that engaged."""
    by: str | None = None
    group_rates: list[GroupRates] = dataclasses.field(default_factory=list)
    """Each group's two rates (empty for the programme as a whole)."""
    suppression_threshold: int = 0
    """Counts from 1 to this minus one are published as '<threshold' (0: none hidden yet)."""


def _rate(numerator: int, denominator: int) -> Rate:
    if denominator == 0:
        return Rate(numerator, 0, None, None, None)
    result = wilson(min(numerator, denominator), denominator)
    return Rate(numerator, denominator, numerator / denominator, result.ci_low, result.ci_high)


def _check_by(by: str | None) -> None:
    if by is not None and by not in BY:
        raise ValueError(f"reports break down by one of {BY}, not {by!r}")


async def quarterly(first: Quarter, last: Quarter, by: str | None = None) -> QuarterlyReport:
    """The quarterly table, for the programme or per agency or local authority; the real
    counts (``publish_quarterly`` makes them fit to publish)."""
    _check_by(by)
    if by is not None:
        return await _quarterly_by(first, last, by)
    quarters = quarters_between(first, last)
    async with database.connection() as connection:
        records = await connection.fetch(
            queries.QUARTERLY_SQL, first.first_day, last.last_day, [q.label for q in quarters]
        )
    marks = await locked_quarters.marks_between(first.first_day, last.last_day)
    rows = [
        {
            **{column: record[column] for column in COUNTED},
            "reported": marks.get(record["quarter"], ""),
        }
        for record in records
    ]
    total = _total(rows, {"quarter": "Total"})
    cohort = records[0] if records else None
    return QuarterlyReport(
        rows=[*rows, total],
        completion_rate=_rate(total["completed"], total["started"]),
        engagement_rate=_rate(
            cohort["cohort_engaged"] if cohort else 0, cohort["cohort_contacted"] if cohort else 0
        ),
    )


def _total(rows: list[dict[str, Any]], key: dict[str, str]) -> dict[str, Any]:
    total: dict[str, Any] = dict(key)
    for column in COUNTED[1:]:
        total[column] = sum(row[column] for row in rows)
    total["reported"] = ""
    return total


async def _quarterly_by(first: Quarter, last: Quarter, by: str) -> QuarterlyReport:
    labels = [q.label for q in quarters_between(first, last)]
    async with database.connection() as connection:
        records = await connection.fetch(
            queries.QUARTERLY_BY_SQL[by], first.first_day, last.last_day
        )
        cohorts = await connection.fetch(queries.COHORT_BY_SQL[by], first.first_day, last.last_day)
    marks = await locked_quarters.marks_between(first.first_day, last.last_day)
    counted = {(r["grp"], r["quarter"]): r for r in records}
    cohort = {r["grp"]: (r["engaged"], r["contacted"]) for r in cohorts}
    rows: list[dict[str, Any]] = []
    group_rates = []
    for group in sorted({r["grp"] for r in records} | set(cohort)):
        own = []
        for label in labels:
            record = counted.get((group, label))
            own.append(
                {
                    by: group,
                    "quarter": label,
                    **{c: record[c] if record else 0 for c in COUNTED[1:]},
                    "reported": marks.get(label, ""),
                }
            )
        total = _total(own, {by: group, "quarter": "Total"})
        rows.extend([*own, total])
        engaged, contacted = cohort.get(group, (0, 0))
        group_rates.append(
            GroupRates(
                group, _rate(total["completed"], total["started"]), _rate(engaged, contacted)
            )
        )
    whole = _total([r for r in rows if r["quarter"] == "Total"], {by: "All", "quarter": "Total"})
    engaged = sum(e for e, _ in cohort.values())
    contacted = sum(c for _, c in cohort.values())
    return QuarterlyReport(
        rows=[*rows, whole],
        completion_rate=_rate(whole["completed"], whole["started"]),
        engagement_rate=_rate(engaged, contacted),
        by=by,
        group_rates=group_rates,
    )


def publish_rate(rate: Rate, threshold: int, withheld: bool = False) -> Rate:
    """A rate as it may be published: its counts suppressed, and the rate and interval
    withheld whenever the numerator, the denominator or their difference is small, or
    (``withheld``) one of its counts is withheld from the table it comes from."""
    if not isinstance(rate.numerator, int) or not isinstance(rate.denominator, int):
        return rate  # already published
    numerator, denominator = rate.numerator, rate.denominator
    if withheld or any(
        is_small(c, threshold) for c in (numerator, denominator, denominator - numerator)
    ):
        return Rate(
            _published(numerator, threshold, withheld),
            _published(denominator, threshold, withheld),
            None,
            None,
            None,
        )
    return rate


def _published(count: int, threshold: int, withheld: bool) -> int | str:
    """A count as published: '<threshold' when small, '[c]' when withheld beside one."""
    if is_small(count, threshold):
        return suppressed(count, threshold)
    return WITHHELD if withheld else count


def _quarterly_sums(
    rows: list[dict[str, Any]], by: str | None
) -> tuple[list[int], list[tuple[int | None, list[int]]], dict[tuple[int, str], int]]:
    """The quarterly table's counts in one list, and the sums that hold between them: each
    row's referrals are its accepted plus its returned; each 'Total' its quarters'; by
    group, the whole programme's total its groups' totals, and each quarter's groups add up
    to the programme's quarter (published in the report without ``by``)."""
    columns = COUNTED[1:]
    position: dict[tuple[int, str], int] = {}
    counts: list[int] = []
    for r, row in enumerate(rows):
        for column in columns:
            position[(r, column)] = len(counts)
            counts.append(row[column])
    sums: list[tuple[int | None, list[int]]] = [
        (position[(r, "referrals")], [position[(r, "accepted")], position[(r, "returned")]])
        for r in range(len(rows))
    ]
    body = rows[:-1] if by is not None else rows
    block: list[int] = []
    totals: list[int] = []
    by_quarter: dict[str, list[int]] = {}
    for r, row in enumerate(body):
        if row["quarter"] != "Total":
            block.append(r)
            by_quarter.setdefault(row["quarter"], []).append(r)
            continue
        for column in columns:
            sums.append((position[(r, column)], [position[(q, column)] for q in block]))
        totals.append(r)
        block = []
    if by is not None:
        whole = len(rows) - 1
        for column in columns:
            sums.append((position[(whole, column)], [position[(t, column)] for t in totals]))
            for members in by_quarter.values():
                sums.append((None, [position[(q, column)] for q in members]))
    return counts, sums, position


def publish_quarterly(report: QuarterlyReport, threshold: int) -> QuarterlyReport:
    """The quarterly report as it may be published: no count from 1 to ``threshold`` - 1,
    and none that would let one be worked out by subtraction (``secondary_suppression``):
    those are shown as '[c]'. A rate is withheld when one of its counts is."""
    counts, sums, position = _quarterly_sums(report.rows, report.by)
    secondary = secondary_suppression(counts, sums, threshold)

    def withheld(r: int, column: str) -> bool:
        return position[(r, column)] in secondary

    rows = [
        {
            k: _published(v, threshold, withheld(r, k)) if k in COUNTED[1:] else v
            for k, v in row.items()
        }
        for r, row in enumerate(report.rows)
    ]
    whole = len(report.rows) - 1
    group_totals = [
        r
        for r, row in enumerate(report.rows[:-1] if report.by else [])
        if row["quarter"] == "Total"
    ]

    def rate_withheld(r: int) -> bool:
        return withheld(r, "completed") or withheld(r, "started")

    return dataclasses.replace(
        report,
        rows=rows,
        completion_rate=publish_rate(report.completion_rate, threshold, rate_withheld(whole)),
        engagement_rate=publish_rate(report.engagement_rate, threshold),
        group_rates=[
            GroupRates(
                g.group,
                publish_rate(g.completion_rate, threshold, rate_withheld(r)),
                publish_rate(g.engagement_rate, threshold),
            )
            for g, r in zip(report.group_rates, group_totals, strict=True)
        ],
        suppression_threshold=threshold,
    )


async def published_quarterly(report: QuarterlyReport, threshold: int) -> QuarterlyReport:
    """``publish_quarterly`` off the event loop: its check that no small count can be worked
    out solves linear programmes (about a second for forty agencies over five years of
    small counts)."""
    return await off_loop(publish_quarterly, report, threshold)


async def published_quality(rows: list[dict[str, Any]], threshold: int) -> list[dict[str, Any]]:
    """``publish_quality`` off the event loop, as ``published_quarterly``."""
    return await off_loop(publish_quality, rows, threshold)


async def record_report_export(
    actor: Actor, report: str, first: Quarter | None, last: Quarter | None, **more: Any
) -> None:
    """Aggregate reports name no one, but who took which figures is still kept.

    Over HTTP, on the web pages and at the command line alike; ``more`` says how (the
    format, the breakdown)."""
    details = {
        "from": first.label if first else None,
        "to": last.label if last else None,
        **{k: v for k, v in more.items() if v is not None},
    }
    await audit.record(actor, AuditAction.export, RecordType.report, report, details)


async def record_analysis_export(actor: Actor, group_by: str | None) -> None:
    """Who ran the reoffending analysis, and grouped how (HTTP and command line alike)."""
    details = {"group_by": group_by}
    await audit.record(actor, AuditAction.export, RecordType.analysis, "reoffending", details)


QUALITY_COUNTS = ("received", "accepted", "returned", "engaged")


async def referral_quality(
    first: Quarter, last: Quarter, by: str = "agency", per_quarter: bool = True
) -> list[dict[str, Any]]:
    """Per agency (or local authority) and quarter: received, accepted, returned by reason,
    quality, engagement. The real counts (``publish_quality`` makes them fit to publish).
    Without ``per_quarter``, one row per group over the whole range (quarter 'Total')."""
    _check_by(by)
    if not per_quarter:
        statement = queries.QUALITY_OVER_RANGE_SQL[by]
    elif by == "agency":
        statement = queries.QUALITY_SQL
    else:
        statement = queries.QUALITY_BY_LOCAL_AUTHORITY_SQL
    async with database.connection() as connection:
        records = await connection.fetch(statement, first.first_day, last.last_day)
    rows = []
    for record in records:
        row = {k: record[k] for k in (by, "quarter", "received", "accepted", "returned")}
        row["reasons"] = {reason: record[reason] for reason in queries.REASONS}
        mean = record["mean_quality_score"]
        row["mean_quality_score"] = None if mean is None else round(float(mean), 1)
        row["engaged"] = record["engaged"]
        row["share_engaged"] = (
            None if record["accepted"] == 0 else record["engaged"] / record["accepted"]
        )
        rows.append(row)
    return rows


def publish_quality(rows: list[dict[str, Any]], threshold: int) -> list[dict[str, Any]]:
    """Referral quality as it may be published: counts (reasons too) from 1 to
    ``threshold`` - 1 as '<threshold', and any count that would give one away by
    subtraction as '[c]' (``secondary_suppression``: each row's received are its accepted
    plus its returned; each quarter's groups add up to the programme's referrals in the
    quarterly report); the share engaged withheld where it would reveal one. The mean
    quality score is a score, not a count of people, and stays. Reasons are not a sum (a
    return counts once per reason) and are suppressed one by one."""
    fresh = [r for r in rows if isinstance(r["accepted"], int)]
    added = ("received", "accepted", "returned")
    position = {
        (r, k): i for i, (r, k) in enumerate((r, k) for r in range(len(fresh)) for k in added)
    }
    counts = [fresh[r][k] for r in range(len(fresh)) for k in added]
    sums: list[tuple[int | None, list[int]]] = [
        (position[(r, "received")], [position[(r, "accepted")], position[(r, "returned")]])
        for r in range(len(fresh))
    ]
    by_quarter: dict[str, list[int]] = {}
    for r, row in enumerate(fresh):
        by_quarter.setdefault(row["quarter"], []).append(r)
    for members in by_quarter.values():
        for k in added:
            sums.append((None, [position[(r, k)] for r in members]))
    secondary = secondary_suppression(counts, sums, threshold)
    out, r = [], 0
    for row in rows:
        if not isinstance(row["accepted"], int):
            out.append(row)  # already published
            continue
        withheld = {k for k in added if position[(r, k)] in secondary}
        r += 1
        accepted, engaged = row["accepted"], row["engaged"]
        hidden = "accepted" in withheld or any(
            is_small(c, threshold) for c in (accepted, engaged, accepted - engaged)
        )
        out.append(
            {
                **{
                    k: _published(v, threshold, k in withheld) if k in QUALITY_COUNTS else v
                    for k, v in row.items()
                },
                "reasons": {k: suppressed(v, threshold) for k, v in row["reasons"].items()},
                "share_engaged": None if hidden else row["share_engaged"],
            }
        )
    return out


IMPROVED = ("stopped", "reduced")


async def victim_feedback_report(
    first: Quarter | None, last: Quarter | None, threshold: int, by: str | None = None
) -> FeedbackReport:
    """Per quarter (of collection) and stage: responses, and the share saying the abuse
    stopped or reduced, with a 95% Wilson interval. Counts of 1 to threshold-1 are
    published as '<threshold', and a share is withheld whenever it would reveal one.

    By agency or local authority (of the perpetrator's referral), one row per group,
    quarter and stage."""
    _check_by(by)
    start = first.first_day if first else date.min
    end = last.last_day if last else date.max
    if by is None:
        rows = await database.fetch(queries.FEEDBACK_SQL, start, end)
    else:
        rows = await database.fetch(queries.FEEDBACK_BY_SQL[by], start, end)
    stage_order = {stage.value: i for i, stage in enumerate(Stage)}
    rows = sorted(rows, key=lambda r: (r.get("grp") or "", r["first_day"], stage_order[r["stage"]]))
    withheld = await off_loop(_feedback_withheld, rows, threshold, by is not None)
    cells = [
        _cell(
            r["quarter"], r["stage"], r["responded"], r["improved"], threshold, r.get("grp"),
            withheld=(("responded", i) in withheld, ("improved", i) in withheld),
        )
        for i, r in enumerate(rows)
    ]  # fmt: skip
    total = sum(r["responded"] for r in rows)
    improved = sum(r["improved"] for r in rows)
    overall = _cell(
        "all", "all", total, improved, threshold,
        withheld=(("responded", -1) in withheld, ("improved", -1) in withheld),
    )  # fmt: skip
    return FeedbackReport(
        rows=cells,
        total_responded=overall.responded,
        total_stopped_or_reduced=overall.stopped_or_reduced,
        total_share=overall.share,
        total_ci_low=overall.ci_low,
        total_ci_high=overall.ci_high,
        suppression_threshold=threshold,
        notes=[
            "Share = stopped or reduced / responded, per quarter the feedback was collected in.",
            f"Counts from 1 to {threshold - 1} are shown as '<{threshold}'; a share that "
            "would reveal such a count is withheld. A count that would let one be worked "
            "out from the total by subtraction is withheld too, shown as '[c]'.",
            "Intervals are 95% Wilson score intervals.",
            *([f"group: the {by.replace('_', ' ')} of the perpetrator's referral."] if by else []),
        ],
        by=by,
    )


def _feedback_withheld(rows: list[Any], threshold: int, grouped: bool) -> set[tuple[str, int]]:
    """The feedback counts to withhold beside the small ones (``secondary_suppression``),
    as (count, row) with row -1 for the overall total: the overall responses and
    improvements are their rows' sums and, by group, each quarter and stage's groups add
    up to the programme's (published without a breakdown)."""
    names = ("responded", "improved")
    counts = [r[name] for r in rows for name in names]
    counts += [sum(r[name] for r in rows) for name in names]
    overall = {name: len(rows) * 2 + n for n, name in enumerate(names)}
    sums: list[tuple[int | None, list[int]]] = [
        (overall[name], [i * 2 + n for i in range(len(rows))]) for n, name in enumerate(names)
    ]
    if grouped:
        cells: dict[tuple[str, str], list[int]] = {}
        for i, r in enumerate(rows):
            cells.setdefault((r["quarter"], r["stage"]), []).append(i)
        for members in cells.values():
            for n in range(len(names)):
                sums.append((None, [i * 2 + n for i in members]))
    secondary = secondary_suppression(counts, sums, threshold)
    withheld = set()
    for position in secondary:
        row, n = divmod(position, 2)
        withheld.add((names[n], -1 if row == len(rows) else row))
    return withheld


def _cell(
    quarter: str,
    stage: str,
    responded: int,
    improved: int,
    threshold: int,
    group: str | None = None,
    withheld: tuple[bool, bool] = (False, False),
) -> FeedbackCell:
    hidden = any(withheld) or any(
        is_small(n, threshold) for n in (responded, improved, responded - improved)
    )
    share = None if hidden or responded == 0 else wilson(improved, responded)
    return FeedbackCell(
        quarter=quarter,
        stage=stage,
        responded=_published(responded, threshold, withheld[0]),
        stopped_or_reduced=_published(improved, threshold, withheld[1]),
        share=None if share is None else share.share,
        ci_low=None if share is None else share.ci_low,
        ci_high=None if share is None else share.ci_high,
        group=group,
    )


def report_cut_off(last: Quarter | None, today: date) -> date:
    """The last day a report's figures can count: its last quarter's end, or today."""
    return today if last is None else min(last.last_day, today)


@dataclass(frozen=True)
class TrendPoint:
    quarter: str
    referrals: int | str
    started: int | str
    completed: int | str


@dataclass(frozen=True)
class WaitingSummary:
    count: int | str
    median_days_waiting: float | None
    longest_days_waiting: int | None
    """Both withheld when the count is small: with one person waiting they are that
    person's wait."""


@dataclass(frozen=True)
class Dashboard:
    """Everything a contract monitor's dashboard shows for a range of quarters, already
    published (no count from 1 to ``suppression_threshold`` - 1): one object, so the
    quarterly pack shows the same figures."""

    first: Quarter
    last: Quarter
    generated_on: date
    data_cut_off: date
    suppression_threshold: int
    quarterly: QuarterlyReport
    quarterly_notes: list[str]
    trend: list[TrendPoint]
    """Referrals, starts and completions per quarter (the quarterly rows, no total)."""
    quality: list[dict[str, Any]]
    """Referral quality per agency over the whole range (quarter 'Total')."""
    quality_notes: list[str]
    waiting: WaitingSummary
    feedback: FeedbackReport


def trend_points(report: QuarterlyReport) -> list[TrendPoint]:
    """Referrals, starts and completions per quarter of a published quarterly report."""
    return [
        TrendPoint(r["quarter"], r["referrals"], r["started"], r["completed"])
        for r in report.rows
        if r["quarter"] != "Total"
    ]


def _dashboard_key(first: Quarter, last: Quarter, today: date, threshold: int) -> str:
    """Everything the published dashboard depends on besides the data: its quarters, the
    day (the waiting list's days count to it) and the suppression threshold. Never equal
    to an analysis request's key (those have no ``view``)."""
    fields = {
        "view": "dashboard",
        "first": first.label,
        "last": last.label,
        "today": today.isoformat(),
        "threshold": threshold,
    }
    return msgspec.json.encode(fields).decode()


async def dashboard(first: Quarter, last: Quarter, today: date, threshold: int) -> Dashboard:
    """The monitors' dashboard: the quarterly table and rates, the trend, referral quality
    per agency, the waiting list's counts and victims' feedback, for ``first`` to ``last``.

    Kept in the reoffending analysis's results cache (``analysis_result``) under the
    data version, so a second view with nothing written meanwhile is one indexed read
    (at a million referrals its figures take seconds to work out). Every table it reads
    bumps the version on any write (the triggers of migrations
    ``analysis_2026_11_27t17_40_00`` and ``analysis_2026_11_27t20_04_40``), and the
    version is read before anything it covers, as the analysis does."""
    async with database.connection() as connection:
        version = int(await connection.fetchval(queries.DATA_VERSION_SQL))
        key = _dashboard_key(first, last, today, threshold)
        stored = await connection.fetchval(queries.CACHED_RESULT_SQL, version, key)
    if stored is not None:
        DASHBOARD_CACHE.served += 1
        return msgspec.msgpack.decode(stored, type=Dashboard)
    board = await _dashboard(first, last, today, threshold)
    DASHBOARD_CACHE.computed += 1
    async with database.connection() as connection:
        await connection.execute(
            queries.STORE_RESULT_SQL, version, key, msgspec.msgpack.encode(board)
        )
    return board


async def _dashboard(first: Quarter, last: Quarter, today: date, threshold: int) -> Dashboard:
    if database.engine().transaction_exists():
        # A transaction has one connection: its statements go one after another.
        counts = await quarterly(first, last)
        quality_rows = await referral_quality(first, last, per_quarter=False)
        waiting = await waiting_summary(today)
        feedback = await victim_feedback_report(first, last, threshold)
    else:
        # Each part on a pooled connection of its own, all at once: at a million
        # referrals each is a scan of its own tables taking a few hundred milliseconds,
        # and the database works on them side by side.
        counts, quality_rows, waiting, feedback = await asyncio.gather(
            quarterly(first, last),
            referral_quality(first, last, per_quarter=False),
            waiting_summary(today),
            victim_feedback_report(first, last, threshold),
        )
    report = await published_quarterly(counts, threshold)
    quality = await published_quality(quality_rows, threshold)
    small = is_small(waiting.count, threshold)
    return Dashboard(
        first=first,
        last=last,
        generated_on=today,
        data_cut_off=report_cut_off(last, today),
        suppression_threshold=threshold,
        quarterly=report,
        quarterly_notes=[*QUARTERLY_NOTES, *suppression_note(threshold)],
        trend=trend_points(report),
        quality=quality,
        quality_notes=[*QUALITY_NOTES, *suppression_note(threshold)],
        waiting=WaitingSummary(
            count=suppressed(waiting.count, threshold),
            median_days_waiting=None if small else waiting.median_days_waiting,
            longest_days_waiting=None if small else waiting.longest_days_waiting,
        ),
        feedback=feedback,
    )


async def programme_weeks() -> int:
    """The programme's length in its settings (the commissioned default until set)."""
    async with database.connection() as connection:
        weeks = await connection.fetchval(queries.PROGRAMME_WEEKS_SQL, DEFAULT_PROGRAMME)
    return DEFAULT_RULE.weeks if weeks is None else int(weeks)


COPY_NULL = "\\N"
"""How a text COPY marks a missing value (PostgreSQL's own mark). The cohort itself comes
as a binary COPY (``cohort_read``); the tests read the old derivation as text with it."""


async def load_cohort(as_of: date) -> tuple[pd.DataFrame, int]:
    """The cohort as of the cut-off, in referral order, and how many referrals have no
    follow-up yet.

    One binary COPY of fixed-length rows decoded into numpy columns as it arrives
    (``cohort_read``), then the agencies' names and the text behind a handful of hashes:
    at a million referrals, a CSV of uuids and text cells took seconds to parse into
    objects and most of the analysis's memory. The person is a whole number per person
    (the clustered errors only need to tell people apart). All in one snapshot, so the
    names, the rows and the count agree."""
    stream = cohort_read.CohortStream()

    async def keep(data: bytes) -> None:
        stream.feed(data)

    async with database.connection() as connection:
        # Its first statement: the transaction ``connection()`` began reads one snapshot.
        await connection.execute(queries.ONE_SNAPSHOT_SQL)
        agencies = await connection.fetch(queries.AGENCIES_SQL)
        await connection.copy_from_query(
            queries.COHORT_COPY_SQL,
            as_of,
            output=keep,
            format="binary",
        )
        columns = stream.columns()
        rows = cohort_read.exemplar_rows(columns)
        named = await connection.fetch(
            queries.COHORT_NAMES_SQL,
            [cohort_read.uuid_text(columns["referral"][row]) for row in rows],
        )
        excluded = await connection.fetchval(queries.NO_FOLLOW_UP_YET, as_of)
    names = {
        name: {row[f"{name}_hash"]: row[name] for row in named if row[name] is not None}
        for name in cohort_read.HASHED
    }
    frame = await off_loop(
        _frame,
        columns,
        [agency["id"].int for agency in agencies],
        [str(agency["name"]) for agency in agencies],
        names,
    )
    return frame, int(excluded)


def _frame(
    columns: dict[str, np.ndarray],
    agency_ids: list[int],
    agencies: list[str],
    names: dict[str, dict[int, str]],
) -> pd.DataFrame:
    columns["agency"] = cohort_read.agency_positions(columns["agency"], agency_ids)
    # Only referrals of a known agency, as the join to ``agency`` kept them before (the
    # foreign key makes it every one).
    known = columns["agency"] > 0
    order = cohort_read.referral_order(columns["referral"])
    if order is not None or not known.all():
        chosen = np.arange(len(known)) if order is None else order
        chosen = chosen[known[chosen]]
        for name in list(columns):
            columns[name] = columns[name][chosen]
    return cohort_read.frame(columns, agencies, names, queries.COHORT_COLUMNS)


def follow_up(frame: pd.DataFrame, horizon_days: int) -> pd.DataFrame:
    """Add duration (days), event (0/1), and days to engagement and completion.

    Each person is followed for min(horizon, the days from referral to the cut-off the
    cohort was read at) days; a reoffence
    within that counts as the event, anything later is censored.
    """
    # A shallow copy: the new and retyped columns are the copy's own, the rest are shared
    # with the cohort read (a deep copy held the whole cohort twice at the peak).
    out = frame.copy(deep=False)
    available = out["days_available"].to_numpy(dtype=float)
    limit = np.minimum(float(horizon_days), available)
    to_event = out["days_to_reoffence"].to_numpy(dtype=float)
    event = ~np.isnan(to_event) & (to_event <= limit)
    out["duration"] = np.where(event, to_event, limit)
    out["event"] = event.astype(int)
    for status in STATUS_GROUPS:
        out[f"days_to_{status}"] = out[f"days_to_{status}"].astype(float)
    if "born_year" in out:  # read from the database: the dates come in parts
        out["age_at_referral"] = whole_years(
            out["born_year"].to_numpy(),
            out["born_month_day"].to_numpy(),
            out["received_year"].to_numpy(),
            out["received_month_day"].to_numpy(),
        )
    else:
        born, received = _year_and_day(out["date_of_birth"]), _year_and_day(out["received_on"])
        out["age_at_referral"] = whole_years(*born, *received)
    return out


def _year_and_day(days: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Year and month * 100 + day of each date, as ``whole_years`` takes them."""
    years = np.fromiter((d.year for d in days), dtype=np.int64, count=len(days))
    month_days = np.fromiter((d.month * 100 + d.day for d in days), dtype=np.int64, count=len(days))
    return years, month_days


async def before_after(window_days: int, as_of: date) -> BeforeAfter:
    last_received = as_of - timedelta(days=window_days)
    async with database.connection() as connection:
        row = await connection.fetchrow(queries.BEFORE_AFTER_SQL, last_received, window_days)
    discordant = row["stopped"] + row["started"]
    p = None if discordant == 0 else float(binomtest(row["stopped"], discordant, 0.5).pvalue)
    ratio = rate_ratio(row["incidents_after"], row["incidents_before"])
    return BeforeAfter(
        window_days=window_days,
        n=row["n"],
        incidents_before=row["incidents_before"],
        incidents_after=row["incidents_after"],
        any_before=row["any_before"],
        any_after=row["any_after"],
        mcnemar_p=p,
        rate_ratio=None if ratio is None else ratio.ratio,
        rate_ratio_ci_low=None if ratio is None else ratio.ci_low,
        rate_ratio_ci_high=None if ratio is None else ratio.ci_high,
    )


def group_labels(frame: pd.DataFrame, group_by: str) -> pd.Series:
    if group_by in STATUS_GROUPS:
        reached = frame[f"days_to_{group_by}"].notna()
        return reached.map({True: group_by, False: f"not {group_by}"})
    values = frame[group_by]
    if values.dtype == bool or set(values.dropna().unique()) <= {True, False}:
        values = values.map({True: "yes", False: "no"})
    return values.fillna(NOT_RECORDED).astype(str)


def _group_survival(frame: pd.DataFrame, labels: pd.Series, horizon: int) -> list[schemas.GroupOut]:
    out = []
    # The two columns the curves need, not the whole frame copied once per group.
    durations, events, groups = (
        frame["duration"].to_numpy(),
        frame["event"].to_numpy(),
        labels.to_numpy(),
    )
    for label in sorted(labels.unique()):
        part = groups == label
        result = kaplan_meier(durations[part], events[part], horizon)
        out.append(
            schemas.GroupOut(
                group=str(label),
                n=result.n,
                events=result.events,
                survival=result.survival,
                ci_low=result.ci_low,
                ci_high=result.ci_high,
                rmst=result.rmst,
            )
        )
    return out


def design_matrix(
    frame: pd.DataFrame, names: tuple[str, ...]
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Numeric covariates; categorical ones dummy-coded against a stated reference level."""
    columns: dict[str, pd.Series] = {}
    references: dict[str, str] = {}
    for name in names:
        if name in REFERENCE_LEVELS:
            reference = REFERENCE_LEVELS[name]
            references[name] = reference
            values = frame[name].astype("object")
            for level in sorted(v for v in values.dropna().unique() if v != reference):
                columns[f"{name}={level}"] = (values == level).astype(float).where(values.notna())
        else:
            columns[name] = frame[name].astype(float)
    return pd.DataFrame(columns, index=frame.index), references


def _terms(terms) -> list[schemas.TermOut]:
    return [
        schemas.TermOut(
            name=t.name,
            coef=t.coef,
            hazard_ratio=t.hazard_ratio,
            ci_low=t.ci_low,
            ci_high=t.ci_high,
            p=t.p,
        )
        for t in terms
    ]


EVENTS_PER_TERM = 10
"""Fewer reoffences than this per model term and estimates are unstable and over-fitted
(Peduzzi et al. 1995): the model is still reported, with a warning."""


def _few_events_per_term(model: str, events: int, terms: int, notes: list[str]) -> None:
    if terms and events < EVENTS_PER_TERM * terms:
        notes.append(
            f"{model} has fewer than {EVENTS_PER_TERM} reoffences per term ({terms} terms): "
            f"its estimates may be unstable and over-fitted; read them with caution."
        )


def group_reference(group_by: str, labels: pd.Series) -> str:
    """The level the others are compared with: fixed, whatever the data holds.

    Not the alphabetically first level, which would flip with usage (a cohort with no
    'high' risk would compare against 'medium'): status groups against 'not <status>',
    gender and risk level against their stated reference (as covariates), yes/no
    fields against 'no'. Only a level the data lacks falls back to the first present.
    """
    present = sorted(labels.unique())
    stated = {
        **{status: f"not {status}" for status in STATUS_GROUPS},
        **REFERENCE_LEVELS,
    }.get(group_by, "no" if set(present) <= {"yes", "no", NOT_RECORDED} else None)
    return stated if stated is not None and stated in present else str(present[0])


def _cox(
    frame: pd.DataFrame, labels: pd.Series | None, request: AnalysisRequest, notes: list[str]
) -> schemas.CoxOut | None:
    matrix, references = design_matrix(frame, request.covariates)
    if labels is not None and request.group_by not in request.covariates:
        # A group-by field also named as a covariate is entered once, as the covariate.
        reference = group_reference(request.group_by or "", labels)
        references[request.group_by or "group"] = reference
        for level in sorted(labels.unique()):
            if level != reference:
                matrix[f"{request.group_by}={level}"] = (labels == level).astype(float)
    if matrix.shape[1] == 0:
        return None
    complete = matrix.notna().all(axis=1)
    if request.group_by in STATUS_GROUPS:
        same = (
            "The same people as 'time_varying' (the immortal-time corrected Cox model), so the "
            "naive and the corrected hazard ratios compare like with like."
        )
    else:
        same = "'groups' and 'logrank' are on everyone with follow-up."
    population = _population(
        frame.loc[complete, ["event"]],  # all a population counts: not the frame copied
        _missing_covariates(frame, request.covariates, complete),
        f"People with every covariate recorded. {same}",
    )
    # Only the complete cases from here: the whole design matrix is let go.
    matrix = matrix[complete]
    try:
        model = cox(
            matrix,
            frame.loc[complete, "duration"],
            frame.loc[complete, "event"],
            clusters=frame.loc[complete, "person"].to_numpy() if "person" in frame else None,
        )
    except AnalysisError as exc:
        if request.covariates:
            raise
        notes.append(f"No Cox model: {exc}.")
        return None
    _few_events_per_term("The Cox model ('cox')", model.events, len(model.terms), notes)
    return schemas.CoxOut(
        covariates=_terms(model.terms),
        concordance=model.concordance,
        ph_test=[
            schemas.PhTestOut(name=t.name, chisq=t.chisq, df=t.df, p=t.p)
            for t in (*model.ph_test.terms, model.ph_test.global_test)
        ],
        ph_test_transform=model.ph_test.transform,
        reference_levels=references,
        n=model.n,
        events=model.events,
        dropped_missing=int((~complete).sum()),
        population=population,
        standard_errors=(
            "robust (sandwich), clustered on the person: one person's referrals are not independent"
            if "person" in frame
            else "model-based"
        ),
    )


def _population(
    people: pd.DataFrame, dropped: list[tuple[str, int]], description: str
) -> schemas.PopulationOut:
    """Who a model is on: n, reoffences within the follow-up, and who was left out and why."""
    return schemas.PopulationOut(
        n=len(people),
        events=int(people["event"].sum()),
        dropped=[schemas.DroppedOut(reason, count) for reason, count in dropped if count],
        description=description,
    )


def _missing_covariates(
    frame: pd.DataFrame, names: tuple[str, ...], complete: pd.Series
) -> list[tuple[str, int]]:
    """Complete-case models leave out whoever lacks a covariate: say which covariates."""
    lacking = [name for name in names if frame[name].isna().any()]
    if not lacking:
        return []
    return [(f"missing a covariate ({', '.join(lacking)})", int((~complete).sum()))]


def intervals(frame: pd.DataFrame, status: str, covariates: pd.DataFrame) -> pd.DataFrame:
    """Split each person's follow-up at the day their status began (counting process form)."""
    start_status = frame[f"days_to_{status}"].to_numpy()
    duration = frame["duration"].to_numpy()
    event = frame["event"].to_numpy()
    ids = np.arange(len(frame))
    before = np.isnan(start_status) | (start_status >= duration)
    from_start = ~before & (start_status <= 0)
    split = ~before & ~from_start
    rows = [
        pd.DataFrame(
            {
                "id": ids[before],
                "start": 0.0,
                "stop": duration[before],
                "event": event[before],
                status: 0.0,
            }
        ),
        pd.DataFrame(
            {
                "id": ids[from_start],
                "start": 0.0,
                "stop": duration[from_start],
                "event": event[from_start],
                status: 1.0,
            }
        ),
        pd.DataFrame(
            {"id": ids[split], "start": 0.0, "stop": start_status[split], "event": 0, status: 0.0}
        ),
        pd.DataFrame(
            {
                "id": ids[split],
                "start": start_status[split],
                "stop": duration[split],
                "event": event[split],
                status: 1.0,
            }
        ),
    ]
    long = pd.concat(rows, ignore_index=True)
    extra = covariates.reset_index(drop=True)
    return long.join(extra, on="id")


def _landmark(
    frame: pd.DataFrame, status: str, landmark: int, horizon: int, notes: list[str]
) -> schemas.LandmarkOut:
    """Among people still followed and offence-free at the landmark, compare by status then."""
    at_risk = frame[frame["duration"] > landmark]
    reached = at_risk[f"days_to_{status}"] <= landmark
    labels = reached.map({True: status, False: f"not {status}"})
    shifted = at_risk.assign(duration=at_risk["duration"] - landmark)
    groups = _group_survival(shifted, labels, horizon - landmark)
    test = None
    if labels.nunique() > 1:
        result = logrank(shifted["duration"], shifted["event"], labels)
        test = schemas.LogRankOut(result.statistic, result.p, result.degrees_of_freedom)
    else:
        who = "everyone" if reached.all() else "no one"
        notes.append(
            f"No landmark comparison: of the people still followed and offence-free at day "
            f"{landmark}, {who} was {status} by then, so there is only one group to describe."
        )
    gone = frame[frame["duration"] <= landmark]
    population = _population(
        at_risk,
        [
            (f"reoffended by day {landmark}", int(gone["event"].sum())),
            (
                f"follow-up ended by day {landmark} (not followed to the landmark)",
                len(gone) - int(gone["event"].sum()),
            ),
        ],
        f"Everyone in 'groups' and 'logrank' (the naive comparison) still followed and "
        f"offence-free at day {landmark}; no covariate is used, so no one is left out for "
        f"missing data.",
    )
    return schemas.LandmarkOut(
        landmark_days=landmark,
        n=len(at_risk),
        groups=groups,
        logrank=test,
        population=population,
        follow_up_days=horizon - landmark,
        conditional=(
            f"Survival and RMST here are conditional: among people still followed and "
            f"offence-free at day {landmark}, the share not reoffended over the next "
            f"{horizon - landmark} days (to day {horizon}), and the offence-free days of those."
        ),
    )


def _landmark_cox(
    frame: pd.DataFrame, request: AnalysisRequest, landmark: int, notes: list[str]
) -> schemas.LandmarkCoxOut | None:
    """The landmark comparison as a hazard ratio with its 95% CI: from the landmark on,
    the status reached by then, adjusted for the covariates asked for.

    Like 'time_varying', it removes immortal-time bias (the status is fixed at the
    landmark, before the follow-up it is compared over) and adjusts for the measured
    covariates, nothing else: someone reaching the status after the landmark counts as
    not having it, which dilutes a real effect towards none.
    """
    status = request.group_by or ""
    at_risk = frame[frame["duration"] > landmark]
    matrix, references = design_matrix(at_risk, request.covariates)
    matrix.insert(0, status, (at_risk[f"days_to_{status}"] <= landmark).astype(float))
    references[status] = f"not {status} by day {landmark}"
    complete = matrix.notna().all(axis=1)
    if matrix.loc[complete, status].nunique() < 2:
        return None  # one group: the landmark comparison has said so
    people = at_risk[complete]
    try:
        model = cox(
            matrix[complete],
            people["duration"] - landmark,
            people["event"],
            clusters=people["person"].to_numpy() if "person" in people else None,
        )
    except AnalysisError as exc:
        notes.append(f"No landmark hazard ratio: {exc}.")
        return None
    _few_events_per_term("The landmark hazard-ratio model", model.events, len(model.terms), notes)
    return schemas.LandmarkCoxOut(
        covariates=_terms(model.terms),
        reference_levels=references,
        population=_population(
            people,
            _missing_covariates(at_risk, request.covariates, complete),
            f"People still followed and offence-free at day {landmark} with every covariate "
            f"recorded, compared by whether they were {status} by then, from day {landmark} "
            f"to day {request.horizon_days}.",
        ),
        standard_errors=(
            "robust (sandwich), clustered on the person" if "person" in people else "model-based"
        ),
    )


def _time_varying(
    frame: pd.DataFrame, request: AnalysisRequest, notes: list[str]
) -> schemas.TimeVaryingOut:
    status = request.group_by or ""
    matrix, _ = design_matrix(frame, request.covariates)
    complete = matrix.notna().all(axis=1)
    data = frame[complete]
    long = intervals(data, status, matrix[complete])
    population = _population(
        data,
        _missing_covariates(frame, request.covariates, complete),
        f"People with every covariate recorded: the same people as the naive Cox model "
        f"('cox'), so the two hazard ratios for {status} compare like with like.",
    )
    if not (long[status] == 1).any():
        notes.append(
            f"No one was {status} within the follow-up window, so the programme cannot be "
            f"compared without immortal-time bias on this data: only the naive figures exist, "
            f"and they should not be read as an effect of the programme."
        )
        return schemas.TimeVaryingOut(
            status=status, covariates=[], landmark=None, population=population
        )
    fitted: schemas.PopulationOut | None = population
    try:
        people = data["person"].to_numpy()[long["id"].to_numpy()] if "person" in data else None
        terms = _terms(time_varying_cox(long, [status, *matrix.columns], clusters=people))
        _few_events_per_term(
            "The time-varying Cox model", int(data["event"].sum()), len(terms), notes
        )
    except AnalysisError as exc:
        notes.append(f"No time-varying model: {exc}.")
        terms, fitted = [], None
    landmark = landmark_for(request)
    try:
        # On everyone, not the complete cases: the landmark comparison uses no covariate.
        landmark_out = _landmark(frame, status, landmark, request.horizon_days, notes)
        landmark_out = msgspec.structs.replace(
            landmark_out, cox=_landmark_cox(frame, request, landmark, notes)
        )
    except AnalysisError as exc:
        notes.append(f"No landmark analysis: {exc}.")
        landmark_out = None
    return schemas.TimeVaryingOut(
        status=status,
        covariates=terms,
        landmark=landmark_out,
        population=fitted,
        standard_errors=(
            "robust (sandwich), clustered on the person: one person's referrals are not independent"
            if "person" in frame
            else "model-based"
        ),
    )


async def analyse(
    request: AnalysisRequest, today: date, suppress_below: int
) -> schemas.ReoffendingOut:
    """Read the cohort, then fit every model off the event loop (seconds at scale), with the
    garbage collector paused (``threads.collector_paused``: its full collections over
    the cohort's objects stopped the event loop).

    Published with counts from 1 to ``suppress_below`` - 1 hidden (see ``publish``)."""
    with collector_paused():
        return await _analyse_cohort(request, today, suppress_below)


@dataclass
class CacheCounts:
    """How often this process answered the analysis from the results cache, and how
    often it had to compute it (for tests and the benchmark: a count, not a timing)."""

    served: int = 0
    computed: int = 0


RESULTS_CACHE = CacheCounts()


def _cache_key(request: AnalysisRequest, as_of: date) -> str:
    """Everything the unpublished result depends on besides the data: the resolved
    request and the cut-off (publishing, which depends on the threshold, comes after)."""
    fields = {**dataclasses.asdict(request), "as_of": as_of.isoformat()}
    return msgspec.json.encode({**fields, "covariates": list(request.covariates)}).decode()


async def _analyse_cohort(
    request: AnalysisRequest, today: date, suppress_below: int
) -> schemas.ReoffendingOut:
    # The version first, before anything it covers is read: a write committing meanwhile
    # can only make the result newer than its version, never older.
    async with database.connection() as connection:
        version = int(await connection.fetchval(queries.DATA_VERSION_SQL))
    cut_off = await data_cut_off(request.as_of, today)
    as_of = cut_off.as_of
    request = resolve_landmark(request, await programme_weeks())
    key = _cache_key(request, as_of)
    async with database.connection() as connection:
        stored = await connection.fetchval(queries.CACHED_RESULT_SQL, version, key)
    if stored is not None:
        RESULTS_CACHE.served += 1
        result = msgspec.msgpack.decode(stored, type=schemas.ReoffendingOut)
        return with_cut_off(publish(result, suppress_below), cut_off)
    raw, excluded = await load_cohort(as_of)
    if raw.empty:
        raise AnalysisError("no referral has any follow-up time by the data cut-off")
    crude = await before_after(request.horizon_days, as_of)
    result = await off_loop(_analyse, raw, excluded, crude, request, as_of)
    del raw
    RESULTS_CACHE.computed += 1
    async with database.connection() as connection:
        await connection.execute(
            queries.STORE_RESULT_SQL, version, key, msgspec.msgpack.encode(result)
        )
    return with_cut_off(publish(result, suppress_below), cut_off)


async def data_cut_off(asked: date | None, today: date) -> CutOff:
    """The cut-off asked for, else the latest police extract's day (``rules.data_cut_off``)."""
    async with database.connection() as connection:
        latest = await connection.fetchval(queries.LATEST_EXTRACT_SQL)
    return rules_cut_off(asked, latest, today)


def with_cut_off(result: schemas.ReoffendingOut, cut_off: CutOff) -> schemas.ReoffendingOut:
    """The analysis, saying where its cut-off came from and warning when it passes the data."""
    return msgspec.structs.replace(
        result,
        latest_extract=cut_off.latest_extract,
        warnings=[*result.warnings, *cut_off.warnings],
        notes=[cut_off.note, *result.notes],
    )


def _count(value: int | str) -> int | None:
    """A count not yet published, or None once it has been."""
    return value if isinstance(value, int) else None


def publish(result: schemas.ReoffendingOut, threshold: int) -> schemas.ReoffendingOut:
    """The analysis as it may be published: no count from 1 to ``threshold`` - 1.

    Counts (people, reoffences, numbers dropped, before/after incidents) are shown as
    '<threshold'. A group's survival, CI and RMST are withheld when its size, its
    reoffences or the number without one is small: for a small group the estimate is
    1 - k/n and gives k away. Hazard ratios and tests reveal no count and stay.
    """

    def count(value: int | str) -> int | str:
        raw = _count(value)
        return value if raw is None else suppressed(raw, threshold)

    def group(g: schemas.GroupOut) -> schemas.GroupOut:
        n, events = _count(g.n), _count(g.events)
        hidden = (
            n is None
            or events is None
            or any(is_small(c, threshold) for c in (n, events, n - events))
        )
        estimates: dict[str, Any] = (
            {"survival": None, "ci_low": None, "ci_high": None, "rmst": None} if hidden else {}
        )
        return msgspec.structs.replace(g, n=count(g.n), events=count(g.events), **estimates)

    def population(p: schemas.PopulationOut | None) -> schemas.PopulationOut | None:
        if p is None:
            return None
        return msgspec.structs.replace(
            p,
            n=count(p.n),
            events=count(p.events),
            dropped=[msgspec.structs.replace(d, count=count(d.count)) for d in p.dropped],
        )

    def landmark(lm: schemas.LandmarkOut | None) -> schemas.LandmarkOut | None:
        if lm is None:
            return None
        whole = population(lm.population)
        assert whole is not None
        fitted = lm.cox
        if fitted is not None:
            on = population(fitted.population)
            assert on is not None
            fitted = msgspec.structs.replace(fitted, population=on)
        return msgspec.structs.replace(
            lm, n=count(lm.n), groups=[group(g) for g in lm.groups], population=whole, cox=fitted
        )

    cox = result.cox
    if cox is not None:
        whole = population(cox.population)
        assert whole is not None
        cox = msgspec.structs.replace(
            cox,
            n=count(cox.n),
            events=count(cox.events),
            dropped_missing=count(cox.dropped_missing),
            population=whole,
        )
    time_varying = result.time_varying
    if time_varying is not None:
        time_varying = msgspec.structs.replace(
            time_varying,
            landmark=landmark(time_varying.landmark),
            population=population(time_varying.population),
        )
    crude = result.before_after
    hide_ratio = any(
        _count(c) is None or is_small(_count(c) or 0, threshold)
        for c in (crude.incidents_before, crude.incidents_after)
    )
    crude = dataclasses.replace(
        crude,
        rate_ratio=None if hide_ratio else crude.rate_ratio,
        rate_ratio_ci_low=None if hide_ratio else crude.rate_ratio_ci_low,
        rate_ratio_ci_high=None if hide_ratio else crude.rate_ratio_ci_high,
        n=count(crude.n),
        incidents_before=count(crude.incidents_before),
        incidents_after=count(crude.incidents_after),
        any_before=count(crude.any_before),
        any_after=count(crude.any_after),
    )
    everyone = population(result.population)
    assert everyone is not None
    return msgspec.structs.replace(
        result,
        adjusted=_publish_adjusted(result.adjusted, threshold, count, population),
        n=count(result.n),
        events=count(result.events),
        excluded=count(result.excluded),
        groups=[group(g) for g in result.groups],
        population=everyone,
        cox=cox,
        time_varying=time_varying,
        before_after=crude,
        notes=[
            *result.notes,
            *(
                [
                    f"Counts from 1 to {threshold - 1} are shown as '<{threshold}'; a group's "
                    f"survival, CI and RMST are withheld where they would reveal such a count."
                ]
                if threshold > 1
                else []
            ),
        ],
        suppression_threshold=threshold,
    )


def _naive_caveats(
    frame: pd.DataFrame,
    status: str,
    horizon: int,
    groups: list[schemas.GroupOut],
    notes: list[str],
) -> list[schemas.GroupOut]:
    """Say when the naive comparison is impossible, or is immortal time and nothing else.

    When everyone who reached the status did so on or after the horizon, the naive
    figures at the horizon compare people who had to stay offence-free for the whole
    follow-up to reach the status with everyone else: pure immortal time, so they are
    marked not interpretable rather than merely noted.
    """
    days = frame[f"days_to_{status}"].dropna()
    if days.empty or len(days) == len(frame):
        who = "no one" if days.empty else "everyone"
        notes.append(
            f"No naive comparison: {who} was {status} by the cut-off, so there is only one group."
        )
        return groups
    if days.min() >= horizon:
        notes.append(
            f"NOT INTERPRETABLE: everyone {status} got there on or after day {horizon}, the "
            f"end of the follow-up, so the naive '{status}' figures at the horizon are "
            f"immortal time and nothing else. Use the immortal-time corrected figures, with "
            f"a longer follow-up."
        )
        return [msgspec.structs.replace(g, interpretable=False) for g in groups]
    return groups


def status_notes(status: str, landmark: int) -> list[str]:
    """What each comparison by programme status can and cannot show, in plain words."""
    return [
        f"NAIVE (biased): 'groups', 'logrank' and 'cox' compare people by whether they had "
        f"{status} by the cut-off, counted from the referral date. This is what councils "
        f"publish, and it flatters the programme: people had to stay offence-free long "
        f"enough to be {status} (immortal-time bias). Do not read it as the programme's "
        f"effect.",
        f"IMMORTAL-TIME CORRECTED: 'time_varying' counts people as {status} only from the "
        f"day they were (a time-varying Cox model), and its landmark analysis compares only "
        f"people still followed and offence-free at day {landmark}, by their status then. "
        f"These remove immortal-time bias, and nothing else.",
        f"WHAT NO FIGURE HERE CAN SHOW: people choose to engage and to stay, so those who "
        f"are {status} may differ from those who are not in ways that also change their "
        f"reoffending (motivation, stability, risk). Even the corrected figures compare "
        f"self-selected groups: they are not the programme's effect, only an honest "
        f"description of who reoffended.",
    ]


def _analyse(
    raw: pd.DataFrame,
    excluded: int,
    crude: BeforeAfter,
    request: AnalysisRequest,
    as_of: date,
) -> schemas.ReoffendingOut:
    frame = follow_up(raw, request.horizon_days)
    notes = [
        f"Time origin: the referral's received date. Event: the first police-recorded "
        f"domestic-abuse incident after it. Follow-up: {request.horizon_days} days or to "
        f"{as_of.isoformat()}, whichever is earlier. Referrals received on or after the "
        f"cut-off have no follow-up and are left out ('excluded').",
        "Survival is the Kaplan-Meier share not reoffended at the horizon (95% CI, log-log); "
        "RMST is the restricted mean offence-free days up to the horizon.",
    ]
    labels = group_labels(frame, request.group_by) if request.group_by else None
    if labels is None:
        groups = _group_survival(frame, pd.Series("all", index=frame.index), request.horizon_days)
    else:
        groups = _group_survival(frame, labels, request.horizon_days)
    test = None
    if labels is not None and labels.nunique() > 1:
        result = logrank(frame["duration"], frame["event"], labels)
        test = schemas.LogRankOut(result.statistic, result.p, result.degrees_of_freedom)
    cox_out = _cox(frame, labels, request, notes)
    time_varying = None
    adjusted_out = None
    if request.group_by in STATUS_GROUPS:
        notes.extend(status_notes(request.group_by, landmark_for(request)))
        groups = _naive_caveats(frame, request.group_by, request.horizon_days, groups, notes)
        time_varying = _time_varying(frame, request, notes)
        adjusted_out = _adjusted(
            frame, request.group_by, landmark_for(request), request.horizon_days, notes
        )
    notes.append(
        f"'before_after' counts police-recorded incidents in the {request.horizon_days} days "
        f"before and after each referral whose after-window has ended, and their ratio "
        f"(after / before, exact 95% CI: under 1 means fewer after). Referrals follow an "
        f"incident, so a fall afterwards is expected even without the programme (regression to "
        f"the mean): read it as context, not as the programme's effect."
    )
    return schemas.ReoffendingOut(
        horizon_days=request.horizon_days,
        as_of=as_of,
        n=len(frame),
        events=int(frame["event"].sum()),
        excluded=excluded,
        group_by=request.group_by,
        groups=groups,
        logrank=test,
        population=_population(
            frame,
            [("received on or after the data cut-off: no follow-up yet", excluded)],
            "Everyone with follow-up by the data cut-off: 'groups' and 'logrank' are on them all.",
        ),
        cox=cox_out,
        time_varying=time_varying,
        before_after=crude,
        notes=notes,
        adjusted=adjusted_out,
    )


def _adjusted(
    frame: pd.DataFrame, status: str, landmark: int, horizon: int, notes: list[str]
) -> schemas.AdjustedOut | None:
    """The landmark comparison, weighted for the measured baseline covariates (IPTW).

    On the landmark analysis's people (still followed and offence-free at the landmark,
    grouped by their status then), so the unweighted figures beside it are the
    landmark comparison's own; see ``analysis.adjusted`` for the method.
    """
    at_risk = frame[frame["duration"] > landmark]
    treated = (at_risk[f"days_to_{status}"] <= landmark).to_numpy().astype(int)
    design, table, missing = adjusted_comparison.baseline_design(
        at_risk, COVARIATES, REFERENCE_LEVELS
    )
    people = at_risk["person"].to_numpy() if "person" in at_risk else np.arange(len(at_risk))
    follow = horizon - landmark
    try:
        result = adjusted_comparison.iptw(
            design,
            table,
            treated,
            (at_risk["duration"] - landmark).to_numpy(),
            at_risk["event"].to_numpy(),
            people,
            follow,
            status,
            (f"not {status}", status),
        )
    except AnalysisError as exc:
        notes.append(f"No adjusted comparison (IPTW): {exc}.")
        return None
    gone = frame[frame["duration"] <= landmark]
    population = _population(
        at_risk,
        [
            (f"reoffended by day {landmark}", int(gone["event"].sum())),
            (
                f"follow-up ended by day {landmark} (not followed to the landmark)",
                len(gone) - int(gone["event"].sum()),
            ),
        ],
        f"The landmark analysis's people (still followed and offence-free at day {landmark}, "
        f"grouped by whether they were {status} by then): the same people as its 'groups' "
        f"and 'logrank'. No one is dropped for a missing covariate: a detail not recorded "
        f"is a level of its own ('not_recorded' says how many lack each).",
    )
    notes.append(
        f"ADJUSTED (IPTW): 'adjusted' weights the landmark comparison at day {landmark} for "
        f"the measured baseline covariates; its 'can_show' and 'cannot_show' say what that "
        f"does and does not answer."
    )
    if result.left_out:
        notes.append(
            f"ADJUSTED: left out of the propensity model as too rare in one group (fewer "
            f"than {adjusted_comparison.MIN_PER_LEVEL} people with or without {status}): "
            f"{', '.join(result.left_out)}. Their balance is still shown."
        )
    imbalanced = [b.covariate for b in result.balance if b.imbalanced_after]
    if imbalanced:
        notes.append(
            f"ADJUSTED: still imbalanced after weighting (|SMD| >= 0.1): "
            f"{', '.join(imbalanced)}. The adjusted hazard ratio does not fully adjust for "
            f"these."
        )
    e = result.e_value
    names = ", ".join(COVARIATES)
    rare = (
        "rare (under 15% reoffended by the end of follow-up), so the hazard ratio was used "
        "as a risk ratio"
        if e.rare_outcome
        else "common (15% or more reoffended by the end of follow-up), so the hazard ratio "
        "was first converted to a risk ratio, (1 - 0.5^sqrt(HR)) / (1 - 0.5^sqrt(1/HR)), "
        "as VanderWeele & Ding advise: for a common outcome a hazard ratio is further "
        "from 1 than the risk ratio"
    )
    return schemas.AdjustedOut(
        status=status,
        landmark_days=landmark,
        follow_up_days=follow,
        covariates=list(COVARIATES),
        not_recorded=[schemas.NotRecordedOut(name, n) for name, n in missing],
        population=population,
        groups=[
            schemas.AdjustedGroupOut(g.group, g.n, g.events, g.survival) for g in result.survival
        ],
        hazard_ratio=_terms([result.hazard_ratio])[0],
        unadjusted_hazard_ratio=_terms([result.unadjusted])[0],
        standard_errors=(
            "robust (sandwich), clustered on the person; it treats the weights as known, "
            "which tends to make the interval wider, not narrower (Austin 2016)"
        ),
        weights=schemas.WeightsOut(
            method=(
                f"Stabilised: P({status}) / P({status} | baseline covariates), the "
                f"probability from a logistic regression on the covariates listed. Truncated "
                f"at their 1st and 99th percentiles (lower, upper): 'truncated_low' weights "
                f"were raised to the lower bound and 'truncated_high' lowered to the upper; "
                f"no one was dropped. Truncation trades a little bias (towards the "
                f"unadjusted comparison) for stability against a few extreme weights."
            ),
            lower=result.weights.lower,
            upper=result.weights.upper,
            truncated_low=result.weights.truncated_low,
            truncated_high=result.weights.truncated_high,
            effective_n=result.weights.effective_n,
        ),
        balance=[
            schemas.BalanceOut(
                b.covariate, b.smd_before, b.smd_after, b.imbalanced_before, b.imbalanced_after
            )
            for b in result.balance
        ],
        e_value=schemas.EValueOut(
            estimate=e.estimate,
            ci_limit=e.ci_limit,
            outcome="rare" if e.rare_outcome else "common",
            risk_ratio=e.risk_ratio,
            meaning=(
                f"An unmeasured confounder associated with both being {status} and "
                f"reoffending by a risk ratio of at least {e.estimate:.2f} each, over and "
                f"above the measured covariates, could explain the adjusted hazard ratio "
                f"away; one of at least {e.ci_limit:.2f} could move its interval to include "
                f"1 (an E-value of 1: it already does). Weaker confounding could not. It is "
                f"not the chance that such a confounder exists. The outcome is {rare}."
            ),
        ),
        can_show=(
            f"Among people still followed and offence-free at day {landmark}, the hazard of "
            f"reoffending over the next {follow} days for those {status} by then against "
            f"those not, with each person weighted so that the measured baseline covariates "
            f"({names}) no longer differ between the groups ('balance' shows how well). "
            f"'unadjusted_hazard_ratio' is the same people unweighted: the difference "
            f"between the two is what the measured covariates explained."
        ),
        cannot_show=(
            f"It adjusts only for the baseline covariates measured here. People choose to "
            f"be {status}: whatever else differs between them and the others and also "
            f"changes reoffending (motivation, support, what happened after referral) is "
            f"not adjusted for and can bias the hazard ratio either way; the E-value says "
            f"how strong it would have to be. Nor does it say anything about people who "
            f"reoffended or left follow-up before day {landmark}."
        ),
    )


def _publish_adjusted(
    result: schemas.AdjustedOut | None,
    threshold: int,
    count: Any,
    population: Any,
) -> schemas.AdjustedOut | None:
    """The adjusted comparison as it may be published: its counts, and any weighted
    survival of a group with a small count, withheld as ``publish`` does."""
    if result is None:
        return None

    def group(g: schemas.AdjustedGroupOut) -> schemas.AdjustedGroupOut:
        n, events = _count(g.n), _count(g.events)
        hidden = (
            n is None
            or events is None
            or any(is_small(c, threshold) for c in (n, events, n - events))
        )
        return msgspec.structs.replace(
            g,
            n=count(g.n),
            events=count(g.events),
            weighted_survival=None if hidden else g.weighted_survival,
        )

    n = _count(result.population.n)
    return msgspec.structs.replace(
        result,
        population=population(result.population),
        not_recorded=[
            msgspec.structs.replace(d, count=count(d.count)) for d in result.not_recorded
        ],
        groups=[group(g) for g in result.groups],
        weights=msgspec.structs.replace(
            result.weights,
            truncated_low=count(result.weights.truncated_low),
            truncated_high=count(result.weights.truncated_high),
            effective_n=(
                None if n is None or is_small(n, threshold) else result.weights.effective_n
            ),
        ),
    )


DASHBOARD_CACHE = CacheCounts()
"""How often this process answered the dashboard from the results cache, and how often
it had to work it out (for tests and the benchmark: a count, not a timing)."""
