"""``GET /health`` polled at a steady pace in a thread of its own: the event loop's pulse.

A server whose event loop is blocked answers nothing, ``/health`` included, so
the latency of a trivial request sent every few milliseconds shows how long
the loop goes without getting control back. The probe runs in its own thread
with a synchronous client and one kept-alive connection, so the benchmark's own
event loop (uploading a file, waiting for an analysis) cannot delay it. Names
no project module.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
from harness import percentile

PROBE_TIMEOUT = 30.0


@dataclass
class Probe:
    """Latencies (seconds) of ``GET /health`` sent every ``interval`` seconds until stopped."""

    base_url: str
    interval: float
    limit: int
    """At most this many requests, whatever happens."""
    latencies: list[float] = field(default_factory=list)
    sent_at: list[float] = field(default_factory=list)
    """``time.perf_counter()`` when each was sent."""
    statuses: Counter[str] = field(default_factory=Counter)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Probe:
        self._thread = threading.Thread(target=self._run, name="health-probe", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> Probe:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=PROBE_TIMEOUT + 5)
        return self

    def _run(self) -> None:
        with httpx.Client(base_url=self.base_url, trust_env=False, timeout=PROBE_TIMEOUT) as http:
            next_at = time.perf_counter()
            while not self._stop.is_set() and len(self.latencies) < self.limit:
                started = time.perf_counter()
                try:
                    status = str(http.get("/health").status_code)
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                self.latencies.append(time.perf_counter() - started)
                self.sent_at.append(started)
                self.statuses[status] += 1
                # A steady pace: a slow answer is not followed by a burst to catch up.
                next_at = max(next_at + self.interval, time.perf_counter())
                self._stop.wait(max(0.0, next_at - time.perf_counter()))


def _probe_child(
    base_url: str, interval: float, limit: int, stop: Any, results: Any
) -> None:  # pragma: no cover (runs in the child process)
    probe = Probe(base_url, interval, limit).start()
    stop.wait()
    probe.stop()
    results.put((probe.latencies, probe.sent_at, dict(probe.statuses)))


@dataclass
class ProbeProcess:
    """A ``Probe`` in a process of its own: the same figures, without sharing a GIL.

    A probe thread shares its interpreter with whatever else the benchmark runs;
    when that is a flood of clients busy on the CPU, each poll also waits for the
    GIL on the client's side, and the figures grow with the flood's own rate
    instead of the server's answers. Started with ``spawn``: nothing of the
    parent's event loop or threads is copied into it.
    """

    base_url: str
    interval: float
    limit: int
    _process: Any = None
    _stop: Any = None
    _results: Any = None

    def start(self) -> ProbeProcess:
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        self._stop = context.Event()
        self._results = context.Queue()
        self._process = context.Process(
            target=_probe_child,
            args=(self.base_url, self.interval, self.limit, self._stop, self._results),
            name="health-probe",
            daemon=True,
        )
        self._process.start()
        return self

    def stop(self) -> Probe:
        """Stop polling; the polls as a ``Probe`` holding them."""
        self._stop.set()
        latencies, sent_at, statuses = self._results.get(timeout=PROBE_TIMEOUT + 30)
        self._process.join(timeout=10)
        found = Probe(self.base_url, self.interval, self.limit)
        found.latencies, found.sent_at = latencies, sent_at
        found.statuses.update(statuses)
        return found


def summary(probe: Probe) -> dict[str, Any]:
    """Count, p50/p95/p99/max in milliseconds, and the statuses seen."""
    found = probe.latencies
    if not found:
        return {"count": 0, "statuses": dict(probe.statuses)}
    return {
        "count": len(found),
        "p50_ms": 1000 * percentile(found, 0.50),
        "p95_ms": 1000 * percentile(found, 0.95),
        "p99_ms": 1000 * percentile(found, 0.99),
        "max_ms": 1000 * max(found),
        "over_50_ms": sum(1 for s in found if s > 0.050),
        "statuses": dict(probe.statuses),
    }


def describe(found: dict[str, Any]) -> str:
    if not found["count"]:
        return "no answers"
    return (
        f"{found['count']} polls, p50 {found['p50_ms']:.1f} ms, p95 {found['p95_ms']:.1f} ms,"
        f" p99 {found['p99_ms']:.1f} ms, max {found['max_ms']:.1f} ms, statuses {found['statuses']}"
    )


def row(name: str, found: dict[str, Any]) -> list[str]:
    """A Markdown table row: name, polls, p50, p95, p99, max, over 50 ms, non-200."""
    not_ok = sum(n for status, n in found["statuses"].items() if status != "200")
    return [
        name,
        str(found["count"]),
        f"{found['p50_ms']:.1f}",
        f"{found['p95_ms']:.1f}",
        f"{found['p99_ms']:.1f}",
        f"{found['max_ms']:.1f}",
        str(found["over_50_ms"]),
        str(not_ok),
    ]


HEADER = ["/health", "polls", "p50 ms", "p95 ms", "p99 ms", "max ms", "> 50 ms", "not 200"]
