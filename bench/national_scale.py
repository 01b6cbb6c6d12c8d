"""National scale: the quarterly report and the survival analysis on synthetic national data.

    python bench/national_scale.py                                        # 1M referrals, 10M marks
    python bench/national_scale.py --referrals 100000 --attendance 1000000  # quick check

Builds a synthetic national data set server-side (``INSERT ... SELECT
generate_series``) in the real tables: agencies, 1,000,000 people and
referrals with their dated timelines, returned referrals, police-recorded
incidents, and a programme with groups, sessions and 10,000,000 attendance
marks. Then, each as a ratio to a bare baseline measured in the same run:

1. ``analysis.reports.quarterly`` over 20 quarters against one hand-written
   SQL aggregate giving the same per-quarter counts (checked equal), with
   EXPLAIN (ANALYZE, BUFFERS) of both;
2. ``analysis.reoffending.analyse`` with 4 covariates against a bare lifelines
   ``CoxPHFitter().fit(..., batch_mode=True)`` on pre-built arrays of the same
   rows and covariates; its phases, and peak memory.

Runs on its own embedded PostgreSQL in a fresh temporary data directory
(INSPIRE_DATA_DIR is set before any project module is imported), deleted at the
end, also on error. With DATABASE_URL set it uses that server instead and
EMPTIES EVERY TABLE in it, so it refuses to start unless
--allow-emptying-database is given. No network but the local database; every
loop has a fixed count. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import re
import resource
import shutil
import signal
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

HORIZON_DAYS = 182
COVARIATES = ("age_at_referral", "risk_level", "prior_incidents", "substance_misuse")
GROUP_SIZE = 12
CORE_SESSIONS = 24
AGENCIES = 40
RETURNED_SHARE = 0.15
COUNT_COLUMNS = (
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
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--referrals", type=int, default=1_000_000, help="referrals (= people)")
    parser.add_argument("--attendance", type=int, default=10_000_000, help="attendance marks")
    parser.add_argument("--quarters", type=int, default=20, help="quarters of data and report")
    parser.add_argument("--report-repeats", type=int, default=5, help="quarterly report repeats")
    parser.add_argument("--survival-repeats", type=int, default=3, help="analyse() repeats")
    parser.add_argument(
        "--no-index-test",
        action="store_true",
        help="skip timing the report with a temporary extra index",
    )
    parser.add_argument(
        "--no-tracemalloc", action="store_true", help="skip the (slow) tracemalloc runs"
    )
    parser.add_argument(
        "--ph-scaling",
        default="25000,50000,100000,200000",
        help="cohort subset sizes for timing lifelines' PH test as it is (comma-separated)",
    )
    parser.add_argument(
        "--analyse-limit",
        type=float,
        default=180.0,
        help="seconds allowed for one analyse() in a fresh child process (its peak memory;"
        " 0 skips it)",
    )
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    parser.add_argument(
        "--allow-emptying-database",
        action="store_true",
        help="with DATABASE_URL: agree that every table in it is emptied",
    )
    args = parser.parse_args(argv)
    if not 1_000 <= args.referrals <= 5_000_000:
        parser.error("--referrals must be 1,000 to 5,000,000")
    if not 0 <= args.attendance <= 50_000_000:
        parser.error("--attendance must be 0 to 50,000,000")
    if not 4 <= args.quarters <= 40:
        parser.error("--quarters must be 4 to 40")
    try:
        args.ph_scaling = [int(part) for part in args.ph_scaling.split(",") if part.strip()]
    except ValueError:
        parser.error("--ph-scaling takes whole numbers separated by commas")
    if not args.ph_scaling or not all(1_000 <= size <= 1_000_000 for size in args.ph_scaling):
        parser.error("--ph-scaling sizes must be 1,000 to 1,000,000")
    if not 0 <= args.analyse_limit <= 7_200:
        parser.error("--analyse-limit must be 0 to 7,200 seconds")
    for name in ("report_repeats", "survival_repeats"):
        if not 1 <= getattr(args, name) <= 50:
            parser.error(f"--{name.replace('_', '-')} must be 1 to 50")
    return args


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _terminated(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def median(values: list[float]) -> float:
    from bench_support import median as _median

    return _median(values)


# --------------------------------------------------------------------------------------
# Memory: resident set size sampled in a thread, peak above the phase's start.
# --------------------------------------------------------------------------------------


class RssSampler:
    """Samples this process's RSS every ``interval`` seconds; ``peak`` since ``reset``."""

    def __init__(self, interval: float = 0.02, pid: int | None = None) -> None:
        import psutil

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


@contextmanager
def timed(into: dict[str, list[float]], name: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        into.setdefault(name, []).append(time.perf_counter() - started)


# --------------------------------------------------------------------------------------
# Synthetic data, built server-side.
# --------------------------------------------------------------------------------------

# u(i, salt): a deterministic uniform number in [0, 1) from a 64-bit hash, so the
# data is the same every run without shipping any of it over the wire.
UNIFORM_FUNCTION = """
CREATE OR REPLACE FUNCTION pg_temp.u(i bigint, salt bigint) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT (hashint8extended(i, salt) & 4503599627370495)::double precision
          / 4503599627370496.0 $$
"""

_FIRST_NAMES_TEXT = (
    "James John Robert Michael David William Richard Joseph Thomas Daniel Paul Mark Steven "
    "Andrew Kevin Brian George Edward Ryan Jacob Gary Nicholas Eric Jonathan Stephen Scott "
    "Justin Brandon Gregory Samuel Benjamin Patrick Jack Dennis Jerry Tyler Aaron Adam Lee Sarah"
)
FIRST_NAMES = tuple(_FIRST_NAMES_TEXT.split())
_LAST_NAMES_TEXT = (
    "Smith Jones Williams Taylor Brown Davies Evans Wilson Thomas Johnson Roberts Robinson "
    "Thompson Wright Walker White Edwards Hughes Green Hall Lewis Harris Clarke Patel Jackson "
    "Wood Turner Martin Cooper Hill Ward Morris Moore Clark Lee King Baker Harrison Morgan "
    "Allen James Scott Phillips Watson Davis Parker Price Bennett Young Griffiths Mitchell "
    "Kelly Cook Carter Richardson Bailey Collins Bell Shaw Murphy"
)
LAST_NAMES = tuple(_LAST_NAMES_TEXT.split())
AGENCY_KINDS = (
    "Police",
    "Children's Social Care",
    "Probation Service",
    "Early Help",
    "Adult Social Care",
    "Housing Options",
    "GP Practice Network",
    "Self-referral Line",
)
RETURN_REASONS = (
    "consent_missing",
    "incomplete",
    "no_contact_number",
    "under_16",
    "not_domestic_abuse",
    "on_mandated_programme",
    "out_of_area",
)


def _sql_text_array(values: tuple[str, ...] | list[str]) -> str:
    return "ARRAY[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]::text[]"


def synthetic_referrals_sql(n: int, first_day: date, days: int, cutoff: date) -> str:
    """One row per referral and person: received date, person, covariates, milestones.

    Milestones after ``cutoff`` have not happened yet (and nor has anything after them).
    Reoffending hazard rises with risk level, prior incidents, substance misuse and youth.
    """
    first = f"DATE '{first_day.isoformat()}'"
    cut = f"DATE '{cutoff.isoformat()}'"
    first_names = _sql_text_array(FIRST_NAMES)
    last_names = _sql_text_array(LAST_NAMES)
    return f"""
CREATE TEMP TABLE syn AS
WITH a AS (
    SELECT i,
           {first} + floor({days}::float8 * ((i - 1) + pg_temp.u(i, 1)) / {n})::int
               AS received_on,
           pg_temp.u(i, 2) AS u_contact, pg_temp.u(i, 3) AS u_engage,
           pg_temp.u(i, 4) AS u_start, pg_temp.u(i, 5) AS u_exit,
           pg_temp.u(i, 6) AS d1, pg_temp.u(i, 7) AS d2, pg_temp.u(i, 8) AS d3,
           pg_temp.u(i, 9) AS d4, pg_temp.u(i, 10) AS d5,
           pg_temp.u(i, 11) AS u_gender, pg_temp.u(i, 12) AS u_risk,
           pg_temp.u(i, 13) AS u_prior, pg_temp.u(i, 14) AS u_prior_n,
           pg_temp.u(i, 15) AS u_substance, pg_temp.u(i, 16) AS u_mental,
           pg_temp.u(i, 17) AS u_children, pg_temp.u(i, 18) AS u_age,
           pg_temp.u(i, 19) AS u_rel, pg_temp.u(i, 20) AS u_notes,
           pg_temp.u(i, 21) AS u_victims, pg_temp.u(i, 22) AS u_agency,
           pg_temp.u(i, 23) AS u_la, pg_temp.u(i, 24) AS u_consent,
           pg_temp.u(i, 25) AS u_off1, pg_temp.u(i, 26) AS u_off2,
           pg_temp.u(i, 27) AS u_off2_has, pg_temp.u(i, 28) AS u_prior_off,
           pg_temp.u(i, 29) AS u_prior_day, pg_temp.u(i, 30) AS u_first,
           pg_temp.u(i, 31) AS u_last
    FROM generate_series(1, {n}) AS i
), b AS (
    SELECT a.*,
           CASE WHEN u_contact < 0.80 THEN received_on + 1 + floor(d1 * 28)::int END
               AS contacted_raw
    FROM a
), c AS (
    SELECT b.*,
           CASE WHEN contacted_raw IS NOT NULL AND u_engage < 0.65
                THEN contacted_raw + 7 + floor(d2 * 40)::int END AS engaged_raw
    FROM b
), d AS (
    SELECT c.*,
           CASE WHEN engaged_raw IS NOT NULL AND u_start < 0.75
                THEN engaged_raw + 7 + floor(d3 * 50)::int END AS started_raw
    FROM c
), e AS (
    SELECT d.*,
           CASE WHEN started_raw IS NOT NULL AND u_exit < 0.55
                THEN started_raw + 175 + floor(d4 * 35)::int END AS completed_raw,
           CASE
               WHEN started_raw IS NOT NULL THEN
                   CASE WHEN u_exit >= 0.55 AND u_exit < 0.90 THEN 'disengaged' END
               WHEN engaged_raw IS NOT NULL THEN
                   CASE WHEN u_exit < 0.55 THEN 'disengaged'
                        WHEN u_exit < 0.65 THEN 'withdrawn' END
               WHEN contacted_raw IS NOT NULL THEN
                   CASE WHEN u_exit < 0.50 THEN 'disengaged'
                        WHEN u_exit < 0.60 THEN 'withdrawn'
                        WHEN u_exit < 0.70 THEN 'closed' END
               ELSE
                   CASE WHEN u_exit < 0.35 THEN 'disengaged'
                        WHEN u_exit < 0.50 THEN 'withdrawn'
                        WHEN u_exit < 0.60 THEN 'closed' END
           END AS exit_type,
           coalesce(started_raw, engaged_raw, contacted_raw, received_on)
               + 14 + floor(d5 * 140)::int AS exit_raw,
           received_on - (6570 + floor(u_age * 14600)::int) AS date_of_birth,
           CASE WHEN u_risk < 0.05 THEN NULL WHEN u_risk < 0.55 THEN 'standard'
                WHEN u_risk < 0.85 THEN 'medium' ELSE 'high' END AS risk_level,
           CASE WHEN u_prior < 0.06 THEN NULL
                ELSE least(30, floor(-ln(1 - u_prior_n) * 2.5)::int) END AS prior_incidents,
           CASE WHEN u_substance < 0.08 THEN NULL ELSE u_substance < 0.43 END
               AS substance_misuse,
           CASE WHEN u_mental < 0.08 THEN NULL ELSE u_mental < 0.38 END AS mental_health,
           CASE WHEN u_children < 0.08 THEN NULL ELSE u_children < 0.53 END
               AS children_in_household
    FROM d
), f AS (
    SELECT e.*,
           CASE WHEN contacted_raw <= {cut} THEN contacted_raw END AS contacted_on,
           CASE WHEN engaged_raw <= {cut} THEN engaged_raw END AS engaged_on,
           CASE WHEN started_raw <= {cut} THEN started_raw END AS started_on,
           CASE WHEN completed_raw <= {cut} THEN completed_raw END AS completed_on,
           CASE WHEN exit_type IS NOT NULL AND exit_raw <= {cut} THEN exit_raw END AS exit_on,
           exp(0.35 * coalesce((risk_level = 'medium')::int, 0)
               + 0.75 * coalesce((risk_level = 'high')::int, 0)
               + 0.06 * least(coalesce(prior_incidents, 0), 15)
               + 0.35 * coalesce(substance_misuse, false)::int
               - 0.025 * ((received_on - date_of_birth) / 365.25 - 35)
               - 0.4 * (completed_raw IS NOT NULL)::int) AS hazard
    FROM e
)
SELECT i, received_on, date_of_birth, risk_level, prior_incidents, substance_misuse,
       mental_health, children_in_household, exit_type, exit_on,
       contacted_on, engaged_on, started_on, completed_on,
       CASE WHEN u_gender < 0.88 THEN 'male' WHEN u_gender < 0.96 THEN 'female'
            WHEN u_gender < 0.98 THEN 'other' ELSE 'unknown' END AS gender,
       ({first_names})[1 + floor(u_first * {len(FIRST_NAMES)})::int] AS first_name,
       ({last_names})[1 + floor(u_last * {len(LAST_NAMES)})::int] AS last_name,
       1 + floor(u_agency * {AGENCIES})::int AS agency_k,
       1 + floor(u_la * 150)::int AS la_k,
       CASE WHEN u_rel < 0.55 THEN 'partner' WHEN u_rel < 0.90 THEN 'ex_partner'
            WHEN u_rel < 0.98 THEN 'family_member' ELSE 'other' END AS relationship,
       received_on - floor(u_consent * 8)::int AS consent_obtained_on,
       CASE WHEN u_consent < 0.6 THEN 'verbal' ELSE 'written' END AS consent_method,
       u_notes < 0.7 AS has_notes, u_victims < 0.8 AS has_victims,
       received_on + 1 + floor(-ln(1 - u_off1) / (0.0002 * hazard))::int AS offence1_raw,
       CASE WHEN u_off2_has < 0.5 THEN floor(-ln(1 - u_off2) / (0.0003 * hazard))::int + 1
            END AS offence2_gap,
       CASE WHEN u_prior_off < 0.10 + 0.02 * least(coalesce(prior_incidents, 0), 10)
            THEN received_on - 1 - floor(u_prior_day * 1500)::int END AS prior_offence_on
FROM f
ORDER BY i
"""


def status_sql() -> str:
    """The latest milestone reached and its date, from the syn columns."""
    return """
CASE WHEN exit_on IS NOT NULL THEN exit_type
     WHEN completed_on IS NOT NULL THEN 'completed'
     WHEN started_on IS NOT NULL THEN 'started'
     WHEN engaged_on IS NOT NULL THEN 'engaged'
     WHEN contacted_on IS NOT NULL THEN 'contacted'
     ELSE 'accepted' END
"""


def generation_steps(
    n: int, attendance: int, first_day: date, last_day: date, cutoff: date
) -> list[tuple[str, str]]:
    """(name, SQL) in order; sizes and dates are ours, formatted in (never user input)."""
    days = (last_day - first_day).days + 1
    cut = f"DATE '{cutoff.isoformat()}'"
    first = f"DATE '{first_day.isoformat()}'"
    n_returned = round(n * RETURNED_SHARE)
    kinds = _sql_text_array(AGENCY_KINDS)
    reasons = _sql_text_array(RETURN_REASONS)
    status = status_sql()
    return [
        ("u()", UNIFORM_FUNCTION),
        ("syn: referrals and people (temp)", synthetic_referrals_sql(n, first_day, days, cutoff)),
        (
            "agency",
            f"""
INSERT INTO agency (id, name)
SELECT md5('agency:' || k)::uuid,
       ({kinds})[1 + (k - 1) % {len(AGENCY_KINDS)}] || ' ' || lpad(k::text, 2, '0')
FROM generate_series(1, {AGENCIES}) AS k
""",
        ),
        (
            "person",
            """
INSERT INTO person (id, first_name, last_name, date_of_birth, phone, gender, match_key)
SELECT md5('person:' || i)::uuid, first_name, last_name, date_of_birth,
       '+4474' || lpad(i::text, 8, '0'), gender,
       lower(last_name) || '|' || lower(first_name) || '|' || date_of_birth::text
FROM syn ORDER BY i
""",
        ),
        (
            "referral",
            f"""
INSERT INTO referral (id, reference, person, agency, submitted_by, received_on, status,
                      status_on, local_authority, relationship, risk_level, prior_incidents,
                      substance_misuse, mental_health, children_in_household,
                      consent_obtained_on, consent_method, notes, quality_score,
                      missing_details, version)
SELECT md5('referral:' || i)::uuid, 'NAT-' || lpad(i::text, 8, '0'),
       md5('person:' || i)::uuid, md5('agency:' || agency_k)::uuid, NULL, received_on,
       {status},
       coalesce(exit_on, completed_on, started_on, engaged_on, contacted_on, received_on),
       'Local authority ' || lpad(la_k::text, 3, '0'), relationship, risk_level,
       prior_incidents, substance_misuse, mental_health, children_in_household,
       consent_obtained_on, consent_method,
       CASE WHEN has_notes THEN 'Synthetic referral for the national-scale benchmark.' END,
       round(100.0 * (5 - cardinality(missing)) / 5)::int, to_jsonb(missing), 1
FROM (
    SELECT syn.*, array_remove(ARRAY[
               CASE WHEN risk_level IS NULL THEN 'risk_level' END,
               CASE WHEN prior_incidents IS NULL THEN 'prior_incidents' END,
               CASE WHEN substance_misuse IS NULL OR mental_health IS NULL
                         OR children_in_household IS NULL THEN 'complex_needs' END,
               CASE WHEN NOT has_victims THEN 'victims' END,
               CASE WHEN NOT has_notes THEN 'notes' END], NULL) AS missing
    FROM syn
) s
ORDER BY i
""",
        ),
        (
            "referral_event",
            f"""
INSERT INTO referral_event (referral, type, occurred_on, source)
SELECT md5('referral:' || syn.i)::uuid, v.type, v.day, 'import'
FROM syn
CROSS JOIN LATERAL (VALUES (1, 'accepted', received_on), (2, 'contacted', contacted_on),
                           (3, 'engaged', engaged_on), (4, 'started', started_on),
                           (5, 'completed', completed_on), (6, exit_type, exit_on))
    AS v(step, type, day)
WHERE v.day IS NOT NULL AND v.day <= {cut}
ORDER BY v.day, syn.i, v.step
""",
        ),
        (
            "returned_referral",
            f"""
INSERT INTO returned_referral (id, agency, received_on, reasons, source, fingerprint)
SELECT md5('returned:' || j)::uuid,
       md5('agency:' || (1 + floor(pg_temp.u(j, 101) * {AGENCIES})::int))::uuid,
       {first} + floor({days}::float8 * ((j - 1) + pg_temp.u(j, 102)) / {n_returned})::int,
       CASE WHEN pg_temp.u(j, 103) < 0.7
            THEN jsonb_build_array(({reasons})[1 + floor(pg_temp.u(j, 104) * 7)::int])
            ELSE jsonb_build_array(({reasons})[1 + floor(pg_temp.u(j, 104) * 7)::int],
                                   ({reasons})[1 + floor(pg_temp.u(j, 105) * 7)::int]) END,
       CASE WHEN pg_temp.u(j, 106) < 0.4 THEN 'import' ELSE 'api' END,
       CASE WHEN pg_temp.u(j, 106) < 0.4 THEN md5('returned:' || j) END
FROM generate_series(1, {n_returned}) AS j
ORDER BY j
""",
        ),
        (
            "reoffence",
            f"""
INSERT INTO reoffence (id, person, offence_date, offence_type, fingerprint)
SELECT md5('reoffence:' || syn.i || ':' || v.k)::uuid, md5('person:' || syn.i)::uuid, v.day,
       CASE WHEN (syn.i + v.k) % 5 = 0 THEN 'Common assault (domestic)'
            WHEN (syn.i + v.k) % 5 = 1 THEN 'Criminal damage (domestic)'
            ELSE 'Domestic abuse incident' END,
       md5('reoffence:' || syn.i || ':' || v.k)
FROM syn
CROSS JOIN LATERAL (VALUES (0, prior_offence_on), (1, offence1_raw),
                           (2, offence1_raw + offence2_gap)) AS v(k, day)
WHERE v.day IS NOT NULL AND v.day <= {cut}
ORDER BY v.day
""",
        ),
        (
            "programme",
            """
INSERT INTO programme (id, name) VALUES (md5('programme:1')::uuid, 'National programme')
""",
        ),
        (
            "started (temp)",
            """
CREATE TEMP TABLE started AS
SELECT i, started_on, exit_on,
       (row_number() OVER (ORDER BY started_on, i) - 1)::bigint AS r
FROM syn WHERE started_on IS NOT NULL
""",
        ),
        (
            "group",
            f"""
INSERT INTO "group" (id, programme, name, starts_on, capacity)
SELECT md5('group:' || g)::uuid, md5('programme:1')::uuid,
       'Group ' || lpad(g::text, 6, '0'), min(started_on), {GROUP_SIZE}
FROM (SELECT r / {GROUP_SIZE} AS g, started_on FROM started) s
GROUP BY g ORDER BY g
""",
        ),
        (
            "group_member",
            f"""
INSERT INTO group_member (id, "group", referral, joined_on, left_on)
SELECT md5('member:' || i)::uuid, md5('group:' || (r / {GROUP_SIZE}))::uuid,
       md5('referral:' || i)::uuid, started_on, NULL
FROM started ORDER BY r
""",
        ),
        (
            "programme_session (group)",
            f"""
INSERT INTO programme_session (id, "group", number, held_on, kind)
SELECT md5('session:' || g.g || ':' || s)::uuid, md5('group:' || g.g)::uuid, s,
       g.starts_on + 7 * (s - 1), 'group'
FROM (SELECT r / {GROUP_SIZE} AS g, min(started_on) AS starts_on FROM started GROUP BY 1) g
CROSS JOIN generate_series(1, {CORE_SESSIONS}) AS s
""",
        ),
        *attendance_steps(attendance, cut),
    ]


def attendance_steps(attendance: int, cut: str) -> list[tuple[str, str]]:
    """Marks: each started referral's group sessions held by the cut-off, then one-to-ones.

    ``bench_plan`` (a temp table) holds how many one-to-ones make the total
    ``attendance``; if the group sessions alone give more, they are cut at it.
    """
    # Marks for sessions after someone left are 'absent'; otherwise mostly present.
    mark = """
CASE WHEN m.exit_on IS NOT NULL AND held_on > m.exit_on THEN 'absent'
     WHEN pg_temp.u(m.i * 64 + n, 201) < 0.78 THEN 'attended'
     WHEN pg_temp.u(m.i * 64 + n, 201) < 0.86 THEN 'late'
     WHEN pg_temp.u(m.i * 64 + n, 201) < 0.95 THEN 'absent'
     ELSE 'excused' END
"""
    return [
        (
            "plan one-to-ones (temp)",
            f"""
CREATE TEMP TABLE bench_plan AS
WITH core AS (
    SELECT count(*) AS members,
           coalesce(sum(least({CORE_SESSIONS}, greatest(0,
               floor(({cut} - g.starts_on) / 7.0)::int + 1))), 0) AS marks
    FROM started m
    JOIN (SELECT r / {GROUP_SIZE} AS g, min(started_on) AS starts_on
          FROM started GROUP BY 1) g ON g.g = m.r / {GROUP_SIZE}
)
SELECT members, marks AS core_marks,
       greatest(0, {attendance} - marks) AS extra,
       CASE WHEN members = 0 THEN 0
            ELSE ceil(greatest(0, {attendance} - marks)::numeric / members)::int END AS per_member
FROM core
""",
        ),
        (
            "programme_session (one-to-one)",
            f"""
INSERT INTO programme_session (id, "group", number, held_on, kind)
SELECT md5('one:' || m.i || ':' || j)::uuid, md5('group:' || (m.r / {GROUP_SIZE}))::uuid,
       (m.r % {GROUP_SIZE}) * p.per_member + j,
       m.started_on + floor(j * least(182, {cut} - m.started_on)::float8
                            / (p.per_member + 1))::int,
       'one_to_one'
FROM started m CROSS JOIN bench_plan p
CROSS JOIN LATERAL generate_series(1, p.per_member) AS j
WHERE (j - 1) * p.members + m.r < p.extra
""",
        ),
        (
            "attendance (group sessions)",
            f"""
INSERT INTO attendance (id, session, referral, status)
SELECT gen_random_uuid(), md5('session:' || (m.r / {GROUP_SIZE}) || ':' || n)::uuid,
       md5('referral:' || m.i)::uuid, {mark}
FROM started m
JOIN (SELECT r / {GROUP_SIZE} AS g, min(started_on) AS starts_on
      FROM started GROUP BY 1) g ON g.g = m.r / {GROUP_SIZE}
CROSS JOIN LATERAL generate_series(1, {CORE_SESSIONS}) AS n
CROSS JOIN LATERAL (SELECT g.starts_on + 7 * (n - 1) AS held_on) h
WHERE h.held_on <= {cut}
LIMIT {attendance}
""",
        ),
        (
            "attendance (one-to-ones)",
            f"""
INSERT INTO attendance (id, session, referral, status)
SELECT gen_random_uuid(), md5('one:' || m.i || ':' || n)::uuid,
       md5('referral:' || m.i)::uuid, {mark}
FROM started m CROSS JOIN bench_plan p
CROSS JOIN LATERAL generate_series(1, p.per_member) AS n
CROSS JOIN LATERAL (SELECT m.started_on + floor(n * least(182, {cut} - m.started_on)::float8
                                                / (p.per_member + 1))::int AS held_on) h
WHERE (n - 1) * p.members + m.r < p.extra
""",
        ),
    ]


GENERATED_TABLES = (
    "agency",
    "person",
    "referral",
    "referral_event",
    "returned_referral",
    "reoffence",
    "programme",
    '"group"',
    "group_member",
    "programme_session",
    "attendance",
)

# Every foreign key of the generated rows, checked after loading (child, column, parent).
FOREIGN_KEYS = (
    ("referral", "person", "person"),
    ("referral", "agency", "agency"),
    ("referral_event", "referral", "referral"),
    ("returned_referral", "agency", "agency"),
    ("reoffence", "person", "person"),
    ('"group"', "programme", "programme"),
    ("group_member", '"group"', '"group"'),
    ("group_member", "referral", "referral"),
    ("programme_session", '"group"', '"group"'),
    ("attendance", "session", "programme_session"),
    ("attendance", "referral", "referral"),
)


async def generate(
    connection: Any, n: int, attendance: int, first_day: date, last_day: date, cutoff: date
) -> dict[str, Any]:
    """Fill the real tables; returns step timings, row counts and the FK check."""
    steps: dict[str, float] = {}
    started = time.perf_counter()
    await connection.execute("SET synchronous_commit = off")
    await connection.execute("SET maintenance_work_mem = '1GB'")
    await connection.execute("SET work_mem = '256MB'")
    # Foreign-key triggers off while loading (needs a superuser, as the embedded
    # server's is): 20 million row-by-row look-ups otherwise. The keys are checked
    # below, all at once, with anti-joins.
    replica = True
    try:
        await connection.execute("SET session_replication_role = replica")
    except Exception as exc:  # not a superuser: load with the triggers on
        log(f"  session_replication_role refused ({type(exc).__name__}); FK triggers stay on")
        replica = False
    for name, sql in generation_steps(n, attendance, first_day, last_day, cutoff):
        step_started = time.perf_counter()
        status = await connection.execute(sql)
        steps[name] = time.perf_counter() - step_started
        log(f"  {name}: {status} in {steps[name]:.1f}s")
    if replica:
        await connection.execute("SET session_replication_role = origin")
    plan = await connection.fetchrow("SELECT * FROM bench_plan")
    await connection.execute("DROP TABLE IF EXISTS started, bench_plan")
    step_started = time.perf_counter()
    broken = {}
    if replica:
        for child, column, parent in FOREIGN_KEYS:
            missing = await connection.fetchval(
                f"SELECT count(*) FROM {child} c WHERE c.{column} IS NOT NULL"
                f" AND NOT EXISTS (SELECT 1 FROM {parent} p WHERE p.id = c.{column})"
            )
            if missing:
                broken[f"{child}.{column}"] = int(missing)
        steps["foreign keys checked"] = time.perf_counter() - step_started
        log(f"  foreign keys checked in {steps['foreign keys checked']:.1f}s")
    if broken:
        raise RuntimeError(f"generated rows break foreign keys: {broken}")
    step_started = time.perf_counter()
    for table in GENERATED_TABLES:
        await connection.execute(f"VACUUM (ANALYZE) {table}")
    steps["VACUUM (ANALYZE)"] = time.perf_counter() - step_started
    log(f"  VACUUM (ANALYZE) in {steps['VACUUM (ANALYZE)']:.1f}s")
    total = time.perf_counter() - started
    counts = {}
    for table in GENERATED_TABLES:
        counts[table.strip('"')] = int(await connection.fetchval(f"SELECT count(*) FROM {table}"))
    sizes = {
        row["name"]: int(row["bytes"])
        for row in await connection.fetch(
            "SELECT relname AS name, pg_total_relation_size(oid) AS bytes FROM pg_class"
            " WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace"
        )
    }
    shape = await connection.fetchrow(
        """
        SELECT count(*) AS referrals,
               count(*) FILTER (WHERE contacted_on IS NOT NULL) AS contacted,
               count(*) FILTER (WHERE engaged_on IS NOT NULL) AS engaged,
               count(*) FILTER (WHERE started_on IS NOT NULL) AS started,
               count(*) FILTER (WHERE completed_on IS NOT NULL) AS completed,
               count(*) FILTER (WHERE exit_on IS NOT NULL) AS exited,
               count(*) FILTER (WHERE prior_offence_on IS NOT NULL
                                   OR offence1_raw <= $1) AS with_incidents,
               count(*) FILTER (WHERE offence1_raw <= $1) AS reoffended
        FROM syn
        """,
        cutoff,
    )
    await connection.execute("DROP TABLE IF EXISTS syn")
    return {
        "seconds": total,
        "steps": steps,
        "rows": counts,
        "bytes": sizes,
        "database_bytes": int(
            await connection.fetchval("SELECT pg_database_size(current_database())")
        ),
        "shape": dict(shape),
        "attendance_plan": dict(plan),
        "foreign_key_triggers_during_load": not replica,
    }


# --------------------------------------------------------------------------------------
# Benchmark 1: the quarterly report against one hand-written aggregate.
# --------------------------------------------------------------------------------------

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
    from analysis.reports import QUARTERLY_SQL

    try:
        counted_end = QUARTERLY_SQL.index("), cohort AS (")
        counted = QUARTERLY_SQL[QUARTERLY_SQL.index("WITH happened AS") : counted_end]
        cohort_start = counted_end + len("), cohort AS (")
        cohort = QUARTERLY_SQL[cohort_start : QUARTERLY_SQL.index("\n)\nSELECT q.label")]
    except ValueError:
        return {}
    return {"counted": counted + ") SELECT * FROM counted", "cohort": cohort}


def previous_quarter(quarter: Any) -> Any:
    return type(quarter)(quarter.year - (quarter.number == 1), (quarter.number - 2) % 4 + 1)


def quarter_label(quarter_start: date) -> str:
    """Label of a financial quarter from its date_trunc('quarter', day - 3 months)."""
    number = (quarter_start.month - 1) // 3 + 1
    year = quarter_start.year
    return f"Q{number} {year}-{(year + 1) % 100:02d}"


def index_usage(plan: str) -> dict[str, list[str]]:
    """Which tables were read how, from an EXPLAIN text."""
    scans: dict[str, list[str]] = {}
    pattern = (
        r"(Parallel )?(Seq Scan|Index Only Scan|Index Scan|Bitmap Index Scan)"
        r"(?: using (\S+))? on (\S+)"
    )
    for match in re.finditer(pattern, plan):
        kind = (match.group(1) or "") + match.group(2)
        if match.group(2) == "Bitmap Index Scan":
            # "Bitmap Index Scan on <index>"
            entry = f"{kind} on {match.group(4)}"
        elif match.group(3):
            entry = f"{kind} using {match.group(3)} on {match.group(4)}"
        else:
            entry = f"{kind} on {match.group(4)}"
        scans.setdefault("nodes", []).append(entry)
    scans["nodes"] = sorted(set(scans.get("nodes", [])))
    return scans


async def explain(connection: Any, sql: str, *params: Any) -> str:
    rows = await connection.fetch("EXPLAIN (ANALYZE, BUFFERS) " + sql, *params)
    return "\n".join(row[0] for row in rows)


PLAN_CACHE_MODES = (("custom", "force_custom_plan"), ("generic", "force_generic_plan"))
"""asyncpg prepares every statement and keeps it per connection; PostgreSQL plans
the first five executions with the actual dates (custom plans), then may switch to
one generic plan, estimated without them. A pooled service connection that has
served the report five times runs the generic plan, so both are measured, each on
both sides, pinned with ``plan_cache_mode`` on every connection."""


async def quarterly_benchmark(
    repeats: int, first: Any, last: Any, index_test: bool
) -> dict[str, Any]:
    import asyncpg

    from analysis import reports
    from analysis.quarters import quarters_between
    from programme.platform import database

    db = database.engine()
    labels = [q.label for q in quarters_between(first, last)]
    low, high = first.first_day, last.last_day
    parts = report_parts_sql()
    out: dict[str, Any] = {"first": first.label, "last": last.label, "repeats": repeats}
    for regime, mode in PLAN_CACHE_MODES:
        log(f"  {regime} plans (plan_cache_mode = {mode})")
        settings = {"plan_cache_mode": mode}
        await db.close_connection_pool()
        await db.start_connection_pool(min_size=0, max_size=4, server_settings=settings)
        connection = await asyncpg.connect(**db.config, server_settings=settings)
        try:

            async def run_report() -> Any:
                return await reports.quarterly(first, last)

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
                "report": await explain(connection, reports.QUARTERLY_SQL, low, high, labels),
                "bare": await explain(connection, BARE_QUARTERLY_SQL, low, high),
                "bare_cohort": await explain(connection, BARE_COHORT_SQL, low, high),
            }
            found["plans"] = plans
            found["scans"] = {name: index_usage(plan)["nodes"] for name, plan in plans.items()}
            found["execution_ms"] = {
                name: float(re.search(r"Execution Time: ([\d.]+) ms", plan).group(1))  # type: ignore[union-attr]
                for name, plan in plans.items()
            }
            if regime == "custom":
                out.update(await _check_quarterly(connection, first, last, labels))
                if index_test:
                    found["index_test"] = await _index_test(
                        connection,
                        [c for c in candidates if c[0] in ("report", "bare", "report_part_cohort")],
                        repeats,
                        reports.QUARTERLY_SQL,
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
    from analysis import reports

    low, high = first.first_day, last.last_day
    report = await reports.quarterly(first, last)
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
            "scans": index_usage(plan)["nodes"],
            "bare_scans": index_usage(bare_plan)["nodes"],
            "plan": plan,
        }
    return results


# --------------------------------------------------------------------------------------
# Benchmark 2: the reoffending analysis against a bare lifelines fit.
# --------------------------------------------------------------------------------------


def fast_schoenfeld_within_strata(
    self: Any, X: Any, T: Any, E: Any, weights: Any, entries: Any
) -> Any:
    """lifelines' ``_compute_schoenfeld_within_strata`` (Efron ties) without its loop.

    lifelines grows the residual array with ``np.append`` once per row, which
    copies the whole array each time: quadratic in the rows (lifelines issue
    #1067). The same sums with cumulative sums and bincounts: linear. The rows
    come sorted by time, as lifelines sorts them before calling this.
    """
    import numpy as np

    x = X.values
    e = E.values.astype(bool)
    t = T.values
    w = weights.values
    n, d = x.shape
    if not e.any():
        return np.zeros((n, d))
    phi = w * np.exp(x @ self.params_.values)
    phi_x = phi[:, None] * x
    # Risk set at a time: every row from the first one with that time onwards.
    risk_phi_all = np.cumsum(phi[::-1])[::-1]
    risk_phi_x_all = np.cumsum(phi_x[::-1], axis=0)[::-1]
    new_time = np.empty(n, dtype=bool)
    new_time[0] = True
    new_time[1:] = t[1:] != t[:-1]
    starts = np.flatnonzero(new_time)
    group = np.cumsum(new_time) - 1
    k = len(starts)
    risk_phi, risk_phi_x = risk_phi_all[starts], risk_phi_x_all[starts]
    ef = e.astype(float)
    ties = np.bincount(group, weights=ef, minlength=k)
    tie_phi = np.bincount(group, weights=phi * ef, minlength=k)
    tie_phi_x = np.column_stack(
        [np.bincount(group, weights=phi_x[:, j] * ef, minlength=k) for j in range(d)]
    )
    # Efron: the mean at a time with c tied events averages over l = 0..c-1.
    with_events = np.flatnonzero(ties > 0)
    c = ties[with_events].astype(np.int64)
    owner = np.repeat(np.arange(len(with_events)), c)
    l_index = np.arange(c.sum()) - np.repeat(np.cumsum(c) - c, c)
    fraction = l_index / c[owner]
    g = with_events[owner]
    numerator = risk_phi_x[g] - fraction[:, None] * tie_phi_x[g]
    denominator = (risk_phi[g] - fraction * tie_phi[g]) * c[owner]
    part = numerator / denominator[:, None]
    mean = np.zeros((k, d))
    for j in range(d):
        mean[with_events, j] = np.bincount(owner, weights=part[:, j], minlength=len(with_events))
    return ef[:, None] * (x - mean[group])


@contextmanager
def vectorised_schoenfeld() -> Iterator[None]:
    """Within the block, lifelines computes Schoenfeld residuals the linear way."""
    from lifelines.fitters.coxph_fitter import SemiParametricPHFitter

    original = SemiParametricPHFitter._compute_schoenfeld_within_strata
    SemiParametricPHFitter._compute_schoenfeld_within_strata = fast_schoenfeld_within_strata
    try:
        yield
    finally:
        SemiParametricPHFitter._compute_schoenfeld_within_strata = original


@contextmanager
def full_data_ph_test() -> Iterator[None]:
    """Within the block, survival.cox checks proportional hazards on every person
    (not its random sample), with the linear residuals: the same test lifelines
    would give on all rows, in a fraction of a second."""
    from analysis import survival

    with vectorised_schoenfeld():
        if not hasattr(survival, "PH_TEST_SAMPLE"):
            yield
            return
        original = survival.PH_TEST_SAMPLE
        survival.PH_TEST_SAMPLE = 10**12
        try:
            yield
        finally:
            survival.PH_TEST_SAMPLE = original


async def survival_benchmark(
    repeats: int,
    as_of: date,
    use_tracemalloc: bool,
    scaling_sizes: list[int],
    child_limit: float,
) -> dict[str, Any]:
    import warnings

    import pandas as pd
    from bench_support import connect
    from lifelines import CoxPHFitter
    from lifelines.statistics import proportional_hazard_test

    from analysis import cohort, survival
    from analysis.reoffending import AnalysisRequest, analyse, design_matrix
    from analysis.survival import cox, kaplan_meier
    from programme.platform.clock import today

    try:  # analyse() runs it since commit 5b2c283
        from analysis.before_after import before_after
    except ImportError:
        before_after = None
    sample = getattr(survival, "PH_TEST_SAMPLE", None)
    request = AnalysisRequest(horizon_days=HORIZON_DAYS, as_of=as_of, covariates=COVARIATES)
    now = today()
    sampler = RssSampler()
    times: dict[str, list[float]] = {}
    peaks: dict[str, int] = {}

    def note_peak(name: str) -> None:
        start, peak = sampler.read()
        peaks[name] = max(peaks.get(name, 0), peak - start)

    out: dict[str, Any] = {"as_of": as_of.isoformat(), "repeats": repeats, "ph_sample": sample}
    out["max_rss_before"] = max_rss_bytes()
    try:
        log("  warm-up analyse()")
        await analyse(request, now)
        for round_number in range(repeats):
            gc.collect()
            sampler.reset()
            with timed(times, "analyse"):
                result = await analyse(request, now)
            note_peak("analyse")
            out["analyse_n"], out["analyse_events"] = result.n, result.events
            out["ph_test_n"] = getattr(result.cox, "ph_test_n", None)
            del result
            gc.collect()
            with full_data_ph_test(), timed(times, "analyse, PH test on everyone (linear)"):
                await analyse(request, now)
            gc.collect()
            # The same work in its parts, on the same data.
            sampler.reset()
            with timed(times, "cohort.load"):
                raw, excluded = await cohort.load(as_of)
            connection = await connect()
            try:
                with timed(times, "  COHORT_SQL fetch alone (asyncpg)"):
                    records = await connection.fetch(cohort.COHORT_SQL, as_of)
                del records
            finally:
                await connection.close()
            with timed(times, "cohort.follow_up"):
                frame = cohort.follow_up(raw, HORIZON_DAYS, as_of)
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
                    fitter = CoxPHFitter().fit(data, "_duration", "_event", batch_mode=True)
                if sample is not None and len(data) > sample:
                    with timed(times, f"  PH check as cox() does it: refit + test on {sample:,}"):
                        checked = data.sample(n=sample, random_state=0)
                        checked_fit = CoxPHFitter().fit(checked, "_duration", "_event")
                        proportional_hazard_test(checked_fit, checked, time_transform="rank")
                with vectorised_schoenfeld(), timed(times, "  PH test on everyone, linear"):
                    full = proportional_hazard_test(fitter, data, time_transform="rank")
                with timed(times, "  concordance_index_"):
                    _ = fitter.concordance_index_
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
                    bare = CoxPHFitter().fit(bare_frame, "T", "E", batch_mode=True)
            note_peak("bare")
            out["bare_coefficients"] = {str(k): float(v) for k, v in bare.params_.items()}
            out["coefficients"] = {t.name: t.coef for t in model.terms}
            out["ph_test"] = dict(model.ph_test)
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
            plan = await explain(connection, cohort.COHORT_SQL, as_of)
        finally:
            await connection.close()
        out["cohort_plan"] = plan
        out["cohort_sql_execution_ms"] = float(
            re.search(r"Execution Time: ([\d.]+) ms", plan).group(1)  # type: ignore[union-attr]
        )
        out["cohort_scans"] = index_usage(plan)["nodes"]
        out["ph_scaling"] = _ph_scaling(kept, scaling_sizes, out["n"])
        del kept
        gc.collect()
        out["times"] = times
        out["median"] = m = {name: median(values) for name, values in times.items()}
        out["rss_peak_above_start"] = peaks
        out["max_rss_after"] = max_rss_bytes()
        if child_limit > 0:
            log(f"  analyse() in a fresh child process (limit {child_limit:.0f}s)")
            out["child"] = await _analyse_in_child(as_of, child_limit)
        out["ratio_analyse_to_bare"] = m["analyse"] / m["bare"]
        out["ratio_cox_to_bare"] = m["survival.cox"] / m["bare"]
        out["ratio_analyse_full_ph_to_bare"] = (
            m["analyse, PH test on everyone (linear)"] / m["bare"]
        )
        if use_tracemalloc:
            out["tracemalloc"] = await _tracemalloc_runs(request, now, as_of)
    finally:
        sampler.close()
    return out


def _ph_scaling(kept: Any, sizes: list[int], n_full: int) -> dict[str, Any]:
    """Time lifelines' PH test as it is on random subsets of the cohort; extrapolate.

    Also checks, on the smallest subset, that the linear residuals give the same
    test as lifelines' own.
    """
    import warnings

    import numpy as np
    from lifelines import CoxPHFitter
    from lifelines.statistics import proportional_hazard_test

    covariates, durations, events = kept
    rng = np.random.default_rng(20261123)
    out: dict[str, Any] = {"points": []}
    sizes = sorted({size for size in sizes if size < n_full}) or [n_full]
    for position, size in enumerate(sizes):
        rows = np.sort(rng.choice(n_full, size=size, replace=False))
        data = covariates.iloc[rows].reset_index(drop=True)
        data = data.assign(_duration=durations[rows], _event=events[rows])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fitter = CoxPHFitter().fit(data, "_duration", "_event", batch_mode=True)
            started = time.perf_counter()
            as_is = proportional_hazard_test(fitter, data, time_transform="rank")
            seconds = time.perf_counter() - started
            if position == 0:
                with vectorised_schoenfeld():
                    started = time.perf_counter()
                    linear = proportional_hazard_test(fitter, data, time_transform="rank")
                    out["linear_seconds_at_smallest"] = time.perf_counter() - started
                a = as_is.summary[["test_statistic", "p"]].to_numpy()
                b = linear.summary[["test_statistic", "p"]].to_numpy()
                out["max_difference_linear_vs_lifelines"] = float(np.abs(a - b).max())
                if not np.allclose(a, b, rtol=1e-9, atol=1e-12):
                    raise RuntimeError(f"linear residuals change the PH test: {a} vs {b}")
        out["points"].append({"rows": size, "events": int(events[rows].sum()), "seconds": seconds})
        log(f"  PH test as is on {size:,} rows: {seconds:.1f}s")
    points = out["points"]
    if len(points) >= 2:
        (n1, t1), (n2, t2) = [(p["rows"], p["seconds"]) for p in points[-2:]]
        exponent = float(np.log(t2 / t1) / np.log(n2 / n1))
    else:
        exponent = 2.0
    out["exponent"] = exponent
    last = points[-1]
    out["extrapolated_seconds"] = last["seconds"] * (n_full / last["rows"]) ** exponent
    return out


CHILD_FLAG = "--child-analyse"
THIS_FILE = str(Path(__file__).resolve())


def child_analyse(as_of_text: str) -> int:
    """In a child process: one analyse() exactly as the project runs it; JSON on stdout."""
    from analysis.reoffending import AnalysisRequest, analyse
    from programme.platform.clock import today

    request = AnalysisRequest(
        horizon_days=HORIZON_DAYS, as_of=date.fromisoformat(as_of_text), covariates=COVARIATES
    )
    import psutil

    before = psutil.Process().memory_info().rss
    started = time.perf_counter()
    result = asyncio.run(analyse(request, today()))
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
    from programme.platform import database

    environment = dict(os.environ)
    environment["DATABASE_URL"] = database.database_url()
    environment.setdefault("INSPIRE_SECRET_KEY", "bench-signing-key-not-for-production-use-0123")
    environment.setdefault("INSPIRE_ENCRYPTION_KEY", "bench-encryption-key-not-for-production-0123")
    environment.setdefault("INSPIRE_PSEUDONYM_KEY", "bench-pseudonym-key-not-for-production-0123")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        THIS_FILE,
        CHILD_FLAG,
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
    import warnings

    import pandas as pd
    from lifelines import CoxPHFitter

    from analysis import cohort
    from analysis.reoffending import analyse, design_matrix

    out: dict[str, Any] = {}
    gc.collect()
    log("  tracemalloc: analyse()")
    tracemalloc.start()
    started = time.perf_counter()
    await analyse(request, now)
    out["analyse_seconds_traced"] = time.perf_counter() - started
    out["analyse_peak"] = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    raw, _ = await cohort.load(as_of)
    frame = cohort.follow_up(raw, HORIZON_DAYS, as_of)
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
        CoxPHFitter().fit(bare_frame, "T", "E", batch_mode=True)
    out["bare_peak"] = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    out["bare_frame_bytes"] = int(bare_frame.memory_usage(deep=True).sum())
    return out


# --------------------------------------------------------------------------------------
# Running it all, and the report.
# --------------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from bench_support import connect, empty_every_table
    from run_referrals import code_version

    from analysis.quarters import Quarter
    from programme.platform import database
    from programme.platform.clock import today

    log("migrating the benchmark database")
    await database.migrate()
    db = database.engine()
    await db.start_connection_pool(min_size=0, max_size=4)
    results: dict[str, Any] = {}
    emptied = False
    try:
        connection = await connect()
        try:
            settings = {
                name: (await connection.fetchval(f"SHOW {name}"))
                for name in ("server_version", "shared_buffers", "work_mem", "max_wal_size")
            }
        finally:
            await connection.close()
        results["machine"] = {
            "nproc": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "postgresql": settings.pop("server_version"),
            "postgresql_settings": settings,
            "database": "DATABASE_URL" if os.environ.get("DATABASE_URL") else "embedded",
            "code": code_version(),
            "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30),
            "load_average_at_start": os.getloadavg(),
        }
        if os.environ.get("DATABASE_URL"):
            await empty_every_table()
            emptied = True
        now = today()
        last = previous_quarter(Quarter.of(now))  # the last complete quarter
        first = last
        for _ in range(args.quarters - 1):
            first = previous_quarter(first)
        cutoff = now - timedelta(days=1)
        log(
            f"generating {args.referrals:,} referrals ({first.label} to {last.label}) and "
            f"{args.attendance:,} attendance marks"
        )
        connection = await connect()
        try:
            results["data"] = await generate(
                connection, args.referrals, args.attendance, first.first_day, last.last_day, cutoff
            )
        finally:
            await connection.close()
        results["data"]["first_quarter"], results["data"]["last_quarter"] = first.label, last.label
        log(f"generated in {results['data']['seconds']:.0f}s: {results['data']['rows']}")
        log("benchmark 1: quarterly report")
        results["quarterly"] = await quarterly_benchmark(
            args.report_repeats, first, last, not args.no_index_test
        )
        log("benchmark 2: survival analysis")
        results["survival"] = await survival_benchmark(
            args.survival_repeats,
            last.last_day,
            not args.no_tracemalloc,
            args.ph_scaling,
            args.analyse_limit,
        )
        results["machine"]["load_average_at_end"] = os.getloadavg()
    finally:
        if emptied:
            await empty_every_table()
        await db.close_connection_pool()
    return results


def _gb(value: int) -> str:
    return f"{value / 2**30:.2f} GB"


def print_report(results: dict[str, Any]) -> None:
    from bench_support import table

    machine = results["machine"]
    print(
        f"\nMachine: {machine['nproc']} CPUs, {machine['memory_gb']} GB, Python "
        f"{machine['python']}, PostgreSQL {machine['postgresql']} ({machine['database']}, "
        f"{machine['postgresql_settings']}), {machine['platform']}, code {machine['code']}, "
        f"load average {machine['load_average_at_start'][0]:.1f} at start"
    )
    data = results["data"]
    print(
        f"\nData ({data['first_quarter']} to {data['last_quarter']}), generated in "
        f"{data['seconds']:.0f} s, database {_gb(data['database_bytes'])}:"
    )
    print(
        table(
            [
                [name, f"{count:,}", _gb(data["bytes"].get(name, 0))]
                for name, count in data["rows"].items()
            ],
            ["table", "rows", "size with indexes"],
        )
    )
    print(
        table(
            [[name, f"{seconds:.1f}"] for name, seconds in data["steps"].items()],
            ["generation step", "seconds"],
        )
    )
    print(f"shape: {data['shape']}; attendance plan: {data['attendance_plan']}")
    q = results["quarterly"]
    c, g = q["custom"], q["generic"]
    mc, mg = c["median"], g["median"]
    print(
        f"\nBenchmark 1: quarterly report {q['first']} to {q['last']}, median of "
        f"{q['repeats']} ({q['check']})"
    )

    def line(label: str, key: str) -> list[str]:
        cells = [label, f"{mc[key] * 1000:.0f}", f"{mc[key] / mc['bare']:.2f}"]
        if key in mg:
            cells += [f"{mg[key] * 1000:.0f}", f"{mg[key] / mg['bare']:.2f}"]
        else:
            cells += ["", ""]
        return cells

    rows = [
        line("reports.quarterly (whole)", "report"),
        *(
            [line("  part: per-quarter counts", "report_part_counted")]
            if "report_part_counted" in mc
            else []
        ),
        *(
            [line("  part: engagement cohort", "report_part_cohort")]
            if "report_part_cohort" in mc
            else []
        ),
        line("bare: one aggregate, per-quarter counts", "bare"),
        line("bare: engagement cohort aggregate", "bare_cohort"),
    ]
    print(
        table(
            rows,
            ["measure", "custom plans ms", "x bare", "generic plans ms", "x bare"],
        )
    )
    for regime, found in (("custom", c), ("generic", g)):
        print(
            f"{regime} plans: report / bare = {found['ratio_report_to_bare']:.2f} (target <= 1.5);"
            f" report / (bare + bare cohort) = {found['ratio_report_to_bare_plus_cohort']:.2f}"
        )
        for name, scans in found["scans"].items():
            print(
                f"  plan {name} ({found['execution_ms'][name]:.0f} ms in EXPLAIN ANALYZE): {scans}"
            )
    for found in c.get("index_test", {}).values():
        print(
            f"with {found['statement']} (built in {found['build_seconds']:.1f}s): report "
            f"{found['median']['report'] * 1000:.0f} ms (cohort part "
            f"{found['median'].get('report_part_cohort', 0) * 1000:.0f} ms), bare "
            f"{found['median']['bare'] * 1000:.0f} ms, ratio {found['ratio_report_to_bare']:.2f}; "
            f"report plan {found['scans']}"
        )
    s = results["survival"]
    m = s["median"]
    print(
        f"\nBenchmark 2: analyse() with {', '.join(COVARIATES)} ({s['n']:,} complete rows, "
        f"{s['events']:,} events, {s['excluded']:,} excluded), median of {s['repeats']} "
        f"({s['check']})"
    )
    print(
        table(
            [[name, f"{seconds:.2f}", f"{seconds / m['bare']:.2f}"] for name, seconds in m.items()],
            ["measure", "seconds", "x bare"],
        )
    )
    scaling = s["ph_scaling"]
    print(
        "lifelines' PH test on all the rows it is given (scaled Schoenfeld residuals grown by "
        "np.append per row): "
        + ", ".join(f"{p['rows']:,} rows {p['seconds']:.1f}s" for p in scaling["points"])
        + f"; time ~ rows^{scaling['exponent']:.2f}; extrapolated to {s['n']:,} rows: "
        f"{scaling['extrapolated_seconds']:.0f}s. The linear residuals give the same test "
        f"(max difference {scaling['max_difference_linear_vs_lifelines']:.1e})."
    )
    print(
        f"ratio analyse / bare = {s['ratio_analyse_to_bare']:.1f} (target <= 1.5); "
        f"cox() / bare = {s['ratio_cox_to_bare']:.2f}; analyse with the PH test on everyone "
        f"(linear residuals) / bare = {s['ratio_analyse_full_ph_to_bare']:.1f}"
    )
    print(
        f"PH test p, as cox() reports it (sample of {s['ph_sample']}): {s['ph_test']}; "
        f"on everyone: {s['ph_test_everyone']}"
    )
    child = s.get("child")
    if child:
        if child["stopped_at_limit"]:
            print(
                f"analyse() in a fresh process: stopped at the {child['limit_seconds']:.0f}s "
                f"limit, peak RSS {_gb(child['peak_rss_until_stopped'])} until then"
            )
        else:
            print(
                f"analyse() in a fresh process: {child['seconds']:.1f}s, peak RSS "
                f"{_gb(child['peak_rss_sampled'])} (after imports "
                f"{_gb(child['rss_after_imports'])})"
            )
    peaks = s["rss_peak_above_start"]
    print(
        "peak RSS above the phase's start: "
        + ", ".join(f"{name} {_gb(value)}" for name, value in peaks.items())
        + f"; ru_maxrss {_gb(s['max_rss_before'])} before, {_gb(s['max_rss_after'])} after"
    )
    if "tracemalloc" in s:
        t = s["tracemalloc"]
        print(
            f"tracemalloc peak: analyse {_gb(t['analyse_peak'])} "
            f"({t['analyse_seconds_traced']:.1f}s traced), bare fit {_gb(t['bare_peak'])} "
            f"(its input frame {_gb(t['bare_frame_bytes'])})"
        )
    print(
        f"COHORT_SQL server-side (EXPLAIN ANALYZE): {s['cohort_sql_execution_ms']:.0f} ms; "
        f"plan {s['cohort_scans']}; concordance {s['concordance']:.3f}"
    )
    print(f"\nwhole run {results['wall_seconds']:.0f} s")


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    if arguments[:1] == [CHILD_FLAG]:  # started by _analyse_in_child, environment set
        return child_analyse(arguments[1])
    args = parse_args(argv)
    if os.environ.get("DATABASE_URL"):
        if not args.allow_emptying_database:
            print(
                "national_scale: DATABASE_URL is set and this benchmark empties every table in"
                " it; add --allow-emptying-database if it is a scratch database",
                file=sys.stderr,
            )
            return 2
        os.environ.setdefault(
            "INSPIRE_SECRET_KEY", "bench-signing-key-not-for-production-use-0123456789"
        )
        os.environ.setdefault(
            "INSPIRE_ENCRYPTION_KEY", "bench-encryption-key-not-for-production-0123456789"
        )
        os.environ.setdefault(
            "INSPIRE_PSEUDONYM_KEY", "bench-pseudonym-key-not-for-production-use-0123456789"
        )
    # Before any project module is imported: a short path (the embedded server's
    # Unix socket lives in it) that nobody else uses.
    data_dir = Path(tempfile.mkdtemp(prefix="inspire-bench-"))
    os.environ["INSPIRE_DATA_DIR"] = str(data_dir)
    signal.signal(signal.SIGTERM, _terminated)
    started = time.monotonic()
    try:
        results = asyncio.run(run(args))
        results["wall_seconds"] = time.monotonic() - started
        results["arguments"] = {
            k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
        }
        print_report(results)
        if args.json:
            args.json.write_text(json.dumps(results, indent=2, default=str))
    finally:
        from run_referrals import stop_embedded_server

        stop_embedded_server(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)
    log(f"done in {time.monotonic() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
