"""``inspire serve --workers 2`` against ``--workers 1``: POST /referrals and GET /referrals/{id}.

    python bench/workers_bench.py                  # about 3 minutes
    python bench/workers_bench.py --json out.json  # also every figure as JSON

There are no web pages yet, so the read measured is ``GET /referrals/{id}``
(the referrer's own-agency view, one audited read), beside the write ``POST
/referrals``. Two servers run at once on the run's database, one with one
worker and one with two; every round alternates between them (1, 2, 1, 2,
...) so drift in a shared machine hits both alike. Reported: requests per
second (median round), latency, the load client's own CPU, and the ratio
two workers / one.

Same isolation as the other benchmarks: a throwaway data directory with its
own embedded PostgreSQL, or DATABASE_URL only with
``--allow-emptying-database`` (it empties every table, before and after); all
traffic to 127.0.0.1; every round has a fixed count and a time limit; the
servers are stopped by their own pids.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from harness import (
    HOST,
    Servers,
    add_common_arguments,
    add_user,
    describe_machine,
    empty_every_table,
    inspire_command,
    log,
    machine,
    median,
    migrated_pool,
    percentile,
    table,
    throwaway_run,
    today,
    write_json,
)

REQUEST_TIMEOUT = 30.0
WORKERS = (1, 2)

Send = Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1_000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per route and server")
    parser.add_argument("--warm-up", type=int, default=100, help="warm-up requests per server")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    parser.add_argument("--time-limit", type=float, default=120.0, help="seconds per round")
    add_common_arguments(parser, empties_database=True)
    args = parser.parse_args(argv)
    if not 10 <= args.requests <= 10_000 or not 1 <= args.rounds <= 10:
        parser.error("--requests must be 10 to 10,000 and --rounds 1 to 10")
    if not 0 <= args.warm_up <= 2_000 or not 1 <= args.concurrency <= 64:
        parser.error("--warm-up must be 0 to 2,000 and --concurrency 1 to 64")
    if not 1 <= args.time_limit <= 600:
        parser.error("--time-limit must be 1 to 600 seconds")
    return args


@dataclass
class Round:
    sent: int
    ok: int
    seconds: float
    statuses: Counter[str]
    latencies: list[float]
    client_cpu: float
    timed_out: bool

    @property
    def rps(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


async def load(
    base_url: str, send: Send, count: int, concurrency: int, time_limit: float
) -> tuple[Round, list[httpx.Response]]:
    """``send(client, n)`` for n in range(count), ``concurrency`` at a time, within the limit."""
    statuses: Counter[str] = Counter()
    latencies: list[float] = []
    answers: list[httpx.Response] = []
    position = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=base_url, limits=limits, timeout=REQUEST_TIMEOUT, trust_env=False
    ) as client:
        started = time.perf_counter()
        cpu_started = time.process_time()
        deadline = started + time_limit

        async def worker() -> None:
            nonlocal position
            while position < count and time.perf_counter() < deadline:
                n = position
                position += 1
                began = time.perf_counter()
                try:
                    response = await send(client, n)
                except httpx.HTTPError as exc:
                    statuses[type(exc).__name__] += 1
                else:
                    statuses[str(response.status_code)] += 1
                    answers.append(response)
                latencies.append(time.perf_counter() - began)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
    ok = sum(n for status, n in statuses.items() if status.startswith("2"))
    found = Round(
        sent=position,
        ok=ok,
        seconds=seconds,
        statuses=statuses,
        latencies=latencies,
        client_cpu=cpu / seconds if seconds else 0.0,
        timed_out=position < count,
    )
    return found, answers


def summarise(rounds: list[Round]) -> dict[str, Any]:
    latencies = [s for r in rounds for s in r.latencies]
    statuses: Counter[str] = Counter()
    for r in rounds:
        statuses.update(r.statuses)
    return {
        "rps": median([r.rps for r in rounds]),
        "rounds_rps": [r.rps for r in rounds],
        "p50_ms": 1000 * percentile(latencies, 0.50),
        "p95_ms": 1000 * percentile(latencies, 0.95),
        "not_2xx": sum(r.sent - r.ok for r in rounds),
        "statuses": dict(statuses),
        "client_cpu": median([r.client_cpu for r in rounds]),
        "timed_out": any(r.timed_out for r in rounds),
    }


async def run(args: argparse.Namespace, log_dir: Path) -> dict[str, Any]:
    # Imported once INSPIRE_DATA_DIR is set.
    from http_bench import AGENCY, PASSWORD, USERNAME, log_in
    from referral_data import api_body

    async with migrated_pool():
        found_machine = await machine()
        await empty_every_table()
    add_user(USERNAME, PASSWORD, "referrer", AGENCY, dict(os.environ))
    now = today()
    per_server = args.warm_up + args.rounds * args.requests
    if per_server * len(WORKERS) > 100_000:
        raise ValueError("at most 100,000 distinct people: lower --requests or --rounds")
    bodies = [api_body(i, now) for i in range(per_server * len(WORKERS))]

    rounds: dict[tuple[str, int], list[Round]] = {}
    try:
        with Servers(log_dir) as servers:
            started = {}
            for workers in WORKERS:
                command = [*inspire_command(), "serve", "--host", HOST, "--workers", str(workers)]
                started[workers] = servers.start(f"workers-{workers}", command, dict(os.environ))
            for server in started.values():
                await server.wait_until_up()
            headers = {w: await log_in(server.url) for w, server in started.items()}
            created: dict[int, list[str]] = {w: [] for w in WORKERS}
            next_body = {w: index * per_server for index, w in enumerate(WORKERS)}

            def poster(workers: int) -> Send:
                first = next_body[workers]

                async def send(client: httpx.AsyncClient, n: int) -> httpx.Response:
                    return await client.post(
                        "/referrals", json=bodies[first + n], headers=headers[workers]
                    )

                return send

            def reader(workers: int) -> Send:
                ids = created[workers]

                async def send(client: httpx.AsyncClient, n: int) -> httpx.Response:
                    return await client.get(
                        f"/referrals/{ids[n % len(ids)]}", headers=headers[workers]
                    )

                return send

            async def one_round(route: str, workers: int, count: int) -> Round:
                send = poster(workers) if route == "POST" else reader(workers)
                found, answers = await load(
                    started[workers].url, send, count, args.concurrency, args.time_limit
                )
                if route == "POST":
                    next_body[workers] += found.sent
                    created[workers].extend(a.json()["id"] for a in answers if a.status_code == 201)
                return found

            for workers in WORKERS:
                if args.warm_up:
                    warmed = await one_round("POST", workers, args.warm_up)
                    log(f"warm-up, {workers} worker(s): {warmed.rps:.0f} req/s")
            for route in ("POST", "GET"):
                for number in range(args.rounds):
                    for workers in WORKERS:
                        found = await one_round(route, workers, args.requests)
                        rounds.setdefault((route, workers), []).append(found)
                        log(
                            f"{route} round {number + 1}/{args.rounds}, {workers} worker(s):"
                            f" {found.rps:.0f} req/s, {found.sent - found.ok} not 2xx,"
                            f" client CPU {found.client_cpu:.0%}"
                            + (" (TIME LIMIT)" if found.timed_out else "")
                        )
    finally:
        await empty_every_table()

    summary = {f"{route} {w}": summarise(found) for (route, w), found in rounds.items()}
    return {
        "machine": found_machine,
        "requests_per_round": args.requests,
        "rounds": args.rounds,
        "concurrency": args.concurrency,
        "results": summary,
        "ratio_post": summary["POST 2"]["rps"] / summary["POST 1"]["rps"],
        "ratio_get": summary["GET 2"]["rps"] / summary["GET 1"]["rps"],
    }


def print_report(results: dict[str, Any]) -> None:
    print(f"\nMachine: {describe_machine(results['machine'])}")
    print(
        f"\n`inspire serve --workers 1` and `--workers 2`, {results['requests_per_round']:,}"
        f" requests x {results['rounds']} rounds per route and server, concurrency"
        f" {results['concurrency']}, median round"
    )
    rows = []
    for key, found in results["results"].items():
        route, workers = key.split()
        path = "POST /referrals" if route == "POST" else "GET /referrals/{id}"
        rows.append(
            [
                path,
                workers,
                f"{found['rps']:.0f}",
                " / ".join(f"{rps:.0f}" for rps in found["rounds_rps"]),
                f"{found['p50_ms']:.1f}",
                f"{found['p95_ms']:.1f}",
                str(found["not_2xx"]),
                f"{found['client_cpu']:.0%}",
            ]
        )
    print(
        table(
            rows,
            ["route", "workers", "req/s", "rounds", "p50 ms", "p95 ms", "not 2xx", "client CPU"],
        )
    )
    print(
        f"\nratio 2 workers / 1: POST /referrals {results['ratio_post']:.2f},"
        f" GET /referrals/{{id}} {results['ratio_get']:.2f}"
    )
    for key, found in results["results"].items():
        if found["not_2xx"] or found["timed_out"]:
            print(f"{key}: statuses {found['statuses']}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with throwaway_run(
        "workers_bench", empties_database=True, allowed=args.allow_emptying_database
    ) as data_dir:
        results = asyncio.run(run(args, data_dir))
        print_report(results)
        write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
