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
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from bench_support import (
    count_rows,
    create_text_table,
    drop_table,
    empty_every_table,
    free_port,
    median,
    percentile,
)
from referral_data import API_FIELDS, api_body

from programme.platform import database
from programme.platform.clock import today as programme_today

HERE = Path(__file__).resolve().parent
BARE_TABLE = "bench_bare_referral"
USERNAME = "bench"
PASSWORD = "bench passphrase, loopback only"  # noqa: S105 (a throwaway account in a throwaway database)
AGENCY = "Bench Police"
START_TIMEOUT = 90.0
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


def inspire_command() -> str:
    """The ``inspire`` console script next to this interpreter (the venv's), else on PATH."""
    beside = Path(sys.executable).parent / "inspire"
    if beside.exists():
        return str(beside)
    found = shutil.which("inspire")
    if found is None:
        raise RuntimeError("the inspire command is not installed: pip install -e .")
    return found


@contextmanager
def subprocess_server(
    name: str, command: list[str], env: dict[str, str], log_dir: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a server; on the way out terminate it (then kill it) by its own pid."""
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            command, env=env, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)


async def wait_until_up(process: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
    """Poll ``url`` until it answers 200, the process exits, or START_TIMEOUT passes."""
    deadline = time.monotonic() + START_TIMEOUT
    async with httpx.AsyncClient(trust_env=False, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                tail = await asyncio.to_thread(log_path.read_text, errors="replace")
                tail = tail[-2000:]
                raise RuntimeError(f"{url} exited with {process.returncode}:\n{tail}")
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {START_TIMEOUT:.0f}s")


def add_referrer(env: dict[str, str]) -> None:
    result = subprocess.run(
        [
            inspire_command(),
            "user",
            "add",
            USERNAME,
            "--role",
            "referrer",
            "--agency",
            AGENCY,
            "--password-stdin",
        ],
        input=PASSWORD + "\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"inspire user add failed: {result.stderr.strip()}")


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
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Run benchmark 2; migrations must have been applied in this process."""
    today = programme_today()
    total = warm_up + rounds * requests
    if total > 100_000:
        raise ValueError("at most 100,000 distinct people: lower --requests or --rounds")
    bodies = encode([api_body(i, today) for i in range(total)])
    warm_bodies, timed_bodies = bodies[:warm_up], bodies[warm_up:]

    await empty_every_table()
    await create_text_table(BARE_TABLE, API_FIELDS)
    env = dict(os.environ)
    add_referrer(env)
    service_port, bare_port = free_port(), free_port()
    while bare_port == service_port:
        bare_port = free_port()
    bare_env = {**env, "BENCH_DSN": database.database_url(), "BENCH_BARE_TABLE": BARE_TABLE}

    try:
        with ExitStack() as stack:
            service_process = stack.enter_context(
                subprocess_server(
                    "service",
                    [
                        inspire_command(),
                        "serve",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(service_port),
                    ],
                    env,
                    log_dir,
                )
            )
            bare_process = stack.enter_context(
                subprocess_server(
                    "bare",
                    [sys.executable, str(HERE / "bare_app.py"), "--port", str(bare_port)],
                    bare_env,
                    log_dir,
                )
            )
            service = Target("service", f"http://127.0.0.1:{service_port}")
            bare = Target("bare", f"http://127.0.0.1:{bare_port}")
            await wait_until_up(
                service_process, service.base_url + "/health", log_dir / "service.log"
            )
            await wait_until_up(bare_process, bare.base_url + "/health", log_dir / "bare.log")
            service.headers = await log_in(service.base_url)
            log(f"http: service on :{service_port}, bare app on :{bare_port}, signed in")

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
