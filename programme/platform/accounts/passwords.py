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
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from programme.platform.errors import FieldError
from programme.platform.settings import get_settings

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


class _Pool:
    """One bounded thread pool per process, whatever event loops come and go.

    A thread pool rather than an anyio limiter: it belongs to no event loop, so
    the server, the command line (a fresh loop per command) and the tests share
    one bound per process. Its own pool rather than ``threads.off_loop``'s:
    sign-ins must not queue behind an import's seconds of checking, nor a flood
    of sign-ins hold up imports and reports; and its threads run at a lower
    priority than everything else.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._workers = 0

    def size(self, workers: int) -> None:
        """Use ``workers`` threads from now on; hashes already queued finish where they are."""
        with self._lock:
            if workers == self._workers:
                return
            old, self._executor = self._executor, None
            self._workers = workers
        if old is not None:
            old.shutdown(wait=False)

    def executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                if not self._workers:
                    self._workers = get_settings().password_hash_workers
                self._executor = ThreadPoolExecutor(
                    max_workers=self._workers,
                    thread_name_prefix=POOL_THREAD_PREFIX,
                    initializer=_yield_to_others,
                )
            return self._executor


_pool = _Pool()


def size_pool(workers: int) -> None:
    """How many hashes may run at once in this process (``INSPIRE_PASSWORD_HASH_WORKERS``)."""
    _pool.size(workers)


async def hash_in_pool(password: str) -> str:
    """``hash_password`` in the pool: the event loop serves other requests meanwhile."""
    loop = asyncio.get_running_loop()
    # Looked up at call time, so a test can wrap the function to watch where it runs.
    return await loop.run_in_executor(_pool.executor(), hash_password, password)


async def verify_in_pool(password_hash: str | None, password: str) -> bool:
    """``verify_password`` in the pool; ``None`` (no such account) costs the same as a hash."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_pool.executor(), verify_password, password_hash, password)
