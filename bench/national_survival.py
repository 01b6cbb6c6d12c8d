"""National scale, benchmark 2: the reoffending analysis against its two floors.

``analysis.services.analyse`` with 4 covariates, computed (a write moves the results
cache's data version first) and then the same call again (served from the cache),
against floor (a), a bare lifelines ``CoxPHFitter().fit(..., batch_mode=True)`` on
pre-built arrays of the same rows and covariates (checked to give the same
coefficients), and floor (b), the cheapest cohort read (durations, events and numeric
covariates worked out in SQL, one COPY into pandas) plus bare KM, log-rank, Cox and PH
test calls on arrays; its phases one by one; lifelines' PH test as it is (see
``schoenfeld``); peak memory, sampled and with tracemalloc; and one ``analyse()`` in a
fresh child process (this file, run as a script), stopped by its own pid at a time
limit.
"""

from __future__ import annotations

import asyncio
import gc
import io
import json
import os
import resource
import sys
import threading
import time
import tracemalloc
import warnings
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import psutil
from harness import (
    THROWAWAY_KEYS,
    connect,
    execution_ms,
    explain,
    index_usage,
    log,
    median,
    project_database,
    timed,
    today,
)
from lifelines import CoxPHFitter, KaplanMeierFitter
from lifelines.statistics import multivariate_logrank_test, proportional_hazard_test
from schoenfeld import ph_scaling, vectorised_schoenfeld

# The project's code this benchmark measures.
from analysis import queries, services
from analysis.proportional_hazards import ph_test
from analysis.rules import AnalysisRequest
from analysis.services import analyse, design_matrix
from analysis.survival import COX_PRECISION, concordance, cox, kaplan_meier

try:  # analyse() runs it since commit 5b2c283
    from analysis.services import before_after
except ImportError:
    before_after = None

HORIZON_DAYS = 182
SUPPRESS_BELOW = 5
"""Counts under this are published as <5, as the service does by default (the work is the same)."""
COVARIATES = ("age_at_referral", "risk_level", "prior_incidents", "substance_misuse")
THIS_FILE = str(Path(__file__).resolve())

SAME_PRECISION = {"precision": COX_PRECISION}
"""Bare fits stop where cox() does, so the floor is the same work."""

DERIVED_FLOOR_SQL = f"""
WITH engaged AS (
    SELECT referral, min(occurred_on) AS engaged_on FROM referral_event
    WHERE type = 'engaged' AND occurred_on <= $1 AND voided_at IS NULL GROUP BY referral
), first_after AS (
    SELECT r.id AS referral, min(o.offence_date) AS reoffended_on
    FROM referral r JOIN reoffence o ON o.person = r.person
    WHERE r.received_on < $1 AND o.offence_date > r.received_on AND o.offence_date <= $1
    GROUP BY r.id
), days AS (
    SELECT least({HORIZON_DAYS}, $1 - r.received_on) AS follow,
           f.reoffended_on - r.received_on AS to_event,
           (e.engaged_on IS NOT NULL)::int AS engaged,
           date_part('year', age(r.received_on, p.date_of_birth))::int AS age,
           (r.risk_level = 'medium')::int AS medium, (r.risk_level = 'high')::int AS high,
           r.prior_incidents, r.substance_misuse::int AS substance
    FROM referral r JOIN person p ON p.id = r.person
    LEFT JOIN engaged e ON e.referral = r.id LEFT JOIN first_after f ON f.referral = r.id
    WHERE r.received_on < $1
)
SELECT CASE WHEN to_event <= follow THEN to_event ELSE follow END AS duration,
       (to_event IS NOT NULL AND to_event <= follow)::int AS event,
       engaged, age, medium, high, prior_incidents, substance
FROM days
"""
"""Floor (b)'s read as it was before the cohort table: worked out from the events and
incidents on every read (timed alongside, for comparison with earlier runs)."""

FLOOR_SQL = f"""
SELECT CASE WHEN to_event <= follow THEN to_event ELSE follow END AS duration,
       (to_event IS NOT NULL AND to_event <= follow)::int AS event,
       engaged, age, medium, high, prior_incidents, substance
FROM (
    SELECT least({HORIZON_DAYS}, $1 - received_on) AS follow,
           CASE WHEN reoffended_on <= $1 THEN reoffended_on - received_on END AS to_event,
           coalesce(engaged_on <= $1, false)::int AS engaged,
           received_year - born_year - (received_month_day < born_month_day)::int AS age,
           (risk_level = 'medium')::int AS medium, (risk_level = 'high')::int AS high,
           prior_incidents, substance_misuse::int AS substance
    FROM reoffending_cohort
    WHERE received_on < $1
) days
"""
"""Floor (b)'s read: durations, events and numeric covariates worked out in SQL from the
cohort table (``reoffending_cohort``, one row per referral kept by triggers), as one COPY
of whole numbers (no dates, no text), parsed by pandas' C reader into columns."""


async def new_data_version() -> None:
    """A write to a table the analysis reads (no row changed): the results cache's version
    moves, so the next analyse() computes rather than answering from the cache."""
    connection = await connect()
    try:
        await connection.execute("UPDATE agency SET name = name WHERE false")
    finally:
        await connection.close()


async def floor_read(as_of: date, sql: str = FLOOR_SQL) -> pd.DataFrame:
    """The cheapest cohort read: FLOOR_SQL by COPY into a numeric frame."""
    chunks: list[bytes] = []

    async def keep(data: bytes) -> None:
        chunks.append(data)

    connection = await connect()
    try:
        await connection.copy_from_query(sql, as_of, output=keep, format="csv", header=True)
    finally:
        await connection.close()
    return pd.read_csv(io.BytesIO(b"".join(chunks)), engine="c")


def floor_statistics(frame: pd.DataFrame) -> None:
    """The necessary statistics on arrays: KM, log-rank, Cox (batch) and the PH test."""
    t = frame["duration"].to_numpy(dtype=float)
    e = frame["event"].to_numpy()
    KaplanMeierFitter().fit(t, e)
    multivariate_logrank_test(t, frame["engaged"].to_numpy(), e)
    complete = frame.dropna()
    columns = ["age", "medium", "high", "prior_incidents", "substance"]
    data = complete[[*columns, "duration", "event"]].astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitter = CoxPHFitter().fit(
            data, "duration", "event", batch_mode=True, fit_options=SAME_PRECISION
        )
    ph_test(
        data[columns].to_numpy(),
        data["duration"].to_numpy(),
        data["event"].to_numpy(),
        fitter.params_.to_numpy(),
        names=columns,
        terms={"age": [0], "risk_level": [1, 2], "prior_incidents": [3], "substance": [4]},
    )


# --------------------------------------------------------------------------------------
# Memory: resident set size sampled in a thread, peak above the phase's start.
# --------------------------------------------------------------------------------------


class RssSampler:
    """Samples this process's RSS every ``interval`` seconds; ``peak`` since ``reset``."""

    def __init__(self, interval: float = 0.02, pid: int | None = None) -> None:
        self._process = psutil.Process(pid)
        self._interval = interval
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.start_rss = self.peak = self._process.memory_info().rss
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def rss(self) -> int:
        try:
            return int(self._process.memory_info().rss)
        except Exception:  # the process has gone (psutil.NoSuchProcess and kin)
            return 0

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            value = self.rss()
            with self._lock:
                self.peak = max(self.peak, value)

    def reset(self) -> None:
        with self._lock:
            self.start_rss = self.peak = self.rss()

    def read(self) -> tuple[int, int]:
        """(RSS at reset, peak RSS since), in bytes."""
        value = self.rss()
        with self._lock:
            self.peak = max(self.peak, value)
            return self.start_rss, self.peak

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def max_rss_bytes() -> int:
    """Peak RSS of this process so far (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


async def survival_benchmark(
    repeats: int,
    as_of: date,
    use_tracemalloc: bool,
    scaling_sizes: list[int],
    child_limit: float,
) -> dict[str, Any]:
    request = AnalysisRequest(horizon_days=HORIZON_DAYS, as_of=as_of, covariates=COVARIATES)
    now = today()
    sampler = RssSampler()
    times: dict[str, list[float]] = {}
    peaks: dict[str, int] = {}

    def note_peak(name: str) -> None:
        start, peak = sampler.read()
        peaks[name] = max(peaks.get(name, 0), peak - start)

    out: dict[str, Any] = {
        "as_of": as_of.isoformat(),
        "repeats": repeats,
        "covariates": list(COVARIATES),
    }
    out["max_rss_before"] = max_rss_bytes()
    try:
        log("  warm-up analyse()")
        await analyse(request, now, SUPPRESS_BELOW)
        for round_number in range(repeats):
            gc.collect()
            await new_data_version()
            sampler.reset()
            computed = services.RESULTS_CACHE.computed
            with timed(times, "analyse"):
                result = await analyse(request, now, SUPPRESS_BELOW)
            note_peak("analyse")
            if services.RESULTS_CACHE.computed != computed + 1:
                raise RuntimeError("analyse() answered from the cache after a write")
            out["analyse_n"], out["analyse_events"] = result.n, result.events
            served = services.RESULTS_CACHE.served
            with timed(times, "analyse, the same again (results cache)"):
                again = await analyse(request, now, SUPPRESS_BELOW)
            if services.RESULTS_CACHE.served != served + 1 or again != result:
                raise RuntimeError("the second analyse() was not the cached same answer")
            del result, again
            gc.collect()
            # Floor (b): the cheapest read plus the bare statistics, in the same round.
            sampler.reset()
            with timed(times, "floor (b): narrow COPY read + KM, log-rank, Cox, PH"):
                with timed(times, "  floor (b): narrow COPY read"):
                    narrow = await floor_read(as_of)
                with timed(times, "  floor (b): KM, log-rank, Cox, PH on arrays"):
                    floor_statistics(narrow)
            note_peak("floor (b)")
            out["floor_rows"] = len(narrow)
            with timed(times, "  floor (b)'s read worked out from the events (before the table)"):
                derived = await floor_read(as_of, DERIVED_FLOOR_SQL)
            if len(derived) != len(narrow):
                raise RuntimeError("the cohort table and the events give different cohorts")
            del narrow, derived
            gc.collect()
            # The same work in its parts, on the same data.
            sampler.reset()
            with timed(times, "cohort.load"):
                raw, excluded = await services.load_cohort(as_of)
            connection = await connect()
            try:
                with timed(times, "  COHORT_SQL fetch as records (the read before)"):
                    records = await connection.fetch(queries.COHORT_SQL, as_of)
                del records
            finally:
                await connection.close()
            with timed(times, "cohort.follow_up"):
                frame = services.follow_up(raw, HORIZON_DAYS)
            with timed(times, "kaplan_meier (all)"):
                kaplan_meier(frame["duration"], frame["event"], HORIZON_DAYS)
            with timed(times, "design_matrix"):
                matrix, _ = design_matrix(frame, COVARIATES)
                complete = matrix.notna().all(axis=1)
                x = matrix[complete]
                durations = frame.loc[complete, "duration"]
                events = frame.loc[complete, "event"]
            with timed(times, "survival.cox"):
                model = cox(x, durations, events)
            note_peak("parts")
            # Inside cox(): lifelines' own steps, as cox() calls them.
            data = x.reset_index(drop=True).assign(
                _duration=durations.to_numpy(dtype=float), _event=events.to_numpy(dtype=int)
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with timed(times, "  CoxPHFitter.fit (batch_mode=True), everyone"):
                    fitter = CoxPHFitter().fit(
                        data, "_duration", "_event", batch_mode=True, fit_options=SAME_PRECISION
                    )
                with timed(times, "  ph_test (R's score test), everyone"):
                    ph_test(
                        x.to_numpy(dtype=float),
                        durations.to_numpy(dtype=float),
                        events.to_numpy(),
                        fitter.params_.to_numpy(),
                        names=[str(c) for c in x.columns],
                    )
                with vectorised_schoenfeld(), timed(times, "  lifelines' PH test, linear"):
                    full = proportional_hazard_test(fitter, data, time_transform="rank")
                with timed(times, "  concordance_index_ (lifelines')"):
                    _ = fitter.concordance_index_
                with timed(times, "  concordance (counted in runs, as cox() does now)"):
                    hazards = fitter._predicted_partial_hazards_
                    concordance(
                        hazards["T"].to_numpy(), -hazards["P"].to_numpy(), hazards["E"].to_numpy()
                    )
            if before_after is not None:
                with timed(times, "before_after (SQL)"):
                    await before_after(HORIZON_DAYS, as_of)
            # The baseline: pre-built numpy arrays of the same rows and covariates.
            arrays = {c: x[c].to_numpy(dtype=float).copy() for c in x.columns}
            arrays["T"] = durations.to_numpy(dtype=float).copy()
            arrays["E"] = events.to_numpy(dtype=int).copy()
            if round_number == repeats - 1:
                kept = (x.reset_index(drop=True), arrays["T"].copy(), arrays["E"].copy())
            out["n"], out["events"] = len(arrays["T"]), int(arrays["E"].sum())
            out["columns"], out["excluded"] = list(x.columns), excluded
            out["ph_test_everyone"] = {str(k): float(v) for k, v in full.summary["p"].items()}
            del raw, frame, matrix, complete, x, durations, events, data, fitter
            gc.collect()
            bare_frame = pd.DataFrame(arrays)
            del arrays
            gc.collect()
            sampler.reset()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with timed(times, "bare"):
                    bare = CoxPHFitter().fit(
                        bare_frame, "T", "E", batch_mode=True, fit_options=SAME_PRECISION
                    )
            note_peak("bare")
            out["bare_coefficients"] = {str(k): float(v) for k, v in bare.params_.items()}
            out["coefficients"] = {t.name: t.coef for t in model.terms}
            out["ph_test"] = {
                t.name: t.p for t in (*model.ph_test.terms, model.ph_test.global_test)
            }
            out["concordance"] = model.concordance
            del bare, bare_frame, model
            gc.collect()
            log(
                f"  round {round_number + 1}/{repeats}: analyse {times['analyse'][-1]:.1f}s, "
                f"cohort.load {times['cohort.load'][-1]:.1f}s, cox() "
                f"{times['survival.cox'][-1]:.1f}s, bare {times['bare'][-1]:.2f}s"
            )
        differences = {
            k: abs(out["coefficients"][k] - out["bare_coefficients"][k])
            for k in out["bare_coefficients"]
        }
        if max(differences.values()) > 1e-6:
            raise RuntimeError(f"cox() and the bare fit disagree: {differences}")
        out["check"] = "cox() and the bare fit give the same coefficients (to 1e-6)"
        connection = await connect()
        try:
            plan = await explain(connection, queries.COHORT_SQL, as_of)
            table_plan = await explain(connection, queries.COHORT_COPY_SQL, as_of)
        finally:
            await connection.close()
        out["cohort_plan"] = plan
        out["cohort_sql_execution_ms"] = execution_ms(plan)
        out["cohort_scans"] = index_usage(plan)
        out["cohort_table_execution_ms"] = execution_ms(table_plan)
        out["cohort_table_scans"] = index_usage(table_plan)
        out["ph_scaling"] = ph_scaling(kept, scaling_sizes, out["n"])
        del kept
        gc.collect()
        out["times"] = times
        out["median"] = m = {name: median(values) for name, values in times.items()}
        out["rss_peak_above_start"] = peaks
        out["max_rss_after"] = max_rss_bytes()
        if child_limit > 0:
            log(f"  analyse() in a fresh child process (limit {child_limit:.0f}s)")
            await new_data_version()
            out["child"] = await _analyse_in_child(as_of, child_limit)
        out["ratio_analyse_to_bare"] = m["analyse"] / m["bare"]
        out["ratio_cox_to_bare"] = m["survival.cox"] / m["bare"]
        floor_b = m["floor (b): narrow COPY read + KM, log-rank, Cox, PH"]
        out["ratio_analyse_to_floor_b"] = m["analyse"] / floor_b
        out["ratio_cached_to_bare"] = m["analyse, the same again (results cache)"] / m["bare"]
        if use_tracemalloc:
            out["tracemalloc"] = await _tracemalloc_runs(request, now, as_of)
    finally:
        sampler.close()
    return out


def child_analyse(as_of_text: str) -> int:
    """In a child process: one analyse() exactly as the project runs it; JSON on stdout."""
    request = AnalysisRequest(
        horizon_days=HORIZON_DAYS, as_of=date.fromisoformat(as_of_text), covariates=COVARIATES
    )
    before = psutil.Process().memory_info().rss
    started = time.perf_counter()
    result = asyncio.run(analyse(request, today(), SUPPRESS_BELOW))
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "seconds": seconds,
                "n": result.n,
                "events": result.events,
                "rss_after_imports": before,
            }
        ),
        flush=True,
    )
    return 0


async def _analyse_in_child(as_of: date, limit: float) -> dict[str, Any]:
    """Run child_analyse in a subprocess on this run's database; stop it at ``limit``.

    Its memory is sampled from here (psutil, every 0.1 s): a forked child's
    ru_maxrss starts from the parent's, so it says nothing about the child.
    """
    environment = {**THROWAWAY_KEYS, **os.environ}
    environment["DATABASE_URL"] = project_database().database_url()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        THIS_FILE,
        as_of.isoformat(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=environment,
    )
    sampler = RssSampler(interval=0.1, pid=process.pid)
    started = time.perf_counter()
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=limit)
    except TimeoutError:
        _, peak = sampler.read()
        return {
            "stopped_at_limit": True,
            "limit_seconds": limit,
            "elapsed_seconds": time.perf_counter() - started,
            "peak_rss_until_stopped": peak,
        }
    finally:
        sampler.close()
        if process.returncode is None:  # over the limit, or we were interrupted
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), timeout=15)
            except TimeoutError:
                process.kill()
                await process.wait()
    if process.returncode != 0:
        raise RuntimeError(f"analyse() in the child failed: {stderr.decode()[-2000:]}")
    found = json.loads(stdout.decode().strip().splitlines()[-1])
    found["peak_rss_sampled"] = sampler.peak
    found["stopped_at_limit"] = False
    return found


async def _tracemalloc_runs(request: Any, now: date, as_of: date) -> dict[str, Any]:
    """Peak traced allocations (Python objects and numpy buffers) of one call each."""
    out: dict[str, Any] = {}
    gc.collect()
    log("  tracemalloc: analyse()")
    await new_data_version()
    tracemalloc.start()
    started = time.perf_counter()
    await analyse(request, now, SUPPRESS_BELOW)
    out["analyse_seconds_traced"] = time.perf_counter() - started
    out["analyse_peak"] = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    raw, _ = await services.load_cohort(as_of)
    frame = services.follow_up(raw, HORIZON_DAYS)
    matrix, _ = design_matrix(frame, COVARIATES)
    complete = matrix.notna().all(axis=1)
    bare_frame = pd.DataFrame(
        {
            **{c: matrix.loc[complete, c].to_numpy(dtype=float) for c in matrix.columns},
            "T": frame.loc[complete, "duration"].to_numpy(dtype=float),
            "E": frame.loc[complete, "event"].to_numpy(dtype=int),
        }
    )
    del raw, frame, matrix, complete
    gc.collect()
    log("  tracemalloc: bare fit")
    tracemalloc.start()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        CoxPHFitter().fit(bare_frame, "T", "E", batch_mode=True, fit_options=SAME_PRECISION)
    out["bare_peak"] = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    out["bare_frame_bytes"] = int(bare_frame.memory_usage(deep=True).sum())
    return out


if __name__ == "__main__":  # the child process of _analyse_in_child
    sys.exit(child_analyse(sys.argv[1]))
