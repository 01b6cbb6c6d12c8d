"""Fault test: the database stopped and restarted under a write load, every 2xx checked after.

    python bench/fault_test.py                              # 3 outages, about 2 minutes
    python bench/fault_test.py --workers 2 --outages 5 --down 3

Run before a release. ``inspire serve`` runs on 127.0.0.1 on a throwaway data
directory with its own embedded PostgreSQL (``harness.throwaway_run``); a
referrer signs in, and ``--concurrency`` clients POST /referrals, every body a
different person, while the embedded PostgreSQL is stopped (``pg_ctl -m
fast``) ``--outages`` times for ``--down`` seconds each, ``--up`` seconds
apart, and started again each time. The load stops ``--up`` seconds after the
last restart, after ``--requests`` requests, or at ``--time-limit``, whichever
comes first. Then:

- every 201's referral is looked up in the database: each must be there;
- no answer may be a 5xx other than 503, and no request may fail to get an
  answer at all;
- referrals stored without a 201 (committed, then the answer lost to the
  outage) are counted: a client that retries gets 409 for them;
- SIGTERM to the server: it must exit, with status 0, within 10 seconds.

Exit status 1 if any check fails. Progress on stderr, the report (Markdown) on
stdout. With DATABASE_URL set it refuses to run: it must stop the database,
which only the embedded one may be.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
from harness import (
    HOST,
    Server,
    Servers,
    add_common_arguments,
    add_user,
    connect,
    describe_machine,
    inspire_command,
    log,
    machine,
    migrated_pool,
    percentile,
    project_database,
    table,
    throwaway_run,
    today,
    write_json,
)

STOP_LIMIT = 10.0
"""Seconds SIGTERM may take to stop the server (the bound the project promises)."""
REQUEST_TIMEOUT = 30.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=1, help="inspire serve --workers")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    parser.add_argument("--outages", type=int, default=3, help="times the database is stopped")
    parser.add_argument("--down", type=float, default=5.0, help="seconds each outage lasts")
    parser.add_argument("--up", type=float, default=10.0, help="seconds of load between outages")
    parser.add_argument("--requests", type=int, default=30_000, help="at most this many requests")
    parser.add_argument("--time-limit", type=float, default=300.0, help="at most this many s")
    add_common_arguments(parser, empties_database=False)
    args = parser.parse_args(argv)
    if not 1 <= args.workers <= 8 or not 1 <= args.concurrency <= 64:
        parser.error("--workers must be 1 to 8 and --concurrency 1 to 64")
    if not 1 <= args.outages <= 20 or not 0.5 <= args.down <= 60 or not 1 <= args.up <= 120:
        parser.error("--outages 1 to 20, --down 0.5 to 60 s, --up 1 to 120 s")
    if not 100 <= args.requests <= 100_000 or not 10 <= args.time_limit <= 1800:
        parser.error("--requests 100 to 100,000 and --time-limit 10 to 1800 s")
    return args


# ---------------------------------------------------------------- the database, stopped and started


class EmbeddedDatabase:
    """The run's embedded PostgreSQL, stopped and started under the server's feet."""

    def __init__(self) -> None:
        self.server = project_database().embedded_server()

    def _pg_ctl(self, *args: str) -> None:
        from pgserver._commands import POSTGRES_BIN_PATH

        subprocess.run(
            [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(self.server.pgdata), *args],
            user=self.server.system_user,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
            check=True,
        )

    def stop(self) -> None:
        self._pg_ctl("-m", "fast", "-w", "-t", "30", "stop")

    def start(self) -> None:
        # The same socket directory as before, so the server's address is unchanged.
        self.server.ensure_postgres_running()


# ---------------------------------------------------------------- the load


@dataclass
class Load:
    statuses: Counter[str] = field(default_factory=Counter)
    created: list[str] = field(default_factory=list)
    samples: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    sent: int = 0
    timeline: list[tuple[float, str]] = field(default_factory=list)
    """(seconds since the start, status) of every answer, for the recovery times."""


@dataclass
class Outage:
    stopped_at: float
    started_at: float
    stop_seconds: float
    start_seconds: float


async def write_load(
    base_url: str,
    headers: dict[str, str],
    bodies: list[dict[str, Any]],
    concurrency: int,
    started: float,
    until: asyncio.Event,
    deadline: float,
) -> Load:
    load = Load()
    position = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=base_url, limits=limits, timeout=REQUEST_TIMEOUT, trust_env=False
    ) as client:

        async def client_loop() -> None:
            nonlocal position
            while position < len(bodies) and not until.is_set() and time.monotonic() < deadline:
                body = bodies[position]
                position += 1
                load.sent += 1
                began = time.monotonic()
                try:
                    response = await client.post("/referrals", json=body, headers=headers)
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                else:
                    status = str(response.status_code)
                    if response.status_code == 201:
                        load.created.append(response.json()["id"])
                    elif response.status_code != 503 and len(load.samples) < 5:
                        load.samples.append(f"{status} {response.text[:200]}")
                load.statuses[status] += 1
                load.latencies.append(time.monotonic() - began)
                load.timeline.append((time.monotonic() - started, status))

        await asyncio.gather(*(client_loop() for _ in range(concurrency)))
    return load


async def outages(
    database: EmbeddedDatabase,
    count: int,
    down: float,
    up: float,
    started: float,
    done: list[Outage],
) -> None:
    for number in range(count):
        await asyncio.sleep(up)
        began = time.monotonic()
        await asyncio.to_thread(database.stop)
        stopped = time.monotonic()
        log(f"outage {number + 1}/{count}: database stopped ({stopped - began:.1f}s)")
        await asyncio.sleep(down)
        await asyncio.to_thread(database.start)
        restarted = time.monotonic()
        log(f"outage {number + 1}/{count}: database started ({restarted - stopped - down:.1f}s)")
        done.append(
            Outage(
                stopped - started, restarted - started, stopped - began, restarted - stopped - down
            )
        )
    await asyncio.sleep(up)


def recovery_seconds(load: Load, outage: Outage) -> float | None:
    """From the database being back to the first 201 after it."""
    for at, status in sorted(load.timeline):
        if at >= outage.started_at and status == "201":
            return at - outage.started_at
    return None


async def wait_for_health(base_url: str, limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    async with httpx.AsyncClient(base_url=base_url, trust_env=False, timeout=5) as http:
        while time.monotonic() < deadline:
            try:
                if (await http.get("/health")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError("the server did not recover after the last outage")


# ---------------------------------------------------------------- the checks


async def stored(ids: list[str]) -> tuple[set[str], int]:
    """Which of ``ids`` are referrals in the database, and how many referrals there are."""
    connection = await connect()
    try:
        rows = await connection.fetch(
            "SELECT id FROM referral WHERE id = ANY($1::uuid[])", [UUID(i) for i in ids]
        )
        total = await connection.fetchval("SELECT count(*) FROM referral")
    finally:
        await connection.close()
    return {str(row["id"]) for row in rows}, int(total)


def stop_with_sigterm(server: Server) -> tuple[float, int | None]:
    began = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    try:
        code = server.process.wait(timeout=STOP_LIMIT * 3)
    except subprocess.TimeoutExpired:
        return time.monotonic() - began, None
    return time.monotonic() - began, code


# ---------------------------------------------------------------- the run


async def run(args: argparse.Namespace, log_dir: Path) -> dict[str, Any]:
    # Imported once INSPIRE_DATA_DIR is set.
    from http_bench import AGENCY, PASSWORD, USERNAME, log_in
    from referral_data import api_body

    async with migrated_pool():
        found_machine = await machine()
    database = EmbeddedDatabase()
    add_user(USERNAME, PASSWORD, "referrer", AGENCY, dict(os.environ))
    now = today()
    bodies = [api_body(i, now) for i in range(args.requests)]

    with Servers(log_dir) as servers:
        command = [*inspire_command(), "serve", "--host", HOST, "--workers", str(args.workers)]
        server = servers.start("service", command, dict(os.environ))
        await server.wait_until_up()
        headers = await log_in(server.url)
        log(f"service on :{server.port} with {args.workers} worker(s), signed in; load starts")

        started = time.monotonic()
        deadline = started + args.time_limit
        finished = asyncio.Event()
        loading = asyncio.create_task(
            write_load(server.url, headers, bodies, args.concurrency, started, finished, deadline)
        )
        done_outages: list[Outage] = []
        try:
            await asyncio.wait_for(
                outages(database, args.outages, args.down, args.up, started, done_outages),
                timeout=max(1.0, deadline - time.monotonic()),
            )
        except TimeoutError:
            log(f"time limit reached after {len(done_outages)} outage(s)")
        finally:
            finished.set()
            await asyncio.to_thread(database.start)  # if the time limit fell in an outage
            load = await loading
        seconds = time.monotonic() - started
        log(f"load done: {load.sent} sent in {seconds:.0f}s, {dict(load.statuses)}")

        await wait_for_health(server.url)
        present, total = await stored(load.created)
        stop_seconds, exit_code = stop_with_sigterm(server)
        log(f"SIGTERM: exited {exit_code} after {stop_seconds:.1f}s")

    missing = sorted(set(load.created) - present)
    other_5xx = sum(
        n for s, n in load.statuses.items() if s.isdigit() and int(s) >= 500 and s != "503"
    )
    no_answer = sum(n for s, n in load.statuses.items() if not s.isdigit())
    checks = {
        "every 201 stored": not missing,
        "no 5xx but 503": other_5xx == 0,
        "every request answered": no_answer == 0,
        f"SIGTERM stops it within {STOP_LIMIT:.0f}s, exit 0": exit_code == 0
        and stop_seconds <= STOP_LIMIT,
        "the database was really down (some 503s)": load.statuses["503"] > 0,
    }
    return {
        "machine": found_machine,
        "settings": {
            key: getattr(args, key)
            for key in ("workers", "concurrency", "outages", "down", "up", "requests", "time_limit")
        },
        "seconds": seconds,
        "sent": load.sent,
        "statuses": dict(load.statuses),
        "created": len(load.created),
        "created_and_stored": len(present),
        "missing": missing[:20],
        "referrals_in_database": total,
        "stored_without_201": total - len(present),
        "other_5xx": other_5xx,
        "no_answer": no_answer,
        "samples": load.samples,
        "p50_ms": 1000 * percentile(load.latencies, 0.50) if load.latencies else None,
        "p99_ms": 1000 * percentile(load.latencies, 0.99) if load.latencies else None,
        "outages": [
            {
                "stopped_at_s": round(o.stopped_at, 1),
                "down_s": round(o.started_at - o.stopped_at, 1),
                "recovered_after_s": recovery_seconds(load, o),
            }
            for o in done_outages
        ],
        "sigterm_seconds": stop_seconds,
        "sigterm_exit_code": exit_code,
        "checks": checks,
        "passed": all(checks.values()),
    }


def print_report(results: dict[str, Any]) -> None:
    settings = results["settings"]
    print(f"\nMachine: {describe_machine(results['machine'])}")
    print(
        f"\nFault test: {settings['workers']} worker(s), concurrency {settings['concurrency']},"
        f" {settings['outages']} outages of {settings['down']:.0f}s every"
        f" {settings['up']:.0f}s; {results['sent']:,} requests in {results['seconds']:.0f}s"
    )
    statuses = results["statuses"]
    print(
        "\n"
        + table(
            [[status, f"{count:,}"] for status, count in sorted(statuses.items())],
            ["answer", "count"],
        )
    )
    print(
        "\n"
        + table(
            [
                [
                    str(n + 1),
                    f"{o['stopped_at_s']:.1f}",
                    f"{o['down_s']:.1f}",
                    "-" if o["recovered_after_s"] is None else f"{o['recovered_after_s']:.2f}",
                ]
                for n, o in enumerate(results["outages"])
            ],
            ["outage", "stopped at s", "down s", "first 201 after restart, s"],
        )
    )
    print(
        f"\n201s: {results['created']:,}, of which in the database: "
        f"{results['created_and_stored']:,}; referrals in the database: "
        f"{results['referrals_in_database']:,} ({results['stored_without_201']} stored without"
        f" a 201); 5xx other than 503: {results['other_5xx']}; no answer: {results['no_answer']};"
        f" latency p50 {results['p50_ms']:.0f} ms, p99 {results['p99_ms']:.0f} ms;"
        f" SIGTERM: exit {results['sigterm_exit_code']} after {results['sigterm_seconds']:.1f}s"
    )
    for name, ok in results["checks"].items():
        print(f"- {'PASS' if ok else 'FAIL'}: {name}")
    for sample in results["samples"]:
        print(f"  e.g. {sample}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if os.environ.get("DATABASE_URL"):
        print(
            "fault_test: DATABASE_URL is set; this test stops the database, so it runs only"
            " on its own embedded one: unset DATABASE_URL",
            file=sys.stderr,
        )
        return 2
    with throwaway_run("fault_test", empties_database=False, prefix="inspire-fault-") as data_dir:
        results = asyncio.run(run(args, data_dir))
    print_report(results)
    write_json(args.json, results)
    return 0 if results["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
