"""Slow work off the event loop.

CSV checking, model fitting, plots and documents take from tenths of a second
to seconds of CPU. Run on the event loop they would stall every other request
(a 200,000-row import held ``/health`` for 11 s). They run in worker threads
instead, at most ``CPU_WORKERS`` at a time so a burst of them queues rather
than starving the loop of the GIL; the loop stays free to answer others.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Callable, Iterator
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


_pauses = 0
_pauses_lock = threading.Lock()


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """No automatic garbage collection in this process while the block runs.

    An import of 200,000 rows keeps millions of objects alive for its length.
    The cyclic collector's full collections walk every one of them with the GIL
    held, more often the faster they are made: pauses of seconds for every
    request, ``/health`` included (bench/loop_responsiveness.py). An import
    makes no reference cycles (its rows are freed by reference counting), so the
    collector only costs it. Nested and simultaneous blocks share one pause; the
    collector is back, and collects what waited, when the last one ends.
    """
    global _pauses
    with _pauses_lock:
        _pauses += 1
        if _pauses == 1:
            gc.disable()
    try:
        yield
    finally:
        with _pauses_lock:
            _pauses -= 1
            if _pauses == 0:
                gc.enable()
