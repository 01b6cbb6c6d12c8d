"""Password hashing with argon2id (memory-hard), via argon2-cffi.

argon2 is slow on purpose (a fifth of a second of CPU and 64 MiB a hash), so
the service never runs it on the event loop: ``hash_in_pool`` and
``verify_in_pool`` hand it to a small pool of threads of its own (argon2-cffi
releases the GIL while it works). The pool is bounded, so a flood of sign-ins
queues for it instead of taking every core and all the memory, and every other
request keeps being served meanwhile. Every hash and verify the service does
goes through these two; ``hash_password`` and ``verify_password`` are the work
itself, run in the pool's threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import queue
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from programme.platform.errors import FieldError
from programme.platform.settings import get_settings

T = TypeVar("T")

_hasher = PasswordHasher()

# Verified against when the username is unknown, so a wrong username costs as
# long as a wrong password and timing does not reveal which accounts exist.
_DUMMY_HASH = _hasher.hash("not a real password, only spends the same time")

MIN_PASSWORD_LENGTH = 12

POOL_THREAD_PREFIX = "password-hash"
"""Names the pool's threads, so a thread dump shows where sign-ins are waiting."""


def password_problems(password: str, field: str = "password") -> list[FieldError]:
    """What is wrong with a new password: the one length rule for the CLI, the API and the pages.

    Length is what makes a password hard to guess; no composition rules
    (NCSC and NIST SP 800-63B both advise against them).
    """
    if len(password) < MIN_PASSWORD_LENGTH:
        return [
            FieldError("weak_password", field, f"Use at least {MIN_PASSWORD_LENGTH} characters.")
        ]
    return []


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


HASHING_NICENESS = 10
"""How much lower than the rest of the process the hashing threads run (Linux)."""
MOST_NICE = 19


def _yield_to_others() -> None:
    """Let the event loop (and a database on the same machine) go first for the CPU.

    A sign-in can wait a little longer; every other request should not wait at
    all. Linux gives each thread a niceness of its own; elsewhere this does nothing.
    """
    if not sys.platform.startswith("linux"):
        return  # elsewhere the thread's id could be taken for another process's
    thread = threading.get_native_id()
    with contextlib.suppress(OSError):
        niceness = os.getpriority(os.PRIO_PROCESS, thread) + HASHING_NICENESS
        os.setpriority(os.PRIO_PROCESS, thread, min(niceness, MOST_NICE))


FIRST = 0
"""Queue level of a sign-in from an address with no failure history, and of every
hash (an admin adding an account or resetting a password)."""
AFTER_FAILURES = 1
"""Queue level of a sign-in from an address that has failed lately: after every FIRST."""
_STOP = 2
"""After everything: a pool being replaced finishes what was queued, then its threads end."""

_Work = tuple[int, int, "Future[Any] | None", "Callable[..., Any] | None", tuple[Any, ...]]


class _TwoLevelPool:
    """Threads taking work by level, then in arrival order.

    Why two levels: during a flood every queued verify is a guess; the owner,
    signing in from an address that has not failed, would otherwise wait behind
    every one of them (40 verifies are about 8 s of CPU). Attempts from addresses
    that have failed lately wait until no attempt from a clean address does.
    """

    def __init__(self, workers: int) -> None:
        self._queue: queue.PriorityQueue[_Work] = queue.PriorityQueue()
        self._arrivals = itertools.count()
        self._workers = workers
        for n in range(workers):
            threading.Thread(
                target=self._work, name=f"{POOL_THREAD_PREFIX}_{n}", daemon=True
            ).start()

    def submit(self, level: int, fn: Callable[..., T], *args: Any) -> Future[T]:
        future: Future[T] = Future()
        self._queue.put((level, next(self._arrivals), future, fn, args))
        return future

    def waiting(self) -> int:
        """Work queued and not yet taken by a thread."""
        return self._queue.qsize()

    def shutdown(self) -> None:
        for _ in range(self._workers):
            self._queue.put((_STOP, next(self._arrivals), None, None, ()))

    def _work(self) -> None:
        _yield_to_others()
        while True:
            _, _, future, fn, args = self._queue.get()
            if future is None or fn is None:
                return
            if not future.set_running_or_notify_cancel():
                continue  # its sign-in was abandoned while it waited
            try:
                future.set_result(fn(*args))
            except BaseException as error:  # handed to the awaiting sign-in, as an executor does
                future.set_exception(error)


class _Pool:
    """One bounded pool per process, whatever event loops come and go.

    Threads rather than an anyio limiter: they belong to no event loop, so the
    server, the command line (a fresh loop per command) and the tests share one
    bound per process. Its own threads rather than ``threads.off_loop``'s:
    sign-ins must not queue behind an import's seconds of checking, nor a flood
    of sign-ins hold up imports and reports; and its threads run at a lower
    priority than everything else.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._threads: _TwoLevelPool | None = None
        self._workers = 0

    def size(self, workers: int) -> None:
        """Use ``workers`` threads from now on; hashes already queued finish where they are."""
        with self._lock:
            if workers == self._workers:
                return
            old, self._threads = self._threads, None
            self._workers = workers
        if old is not None:
            old.shutdown()

    def threads(self) -> _TwoLevelPool:
        with self._lock:
            if self._threads is None:
                if not self._workers:
                    self._workers = get_settings().password_hash_workers
                self._threads = _TwoLevelPool(self._workers)
            return self._threads


_pool = _Pool()


def size_pool(workers: int) -> None:
    """How many hashes may run at once in this process (``INSPIRE_PASSWORD_HASH_WORKERS``)."""
    _pool.size(workers)


async def hash_in_pool(password: str) -> str:
    """``hash_password`` in the pool: the event loop serves other requests meanwhile."""
    # Looked up at call time, so a test can wrap the function to watch where it runs.
    return await asyncio.wrap_future(_pool.threads().submit(FIRST, hash_password, password))


async def verify_in_pool(
    password_hash: str | None, password: str, *, after_failures: bool = False
) -> bool:
    """``verify_password`` in the pool; ``None`` (no such account) costs the same as a hash.

    ``after_failures``: the attempt comes from an address that has failed lately,
    so it waits until no attempt from a clean address does (``_TwoLevelPool``).
    """
    level = AFTER_FAILURES if after_failures else FIRST
    work = _pool.threads().submit(level, verify_password, password_hash, password)
    return await asyncio.wrap_future(work)


def waiting() -> int:
    """Hashes and verifies queued in this process's pool, not yet begun (for tests)."""
    return _pool.threads().waiting()
