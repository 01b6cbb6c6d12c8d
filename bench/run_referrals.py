"""Referral benchmarks: bulk CSV import and POST /referrals, each as a ratio to a bare baseline.

    python bench/run_referrals.py                 # both (a few minutes)
    python bench/run_referrals.py --only import   # benchmark 1
    python bench/run_referrals.py --only http     # benchmark 2

Runs on its own embedded PostgreSQL in a fresh temporary data directory
(INSPIRE_DATA_DIR is set before any project module is imported), deleted at the
end. With DATABASE_URL set it uses that server instead and EMPTIES EVERY TABLE
in it, so it refuses to start unless --allow-emptying-database is given: point
it at a scratch database. All load goes to 127.0.0.1; every loop has a fixed
count and a time limit. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

from harness import (
    add_common_arguments,
    describe_machine,
    machine,
    migrated_pool,
    table,
    throwaway_run,
    write_json,
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("import", "http"), help="run one benchmark")
    parser.add_argument("--rows", type=int, default=100_000, help="import rows (max 100,000)")
    parser.add_argument("--repeats", type=int, default=3, help="import repeats (median)")
    parser.add_argument("--requests", type=int, default=2_000, help="HTTP requests per round")
    parser.add_argument("--rounds", type=int, default=3, help="HTTP rounds per target (median)")
    parser.add_argument("--warm-up", type=int, default=200, help="HTTP warm-up requests")
    parser.add_argument("--concurrency", type=int, default=16, help="HTTP requests in flight")
    parser.add_argument(
        "--time-limit", type=float, default=120.0, help="seconds allowed per HTTP round"
    )
    add_common_arguments(parser, empties_database=True)
    args = parser.parse_args(argv)
    if not 1 <= args.rows <= 100_000:
        parser.error("--rows must be 1 to 100,000")
    for name in ("repeats", "requests", "rounds", "concurrency"):
        if not 1 <= getattr(args, name) <= 100_000:
            parser.error(f"--{name} must be 1 to 100,000")
    if not 0 <= args.warm_up <= 10_000 or not 1 <= args.time_limit <= 600:
        parser.error("--warm-up must be 0 to 10,000 and --time-limit 1 to 600 seconds")
    return args


async def run(args: argparse.Namespace, log_dir: Path) -> dict[str, Any]:
    # Imported here, once INSPIRE_DATA_DIR is set: import_bench imports the project.
    import http_bench
    import import_bench

    results: dict[str, Any] = {}
    async with migrated_pool():
        results["machine"] = await machine()
        if args.only in (None, "import"):
            results["import"] = await import_bench.benchmark(args.rows, args.repeats)
        if args.only in (None, "http"):
            results["http"] = await http_bench.benchmark(
                args.requests,
                args.warm_up,
                args.rounds,
                args.concurrency,
                args.time_limit,
                log_dir,
            )
    return results


def print_report(results: dict[str, Any]) -> None:
    print(f"\nMachine: {describe_machine(results['machine'])}")
    if "import" in results:
        found = results["import"]
        m = found["median"]
        rows = found["rows"]

        def line(label: str, seconds: float) -> list[str]:
            return [
                label,
                f"{seconds:.2f}",
                f"{rows / seconds:,.0f}",
                f"{seconds / m['baseline']:.2f}",
            ]

        print(
            f"\nBenchmark 1: import {rows:,} rows "
            f"({found['csv_bytes'] / 1e6:.1f} MB CSV), median of {found['repeats']}"
        )
        print(
            table(
                [
                    line("import_referrals (whole)", m["import"]),
                    line("  checking: plan_import / check_rows", m["in_import_plan"]),
                    line("  look-ups: already imported, people, overlaps", m["in_import_lookups"]),
                    line("  building records, agencies", m["in_import_write_build"]),
                    line("  COPY into the 5 real tables", m["in_import_write_copy"]),
                    *(
                        line(f"    COPY {name} ({count:,} rows)", m[f"copy_{name}"])
                        for name, count in found["rows_written"].items()
                    ),
                    line("  other (transaction, report; < 0: overlap)", m["in_import_other"]),
                    line("the import's COPYs made again, alone", m["copies_alone"]),
                    line("plan_import alone", m["plan_alone"]),
                    line("dialable_uk_number alone, every row", m["phones_alone"]),
                    line("baseline: csv parse", m["baseline_parse"]),
                    line("baseline: COPY into bare text table", m["baseline_copy"]),
                    line("baseline: parse + COPY", m["baseline"]),
                ],
                ["measure", "seconds", "rows/s", "x baseline"],
            )
        )
        print(
            f"\nimport {found['import_rows_per_s']:,.0f} rows/s; raw COPY "
            f"{found['copy_rows_per_s']:,.0f} rows/s; parse + COPY "
            f"{found['baseline_rows_per_s']:,.0f} rows/s\n"
            f"ratio import / COPY alone = {found['ratio_import_to_copy']:.1f}x; "
            f"import / (parse + COPY) = {found['ratio_import_to_baseline']:.1f}x\n"
            f"ratio import / COPY of the same records into the 5 real tables = "
            f"{m['import'] / m['in_import_write_copy']:.2f}x timed inside the import, "
            f"{m['import'] / m['copies_alone']:.2f}x made again alone (target <= 2x, issue 15)"
        )
    if "http" in results:
        found = results["http"]
        print(
            f"\nBenchmark 2: POST /referrals, {found['requests_per_round']:,} requests x "
            f"{found['rounds']} rounds per target, concurrency {found['concurrency']}, "
            f"median round"
        )
        print(
            table(
                [
                    [
                        name,
                        f"{found[key]['rps']:.0f}",
                        " / ".join(f"{rps:.0f}" for rps in found[key]["rounds_rps"]),
                        f"{found[key]['p50_ms']:.1f}",
                        f"{found[key]['p95_ms']:.1f}",
                        str(found[key]["non_201"]),
                        f"{found[key]['client_cpu']:.0%}",
                    ]
                    for name, key in (("inspire serve", "service"), ("bare app", "bare"))
                ],
                ["target", "req/s", "rounds", "p50 ms", "p95 ms", "non-201", "client CPU"],
            )
        )
        print(f"\nratio service / bare = {found['ratio_service_to_bare']:.2f} (target >= 0.6)")
        for key in ("service", "bare"):
            if found[key]["non_201"] or found[key]["timed_out"]:
                print(f"{key}: statuses {found[key]['statuses']}; e.g. {found[key]['samples']}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with throwaway_run(
        "run_referrals", empties_database=True, allowed=args.allow_emptying_database
    ) as data_dir:
        started = time.monotonic()
        results = asyncio.run(run(args, data_dir))
        results["wall_seconds"] = time.monotonic() - started
        print_report(results)
        write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
