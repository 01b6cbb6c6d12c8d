"""Event-loop responsiveness: ``GET /health`` while a big import and an analysis run.

    python bench/loop_responsiveness.py                 # about 3 minutes
    python bench/loop_responsiveness.py --rows 50000    # quicker
    python bench/loop_responsiveness.py --json out.json # also every figure as JSON

One ``inspire serve`` (one worker) on a fresh embedded database holding a
synthetic national data set (``national_data``: referrals with timelines and
police-recorded incidents) for the reoffending analysis. ``GET /health`` is
polled every ``--interval`` seconds from a thread of its own (``health_probe``):

1. **idle**: the server doing nothing else, for ``--idle-seconds``;
2. **load**: ``POST /imports/referrals`` with a ``--rows``-row CSV file (200,000
   by default, every row a different person, ``referral_data``) as an admin,
   and meanwhile ``GET /analysis/reoffending`` (Cox model, the bias-aware
   models for programme completion) one after another, at least once and at
   most ``--analyses`` times, until the import has answered.

Reported: /health p50/p95/p99/max in each phase, the ratio load / idle of the
p99, and the load p99 against the 50 ms target; the import's and analyses'
own times and answers (the import must put the file's rows in, the analyses
must answer 200). The slowest polls are listed with when they happened, so a
stall can be matched to the phase of the work that caused it.

Same isolation as the other benchmarks: a throwaway data directory with its
own embedded PostgreSQL, or DATABASE_URL only with ``--allow-emptying-database``
(it empties every table, before and after); all traffic to 127.0.0.1; fixed
counts and a time limit; the server stopped by its own pid.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import re
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from harness import (
    BENCH_DIR,
    HOST,
    Servers,
    add_common_arguments,
    add_user,
    connect,
    describe_machine,
    empty_every_table,
    inspire_command,
    log,
    machine,
    migrated_pool,
    table,
    throwaway_run,
    today,
    write_json,
)
from health_probe import HEADER, Probe, describe, row, summary

TARGET_MS = 50.0
ADMIN = "bench-admin"
ADMIN_PASSWORD = "bench-admin-password-0123"  # noqa: S105 (a throwaway database)
ANALYSIS_QUERY = {
    "group_by": "completed",
    "covariates": "age_at_referral,risk_level,prior_incidents,substance_misuse",
    "horizon_days": "365",
}
"""The heaviest ordinary request: Cox with four covariates and the bias-aware models. A
year's follow-up: comparing by completion now needs one longer than the programme."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000, help="rows in the import file")
    parser.add_argument(
        "--analysis-referrals", type=int, default=100_000, help="referrals in the national data"
    )
    parser.add_argument("--idle-seconds", type=float, default=15.0, help="idle polling, seconds")
    parser.add_argument("--interval", type=float, default=0.01, help="seconds between polls")
    parser.add_argument("--analyses", type=int, default=20, help="most analyses during the import")
    parser.add_argument("--time-limit", type=float, default=300.0, help="seconds for the load")
    parser.add_argument(
        "--debug-loop-ms",
        type=float,
        default=0.0,
        help="serve with bench/debug_serve.py instead, reporting where the loop was held"
        " longer than this (one process; slows the server down)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="inspire serve --workers (1: /health shares the event loop with the work)",
    )
    add_common_arguments(parser, empties_database=True)
    args = parser.parse_args(argv)
    if not 1_000 <= args.rows <= 200_000:
        parser.error("--rows must be 1,000 to 200,000")
    if not 1_000 <= args.analysis_referrals <= 1_000_000:
        parser.error("--analysis-referrals must be 1,000 to 1,000,000")
    if not 1 <= args.idle_seconds <= 120 or not 0.001 <= args.interval <= 1:
        parser.error("--idle-seconds must be 1 to 120 and --interval 0.001 to 1")
    if not 1 <= args.workers <= 4:
        parser.error("--workers must be 1 to 4")
    if not 1 <= args.analyses <= 50 or not 10 <= args.time_limit <= 900:
        parser.error("--analyses must be 1 to 50 and --time-limit 10 to 900")
    return args


async def sign_in(base_url: str) -> dict[str, str]:
    async with httpx.AsyncClient(base_url=base_url, trust_env=False, timeout=60.0) as client:
        answer = await client.post(
            "/auth/login", json={"username": ADMIN, "password": ADMIN_PASSWORD}
        )
    if answer.status_code != 200:
        raise RuntimeError(f"sign-in failed: {answer.status_code} {answer.text[:200]}")
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


_ASKED = itertools.count()


async def analysis(client: httpx.AsyncClient, headers: dict[str, str]) -> tuple[float, int]:
    """One analysis, computed: each asks a follow-up a day longer than the last, so the
    results cache (which answers a repeat on unchanged data in milliseconds, and an
    import's uncommitted rows change nothing) never answers it."""
    started = time.perf_counter()
    query = {**ANALYSIS_QUERY, "horizon_days": str(365 + next(_ASKED))}
    answer = await client.get("/analysis/reoffending", params=query, headers=headers)
    if answer.status_code != 200:
        raise RuntimeError(f"the analysis answered {answer.status_code}: {answer.text[:300]}")
    return time.perf_counter() - started, answer.status_code


async def populate(args: argparse.Namespace) -> dict[str, Any]:
    """The national data set the analysis reads, built in the database itself."""
    from national_data import generate
    from national_quarterly import quarters_back

    now = today()
    first, last = quarters_back(now, 20)
    connection = await connect()
    try:
        return await generate(
            connection,
            args.analysis_referrals,
            0,
            first.first_day,
            last.last_day,
            now - timedelta(days=1),
        )
    finally:
        await connection.close()


async def run(args: argparse.Namespace, log_dir: Path) -> dict[str, Any]:
    from referral_data import expected_outcome, referrals_csv

    async with migrated_pool():
        found_machine = await machine()
        found_machine["load_average_at_start"] = os.getloadavg()
        await empty_every_table()
        log(f"generating {args.analysis_referrals:,} referrals for the analysis")
        data = await populate(args)
        log(f"national data in {data['seconds']:.0f}s: {data['rows']}")
    now = today()
    content = referrals_csv(args.rows, now)
    log(f"import file: {args.rows:,} rows, {len(content) / 1e6:.1f} MB")
    add_user(ADMIN, ADMIN_PASSWORD, "admin", None, dict(os.environ))

    results: dict[str, Any] = {
        "machine": found_machine,
        "rows": args.rows,
        "workers": args.workers,
        "interval": args.interval,
    }
    results["analysis_referrals"] = data["rows"].get("referral")
    try:
        with Servers(log_dir) as servers:
            command = [*inspire_command(), "serve", "--host", HOST, "--workers", str(args.workers)]
            if args.debug_loop_ms:
                script = str(BENCH_DIR / "debug_serve.py")
                command = [sys.executable, script, "--stall-ms", str(args.debug_loop_ms)]
            server = servers.start("service", command, dict(os.environ))
            await server.wait_until_up()
            headers = await sign_in(server.url)
            async with httpx.AsyncClient(
                base_url=server.url, trust_env=False, timeout=args.time_limit
            ) as client:
                warm, _ = await analysis(client, headers)
                log(f"warm-up analysis: {warm:.1f}s")
                results["warm_up_analysis_seconds"] = warm

                polls = int(args.idle_seconds / args.interval) + 1
                log(f"idle: polling /health for {args.idle_seconds:.0f}s")
                idle = Probe(server.url, args.interval, polls).start()
                await asyncio.sleep(args.idle_seconds)
                results["idle"] = summary(idle.stop())
                log(f"idle: {describe(results['idle'])}")

                log(f"load: importing {args.rows:,} rows and analysing meanwhile")
                limit = int(args.time_limit / args.interval) + 1
                log_from = server.log_path.stat().st_size
                loaded = Probe(server.url, args.interval, limit).start()
                started = time.perf_counter()
                importing = asyncio.create_task(
                    client.post(
                        "/imports/referrals",
                        content=content,
                        # One mapping: httpx's params replace a query written in the URL.
                        params={"skip_invalid": "true", "create_agencies": "true"},
                        headers={**headers, "Content-Type": "text/csv"},
                    )
                )
                analyses: list[float] = []
                try:
                    while len(analyses) < args.analyses and (not analyses or not importing.done()):
                        seconds, _ = await analysis(client, headers)
                        analyses.append(seconds)
                        log(f"load: analysis {len(analyses)} in {seconds:.1f}s")
                    answer = await importing
                    import_seconds = time.perf_counter() - started
                finally:
                    loaded.stop()
                    if not importing.done():
                        importing.cancel()
                results["load"] = summary(loaded)
                results["load_seconds"] = time.perf_counter() - started
                results["slowest"] = slowest(loaded, started)
                with server.log_path.open("rb") as output:
                    output.seek(log_from)
                    results["stalls"] = stalls(output.read().decode(errors="replace"))
                log(f"load: {describe(results['load'])}")
    finally:
        async with migrated_pool():
            await empty_every_table()

    if answer.status_code != 200:
        raise RuntimeError(f"the import answered {answer.status_code}: {answer.text[:300]}")
    report = answer.json()
    accepted, returned = expected_outcome(args.rows)
    put_in = report["imported"] + report["returned"]
    log(
        f"import: {import_seconds:.1f}s, imported {report['imported']:,} + returned"
        f" {report['returned']:,}, refused {report['refused']}"
    )
    if put_in < 0.99 * (accepted + returned):
        raise RuntimeError(
            f"the import put in {put_in} rows, expected {accepted + returned}:"
            f" {report['errors'][:3]}"
        )
    results["import"] = {
        "seconds": import_seconds,
        "imported": report["imported"],
        "returned": report["returned"],
        "refused": report["refused"],
        "expected": [accepted, returned],
    }
    results["analyses_seconds"] = analyses
    results["ratio_p99"] = results["load"]["p99_ms"] / results["idle"]["p99_ms"]
    results["target_met"] = results["load"]["p99_ms"] <= TARGET_MS
    results["machine"]["load_average_at_end"] = os.getloadavg()
    return results


def slowest(probe: Probe, started: float, count: int = 8) -> list[dict[str, float]]:
    """The slowest polls: when they were sent (seconds after the load began) and how long."""
    ranked = sorted(zip(probe.sent_at, probe.latencies, strict=True), key=lambda p: -p[1])
    return [
        {"at_s": round(at - started, 2), "ms": round(1000 * seconds, 1)}
        for at, seconds in ranked[:count]
    ]


def stalls(server_output: str) -> list[dict[str, Any]]:
    """debug_serve's STALL lines, grouped by the innermost project frame, longest first."""
    found: dict[str, dict[str, Any]] = {}
    for line in server_output.splitlines():
        match = re.match(r"STALL (\d+) ms in (\S+ \S+) \| (.*) \|\| (.*)", line)
        if not match:
            continue
        held, where, stack, busy = (
            int(match.group(1)),
            match.group(2),
            match.group(3),
            match.group(4),
        )
        entry = found.setdefault(
            where, {"where": where, "samples": 0, "max_ms": 0, "stack": "", "busy": ""}
        )
        entry["samples"] += 1
        if held >= entry["max_ms"]:
            entry["max_ms"], entry["stack"], entry["busy"] = held, stack, busy
    return sorted(found.values(), key=lambda e: (-e["samples"], -e["max_ms"]))


def print_report(results: dict[str, Any]) -> None:
    print(f"\nMachine: {describe_machine(results['machine'])}")
    start, end = (
        results["machine"]["load_average_at_start"],
        results["machine"]["load_average_at_end"],
    )
    print(f"Load average at start {start[0]:.1f}, at end {end[0]:.1f}")
    found = results["import"]
    analyses = results["analyses_seconds"]
    print(
        f"\n`POST /imports/referrals` of {results['rows']:,} rows took {found['seconds']:.1f} s"
        f" (imported {found['imported']:,} + returned {found['returned']:,}, refused"
        f" {found['refused']}); meanwhile {len(analyses)} `GET /analysis/reoffending` on"
        f" {results['analysis_referrals']:,} referrals ("
        + ", ".join(f"{s:.1f} s" for s in analyses)
        + ").\n"
    )
    print(
        f"`inspire serve --workers {results['workers']}`; /health polled every"
        f" {1000 * results['interval']:.0f} ms from a thread of its own, one kept-alive"
        " connection.\n"
    )
    print(table([row("idle", results["idle"]), row("import + analysis", results["load"])], HEADER))
    print(
        f"\n- p99 load / idle = **{results['ratio_p99']:.1f}x**"
        f"\n- p99 under load {results['load']['p99_ms']:.1f} ms against the {TARGET_MS:.0f} ms"
        f" target: **{'met' if results['target_met'] else 'MISSED'}**"
        "\n- slowest polls (s after the load began: ms): "
        + ", ".join(f"{p['at_s']}: {p['ms']}" for p in results["slowest"])
    )
    if results.get("stalls"):
        print("\nWhere the event loop was held (debug_serve samples during the load):\n")
        print(
            table(
                [
                    [e["where"], e["samples"], e["max_ms"], e["stack"], e["busy"]]
                    for e in results["stalls"]
                ],
                [
                    "loop thread: innermost project frame",
                    "samples",
                    "max ms",
                    "loop thread: innermost frames",
                    "other threads working (longest sample)",
                ],
            )
        )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with throwaway_run(
        "loop_responsiveness", empties_database=True, allowed=args.allow_emptying_database
    ) as data_dir:
        results = asyncio.run(run(args, data_dir))
        print_report(results)
        write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
