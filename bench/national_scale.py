"""National scale: the quarterly report and the survival analysis on synthetic national data.

    python bench/national_scale.py                                        # 1M referrals, 10M marks
    python bench/national_scale.py --referrals 100000 --attendance 1000000  # quick check

Builds a synthetic national data set server-side (``INSERT ... SELECT
generate_series``) in the real tables: agencies, 1,000,000 people and
referrals with their dated timelines, returned referrals, police-recorded
incidents, and a programme with groups, sessions and 10,000,000 attendance
marks. Then, each as a ratio to a bare baseline measured in the same run:

1. ``analysis.services.quarterly`` over 20 quarters against one hand-written
   SQL aggregate giving the same per-quarter counts (checked equal), with
   EXPLAIN (ANALYZE, BUFFERS) of both;
2. ``analysis.services.analyse`` with 4 covariates against a bare lifelines
   ``CoxPHFitter().fit(..., batch_mode=True)`` on pre-built arrays of the same
   rows and covariates; its phases, and peak memory.

Runs on its own embedded PostgreSQL in a fresh temporary data directory
(INSPIRE_DATA_DIR is set before any project module is imported), deleted at the
end, also on error. With DATABASE_URL set it uses that server instead and
EMPTIES EVERY TABLE in it, so it refuses to start unless
--allow-emptying-database is given. No network but the local database; every
loop has a fixed count. See bench/README.md.

The parts: ``national_data`` (the data), ``national_quarterly`` (benchmark 1),
``national_survival`` (benchmark 2), ``schoenfeld`` (the PH test experiment),
``national_report`` (the Markdown); this script reads the options and runs them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from harness import (
    add_common_arguments,
    connect,
    empty_every_table,
    log,
    machine,
    migrated_pool,
    throwaway_run,
    today,
    write_json,
)
from national_data import generate
from national_report import print_report


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
    add_common_arguments(parser, empties_database=True)
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


async def run(args: argparse.Namespace) -> dict[str, Any]:
    # The benchmarks import the project: here, once INSPIRE_DATA_DIR is set, and
    # each just before it runs (as the project's modules were imported before).
    from national_quarterly import quarterly_benchmark, quarters_back

    results: dict[str, Any] = {}
    emptied = False
    async with migrated_pool():
        try:
            results["machine"] = await machine("shared_buffers", "work_mem", "max_wal_size")
            results["machine"].update(
                memory_gb=round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30),
                load_average_at_start=os.getloadavg(),
            )
            if os.environ.get("DATABASE_URL"):
                await empty_every_table()
                emptied = True
            now = today()
            first, last = quarters_back(now, args.quarters)
            cutoff = now - timedelta(days=1)
            log(
                f"generating {args.referrals:,} referrals ({first.label} to {last.label}) and "
                f"{args.attendance:,} attendance marks"
            )
            connection = await connect()
            try:
                results["data"] = await generate(
                    connection,
                    args.referrals,
                    args.attendance,
                    first.first_day,
                    last.last_day,
                    cutoff,
                )
            finally:
                await connection.close()
            data = results["data"]
            data["first_quarter"], data["last_quarter"] = first.label, last.label
            log(f"generated in {data['seconds']:.0f}s: {data['rows']}")
            log("benchmark 1: quarterly report")
            results["quarterly"] = await quarterly_benchmark(
                args.report_repeats, first, last, not args.no_index_test
            )
            log("benchmark 2: survival analysis")
            from national_survival import survival_benchmark

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
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with throwaway_run(
        "national_scale", empties_database=True, allowed=args.allow_emptying_database
    ):
        started = time.monotonic()
        results = asyncio.run(run(args))
        results["wall_seconds"] = time.monotonic() - started
        results["arguments"] = {
            k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
        }
        print_report(results)
        write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
