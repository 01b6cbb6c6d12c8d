"""Benchmark 2: POST /referrals over real HTTP on loopback, against a bare app.

Two subprocesses, both on 127.0.0.1 and both served by uvicorn with the same
settings: ``inspire serve`` (the real service, as a referrer with a bearer
token) and ``bench/bare_app.py`` (decode the body, one INSERT, 201). One async
httpx client drives each in turn at a fixed concurrency with a fixed number of
requests and a hard time limit; every body the service receives is a different
valid person, so none is refused as a repeat referral. The rounds alternate
bare, service, bare, service, ... so drift in the machine hits both alike.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from harness import (
    Servers,
    add_user,
    count_rows,
    create_text_table,
    drop_table,
    empty_every_table,
    log,
    median,
    percentile,
    project_database,
    today,
)
from referral_data import API_FIELDS, api_body

BARE_TABLE = "bench_bare_referral"
USERNAME = "bench"
PASSWORD = "bench passphrase, loopback only"  # noqa: S105 (a throwaway account in a throwaway database)
AGENCY = "Bench Police"
REQUEST_TIMEOUT = 30.0


@dataclass
class Target:
    name: str
    base_url: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class LoadResult:
    sent: int
    created: int
    seconds: float
    statuses: Counter[str]
    latencies: list[float]
    samples: list[str]
    timed_out: bool
    client_cpu: float
    """CPU seconds the load client itself used per wall second (1.0 = one core busy)."""

    @property
    def failures(self) -> int:
        return self.sent - self.created

    @property
    def rps(self) -> float:
        return self.created / self.seconds if self.seconds else 0.0


async def log_in(base_url: str) -> dict[str, str]:
    async with httpx.AsyncClient(base_url=base_url, trust_env=False, timeout=30.0) as client:
        response = await client.post(
            "/auth/login", json={"username": USERNAME, "password": PASSWORD}
        )
    if response.status_code != 200:
        raise RuntimeError(f"login failed: {response.status_code} {response.text[:200]}")
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def load(
    target: Target, bodies: list[bytes], concurrency: int, time_limit: float
) -> LoadResult:
    """POST every body once (or until ``time_limit``) with ``concurrency`` requests in flight."""
    headers = {**target.headers, "Content-Type": "application/json"}
    statuses: Counter[str] = Counter()
    latencies: list[float] = []
    samples: list[str] = []
    position = 0
    sent = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=target.base_url, limits=limits, timeout=REQUEST_TIMEOUT, trust_env=False
    ) as client:
        started = time.perf_counter()
        cpu_started = time.process_time()
        deadline = started + time_limit

        async def worker() -> None:
            nonlocal position, sent
            while position < len(bodies) and time.perf_counter() < deadline:
                body = bodies[position]
                position += 1
                sent += 1
                began = time.perf_counter()
                try:
                    response = await client.post("/referrals", content=body, headers=headers)
                    statuses[str(response.status_code)] += 1
                    if response.status_code != 201 and len(samples) < 3:
                        samples.append(f"{response.status_code} {response.text[:300]}")
                except httpx.HTTPError as exc:
                    statuses[type(exc).__name__] += 1
                latencies.append(time.perf_counter() - began)

        timed_out = False
        try:
            await asyncio.wait_for(
                asyncio.gather(*(worker() for _ in range(concurrency))),
                timeout=time_limit + REQUEST_TIMEOUT + 5,
            )
        except TimeoutError:
            timed_out = True
        seconds = time.perf_counter() - started
        cpu_seconds = time.process_time() - cpu_started
    timed_out = timed_out or position < len(bodies)
    return LoadResult(
        sent=sent,
        created=statuses["201"],
        seconds=seconds,
        statuses=statuses,
        latencies=latencies,
        samples=samples,
        timed_out=timed_out,
        client_cpu=cpu_seconds / seconds if seconds else 0.0,
    )


def encode(bodies: list[dict[str, Any]]) -> list[bytes]:
    return [json.dumps(body).encode() for body in bodies]


def summarise(results: list[LoadResult]) -> dict[str, Any]:
    latencies = [seconds for result in results for seconds in result.latencies]
    statuses: Counter[str] = Counter()
    for result in results:
        statuses.update(result.statuses)
    return {
        "rounds_rps": [result.rps for result in results],
        "rps": median([result.rps for result in results]),
        "requests": sum(result.sent for result in results),
        "created": sum(result.created for result in results),
        "non_201": sum(result.failures for result in results),
        "statuses": dict(statuses),
        "samples": [sample for result in results for sample in result.samples][:3],
        "timed_out": any(result.timed_out for result in results),
        "client_cpu": median([result.client_cpu for result in results]),
        "p50_ms": 1000 * percentile(latencies, 0.50),
        "p95_ms": 1000 * percentile(latencies, 0.95),
        "p99_ms": 1000 * percentile(latencies, 0.99),
    }


async def benchmark(
    requests: int,
    warm_up: int,
    rounds: int,
    concurrency: int,
    time_limit: float,
    log_dir: Path,
) -> dict[str, Any]:
    """Run benchmark 2; migrations must have been applied in this process."""
    now = today()
    total = warm_up + rounds * requests
    if total > 100_000:
        raise ValueError("at most 100,000 distinct people: lower --requests or --rounds")
    bodies = encode([api_body(i, now) for i in range(total)])
    warm_bodies, timed_bodies = bodies[:warm_up], bodies[warm_up:]

    await empty_every_table()
    await create_text_table(BARE_TABLE, API_FIELDS)
    env = dict(os.environ)
    add_user(USERNAME, PASSWORD, "referrer", AGENCY, env)
    bare_env = {
        **env,
        "BENCH_DSN": project_database().database_url(),
        "BENCH_BARE_TABLE": BARE_TABLE,
    }

    try:
        with Servers(log_dir) as servers:
            service_server = servers.start_service("service", env)
            bare_server = servers.start_bare_app("bare", "bare_app.py", bare_env)
            await service_server.wait_until_up()
            await bare_server.wait_until_up()
            service = Target("service", service_server.url)
            bare = Target("bare", bare_server.url)
            service.headers = await log_in(service.base_url)
            log(
                f"http: service on :{service_server.port}, bare app on :{bare_server.port},"
                " signed in"
            )

            for target in (bare, service):
                warmed = await load(target, warm_bodies, concurrency, time_limit)
                log(
                    f"http: warm-up {target.name}: {warmed.rps:.0f} req/s,"
                    f" {warmed.failures} non-201"
                )

            results: dict[str, list[LoadResult]] = {"bare": [], "service": []}
            for number in range(rounds):
                chunk = timed_bodies[number * requests : (number + 1) * requests]
                for target in (bare, service):
                    result = await load(target, chunk, concurrency, time_limit)
                    results[target.name].append(result)
                    log(
                        f"http: round {number + 1}/{rounds} {target.name}: {result.rps:.0f} req/s,"
                        f" {result.sent} sent, {result.failures} non-201,"
                        f" client CPU {result.client_cpu:.0%}"
                        + (" (TIME LIMIT)" if result.timed_out else "")
                    )
            stored = await count_rows("referral")
            bare_stored = await count_rows(BARE_TABLE)
    finally:
        await empty_every_table()
        await drop_table(BARE_TABLE)

    summary = {name: summarise(found) for name, found in results.items()}
    return {
        "requests_per_round": requests,
        "rounds": rounds,
        "warm_up": warm_up,
        "concurrency": concurrency,
        "time_limit_s": time_limit,
        "service": summary["service"],
        "bare": summary["bare"],
        "ratio_service_to_bare": summary["service"]["rps"] / summary["bare"]["rps"],
        "service_referrals_stored": stored,
        "bare_rows_stored": bare_stored,
    }
