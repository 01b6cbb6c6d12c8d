"""Slow work off the event loop.

CSV checking, model fitting, plots and documents take from tenths of a second
to seconds of CPU. Run on the event loop they would stall every other request
(a 200,000-row import held ``/health`` for 11 s). They run in worker threads
instead, at most ``CPU_WORKERS`` at a time so a burst of them queues rather
than starving the loop of the GIL; the loop stays free to answer others.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

import anyio.to_thread

T = TypeVar("T")

CPU_WORKERS = 2
"""The machines this runs on have two to a few cores; more threads only queue on the GIL."""

# A thread semaphore rather than an anyio limiter: it belongs to no event loop, so
# every loop in the process (each worker's, each test's) shares the one bound.
_cpu = threading.BoundedSemaphore(CPU_WORKERS)


def _bounded(function: Callable[[], T]) -> T:
    with _cpu:
        return function()


async def off_loop(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``function(*args, **kwargs)`` in a worker thread; the caller awaits its result."""
    return await anyio.to_thread.run_sync(_bounded, partial(function, *args, **kwargs))
