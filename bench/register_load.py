"""Saving a register, the load: the cases, and saves driven at a fixed concurrency.

Each case PUTs a 12-person register at a fixed concurrency, on one session or
spread over one session per client, re-saving the same register
(``identical``) or alternating two that differ in every line (``changing``);
the same traffic goes to the service, the bare HTTP app and a bare
``executemany``. Every loop has a fixed count and a time limit.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import httpx
from harness import percentile
from register_setup import HTTP_TIMEOUT, Setup, expect, new_sessions


@dataclass
class Measured:
    target: str
    requested: int
    latencies: list[float] = field(default_factory=list)
    wall: float = 0.0
    failures: list[str] = field(default_factory=list)
    cut_short: bool = False

    @property
    def done(self) -> int:
        return len(self.latencies)

    @property
    def ok(self) -> int:
        return self.done - len(self.failures)

    @property
    def per_second(self) -> float:
        return self.done / self.wall if self.wall else 0.0

    @property
    def time_per_save(self) -> float:
        """Wall time over saves: the effective cost of one save at this concurrency."""
        return self.wall / self.done if self.done else float("nan")

    def percentile(self, fraction: float) -> float:
        """Nearest-rank percentile, in seconds."""
        return percentile(self.latencies, fraction)

    def summary(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "requested": self.requested,
            "done": self.done,
            "non_200": len(self.failures),
            "failures_sample": self.failures[:5],
            "cut_short": self.cut_short,
            "wall_s": round(self.wall, 4),
            "per_second": round(self.per_second, 1),
            "mean_ms": round(statistics.fmean(self.latencies) * 1000, 3),
            "p50_ms": round(self.percentile(0.50) * 1000, 3),
            "p95_ms": round(self.percentile(0.95) * 1000, 3),
            "time_per_save_ms": round(self.time_per_save * 1000, 3),
        }


Send = Callable[[int], Awaitable[str | None]]
"""Send one save for a client (worker number); returns None, or a failure description."""


async def drive(target: str, send: Send, count: int, concurrency: int, limit: float) -> Measured:
    """``count`` saves from ``concurrency`` clients, stopping at ``limit`` seconds."""
    result = Measured(target, count)
    issued = 0
    deadline = time.perf_counter() + limit

    async def client(worker: int) -> None:
        nonlocal issued
        while issued < count and time.perf_counter() < deadline:
            issued += 1
            started = time.perf_counter()
            try:
                failure = await send(worker)
            except Exception as exc:  # a refused connection, a timeout: count it, go on
                failure = f"{type(exc).__name__}: {exc}"[:200]
            result.latencies.append(time.perf_counter() - started)
            if failure is not None:
                result.failures.append(failure)

    started = time.perf_counter()
    tasks = [asyncio.create_task(client(w)) for w in range(concurrency)]
    try:
        async with asyncio.timeout(limit + HTTP_TIMEOUT + 5):
            await asyncio.gather(*tasks)
    except TimeoutError:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    result.wall = time.perf_counter() - started
    result.cut_short = result.done < count
    return result


@dataclass(frozen=True)
class Case:
    mode: str  # "identical" or "changing"
    concurrency: int
    spread: bool  # one session per client, or all clients on one session
    groups: bool = False  # each client's session in a group (and people) of its own

    @property
    def sessions(self) -> int:
        return self.concurrency if self.spread else 1

    @property
    def label(self) -> str:
        if self.groups:
            where = f"{self.sessions} groups"
        else:
            where = f"{self.sessions} sessions" if self.spread else "1 session"
        return f"{self.mode}, c={self.concurrency}, {where}"


def cases(concurrencies: Sequence[int]) -> list[Case]:
    """Concurrent saves on one session, on sessions of one group (the same 12 people,
    so they queue on those people's rows), and on one session in each of as many
    groups (facilitators of different groups, who never wait for each other)."""
    found = []
    for mode in ("identical", "changing"):
        for c in concurrencies:
            found.append(Case(mode, c, spread=False))
            if c > 1:
                found.append(Case(mode, c, spread=True))
                found.append(Case(mode, c, spread=True, groups=True))
    return found


class Turns:
    """Which session a client saves next, and which of the two registers it sends.

    Each session alternates A, B, A, ... in the order saves are sent to it, over
    warm-up and measurement alike (``identical`` always sends A).
    """

    def __init__(self, sessions: Sequence[Any], mode: str) -> None:
        self.sessions = list(sessions)
        self.mode = mode
        self.sent = [0] * len(self.sessions)

    def prime(self) -> list[Any]:
        """Every session, to be sent register A once before the clients start."""
        self.sent = [1] * len(self.sessions)
        return list(self.sessions)

    def next(self, worker: int) -> tuple[Any, int]:
        index = worker % len(self.sessions)
        turn = self.sent[index]
        self.sent[index] += 1
        return self.sessions[index], (turn % 2 if self.mode == "changing" else 0)


async def measure_http(
    target: str,
    base: str,
    sessions: Sequence[str],
    case: Case,
    bodies: list[bytes],
    headers: dict[str, str],
    args: argparse.Namespace,
    measuring: Callable[[], Awaitable[None]] | None = None,
    bodies_by_session: dict[str, list[bytes]] | None = None,
) -> Measured:
    """One first save per session (one at a time), a warm-up, ``measuring()``, the saves.

    The first save of a session inserts its marks; it is made one session at a
    time so that the clients measure re-saves and corrections only (first saves
    made at once are probed separately: see ``first_saves_at_once``).
    """
    turns = Turns(sessions, case.mode)
    limits = httpx.Limits(
        max_connections=case.concurrency, max_keepalive_connections=case.concurrency
    )
    all_headers = {**headers, "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=base, timeout=HTTP_TIMEOUT, limits=limits) as http:

        def body(session_id: str, which: int) -> bytes:
            return (bodies_by_session or {}).get(session_id, bodies)[which]

        async def send(worker: int) -> str | None:
            session_id, which = turns.next(worker)
            response = await http.put(
                f"/sessions/{session_id}/attendance",
                content=body(session_id, which),
                headers=all_headers,
            )
            if response.status_code != 200:
                return f"HTTP {response.status_code}: {response.text[:200]}"
            return None

        for session_id in turns.prime():
            response = await http.put(
                f"/sessions/{session_id}/attendance",
                content=body(session_id, 0),
                headers=all_headers,
            )
            expect(response, 200, f"{target}: first save of session {session_id}")
        if args.warm_up:
            await drive(target, send, args.warm_up, case.concurrency, args.time_limit)
        if measuring is not None:
            await measuring()
        return await drive(target, send, args.requests, case.concurrency, args.time_limit)


async def measure_executemany(
    pool: Any,
    upsert: str,
    sessions: Sequence[UUID],
    case: Case,
    rows_for: Callable[[UUID, int], list[tuple[Any, ...]]],
    args: argparse.Namespace,
) -> Measured:
    turns = Turns(sessions, case.mode)
    connections = [await pool.acquire() for _ in range(case.concurrency)]
    try:

        async def send(worker: int) -> str | None:
            session_id, which = turns.next(worker)
            await connections[worker].executemany(upsert, rows_for(session_id, which))
            return None

        for session_id in turns.prime():
            await connections[0].executemany(upsert, rows_for(session_id, 0))
        if args.warm_up:
            await drive("executemany", send, args.warm_up, case.concurrency, args.time_limit)
        return await drive("executemany", send, args.requests, case.concurrency, args.time_limit)
    finally:
        for connection in connections:
            await pool.release(connection)


async def first_saves_at_once(
    setup: Setup, bodies: list[bytes], clients: int, rounds: int
) -> dict[str, Any]:
    """``clients`` fresh sessions of the group, each sent its first register at the same time.

    A first save inserts the marks (each insert takes a key-share lock on the
    person's referral row, as every foreign key check does) and then locks the
    same referral rows for update to derive milestones: two such saves can wait
    on each other. Reported as the answers' status codes and the slowest answer.
    """
    statuses: Counter[int] = Counter()
    slowest = 0.0
    headers = {**setup.facilitator_headers, "Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(
        base_url=setup.service, timeout=HTTP_TIMEOUT, limits=limits
    ) as http:

        async def first_save(session_id: str) -> None:
            nonlocal slowest
            started = time.perf_counter()
            response = await http.put(
                f"/sessions/{session_id}/attendance", content=bodies[0], headers=headers
            )
            slowest = max(slowest, time.perf_counter() - started)
            statuses[response.status_code] += 1

        for _ in range(rounds):
            sessions = await new_sessions(setup, clients)
            async with asyncio.timeout(HTTP_TIMEOUT + 5):
                await asyncio.gather(*(first_save(s) for s in sessions))
    return {
        "clients": clients,
        "rounds": rounds,
        "statuses": {str(code): n for code, n in sorted(statuses.items())},
        "slowest_ms": round(slowest * 1000, 1),
    }


async def corrections_recorded(connection: Any) -> int:
    """Attendance lines the service has corrected so far (one audit row each)."""
    return int(
        await connection.fetchval(
            "SELECT count(*) FROM audit_event"
            " WHERE record_type = 'attendance' AND action = 'update'"
        )
    )
