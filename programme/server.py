"""Running the service: its processes, the signals that stop it, and the embedded database.

``inspire serve`` owns the embedded PostgreSQL it starts: it migrates once,
serves (in this process, or in N worker processes that connect to the server
this one started), and on the way out, whether by Ctrl-C (SIGINT) or by the
SIGTERM that systemd and Docker send, stops the app and then the database, in
a bounded time whatever state the connections are in.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import uvicorn
from uvicorn.supervisors.multiprocess import Multiprocess

from programme.platform import database
from programme.platform.settings import EMBEDDED_DATABASE_URI, ConfigurationError, Settings
from programme.platform.web import services as web

log = logging.getLogger(__name__)

GRACEFUL_SECONDS = 2
"""How long requests in flight get to finish once a stop is asked for."""

WORKER_STOP_SECONDS = 5.0
"""How long the parent waits for its workers to stop before killing them: the
graceful period, closing the pool (``database.POOL_CLOSE_SECONDS``), and slack."""

WATCHDOG_SECONDS = 5.0
"""How long a single-process server may take to stop before it is ended regardless."""

RESERVED_CONNECTIONS = 5
"""Database connections kept free of the workers' pools: PostgreSQL's own
reserved ones (3 by default), migrations, and a CLI command run meanwhile."""

APP_FACTORY = "programme.server:served_app"


def default_workers() -> int:
    """One worker per CPU core this process may use."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def serve(settings: Settings, host: str, port: int, workers: int | None) -> int:
    """Migrate, serve until SIGINT or SIGTERM, stop; the number of workers it ran."""
    with _sigterm_as_interrupt():
        try:
            # Starts the embedded server, if it is ours, and migrates once for every worker.
            connections, setup_token = asyncio.run(_migrate())
            allowed = connections - RESERVED_CONNECTIONS
            count = workers or default_workers()
            count = _fit_workers(count, settings.pool_max_size, allowed, explicit=bool(workers))
            _announce(settings, host, port, count)
            if setup_token is not None:
                _announce_first_run(host, port, setup_token)
            if count == 1:
                _serve_in_this_process(settings, host, port)
            else:
                _serve_in_workers(settings, host, port, count)
            return count
        except KeyboardInterrupt:
            return 0
        finally:
            # A second SIGTERM must not cut the database's own stop short.
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            database.release_embedded_server()


async def _migrate() -> tuple[int, str | None]:
    """Migrate; the number of connections the database allows, and on an empty
    database the one-time set-up token for the first admin."""
    await database.migrate()
    token = await web.open_first_run(datetime.now(UTC))
    return await database.max_connections(), token


def exit_now() -> None:
    """End the process once ``serve`` has returned: the database is stopped, logs flushed.

    A normal exit then tears down every imported module (pandas, scipy,
    matplotlib and their thread pools), which took 2 to 5 seconds on a busy
    machine: a stop that must finish within seconds cannot spend them there.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _fit_workers(count: int, pool_size: int, allowed: int, *, explicit: bool) -> int:
    """As many workers as asked, if their pools fit in the database's connections."""
    fitting = max(1, allowed // pool_size)
    if count <= fitting:
        return count
    if explicit:
        raise ConfigurationError(
            f"--workers {count} with INSPIRE_DB_POOL_SIZE {pool_size} needs"
            f" {count * pool_size} database connections and {allowed} are available:"
            " lower one of them"
        )
    return fitting


def _announce(settings: Settings, host: str, port: int, workers: int) -> None:
    import click

    where = "embedded database" if settings.uses_embedded_database else "DATABASE_URL"
    processes = "1 process" if workers == 1 else f"{workers} worker processes"
    click.echo(
        f"inspire: serving on http://{host}:{port} ({where}, {processes}); API docs at /schema",
        err=True,
    )


def _announce_first_run(host: str, port: int, token: str) -> None:
    """The first-run link, on the console only: whoever started the server sets it up."""
    import click

    hours = int(web.SETUP_LINK_LIFETIME.total_seconds() // 3600)
    click.echo(
        "inspire: there are no accounts yet. To create the first administrator, open"
        f" (once, within {hours} hours):\n\n    http://{host}:{port}/set-up/{token}\n",
        err=True,
    )


def _config(app: Any, host: str, port: int, **options: Any) -> uvicorn.Config:
    # uvicorn's own access log writes the query string; programme.access writes ours.
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        # uvicorn would otherwise believe X-Forwarded-For from 127.0.0.1, letting any
        # local client claim any address. Which proxies are believed is
        # INSPIRE_TRUSTED_PROXIES alone (accounts.access.client_address).
        proxy_headers=False,
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
        **options,
    )


def served_app(settings: Settings | None = None) -> Any:
    """The app as ``inspire serve`` runs it, in each process: ``create_app``, and once it
    has started, its start-up objects frozen (``freeze_start_up_objects``) and a
    shorter switch interval (``hand_the_gil_back_sooner``)."""
    from programme.app import create_app

    app = create_app(settings)
    app.on_startup.extend([compile_templates, freeze_start_up_objects, hand_the_gil_back_sooner])
    return app


def compile_templates(app: Any) -> None:
    """Compile every page's template once, as the server starts, not on its first view.

    Jinja compiles a template to Python the first time it is rendered: the dashboard's
    took 0.17 s of a 0.34 s first view on a new server process (bench/README.md, issue
    15 part 6), a cost its first viewer paid after every restart. Here the server pays
    it (about 1 to 2 s for all of them) before it accepts a request. The tests' app
    (``create_app``) keeps compiling on demand, so each test's app starts at once."""
    environment = app.template_engine.engine
    for name in environment.list_templates(extensions=["html"]):
        environment.get_template(name)


def freeze_start_up_objects() -> None:
    """Keep the garbage collector from walking, ever again, what start-up left alive.

    The libraries loaded by then (pandas, SciPy, lifelines, matplotlib, Litestar)
    leave about 200,000 tracked objects that live as long as the process. Every
    full collection walked them, and everything else alive, with the GIL held,
    stopping the event loop; while an import or an analysis allocates, full
    collections come often (bench/loop_responsiveness.py saw pauses of up to
    1.5 s). Frozen, they are left out of every collection; everything made
    later is collected as before.
    """
    gc.collect()
    gc.freeze()


SWITCH_INTERVAL = 0.001
"""Seconds a thread may keep the GIL while another waits for it (Python's default: 0.005)."""


def hand_the_gil_back_sooner() -> None:
    """Let the event loop have the GIL back within 1 ms of asking, not 5.

    Imports and analyses run in worker threads (``threads.off_loop``), and
    each request needs the GIL several times on the event loop; every time it
    asks, a busy worker keeps it for up to the switch interval. With 1 ms
    instead of 5, /health's p99 during an import and analyses fell from 102 to
    69 ms, the work itself no slower (bench/loop_responsiveness.py, 50,000 rows).
    """
    sys.setswitchinterval(SWITCH_INTERVAL)


def _serve_in_this_process(settings: Settings, host: str, port: int) -> None:
    server = _Server(_config(served_app(settings), host, port))
    try:
        server.run()
    finally:
        for watchdog in server.watchdogs:  # stopped in time: the database's stop is next
            watchdog.cancel()


class _Server(uvicorn.Server):
    """uvicorn's server, with a watchdog once it is asked to stop.

    Requests in flight are cancelled after GRACEFUL_SECONDS and the pool's close
    is bounded, but a request that holds the event loop itself (CPU work run on
    it by mistake) would still hold up the stop: the watchdog, on a thread of
    its own, stops the database and ends the process regardless.
    """

    watchdogs: list[threading.Timer]

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.watchdogs = []

    def handle_exit(self, sig: int, frame: Any) -> None:
        super().handle_exit(sig, frame)
        watchdog = threading.Timer(WATCHDOG_SECONDS, _stop_now)
        watchdog.daemon = True
        watchdog.start()
        self.watchdogs.append(watchdog)


def _stop_now() -> None:
    log.error("still stopping after %ss: stopping the database and exiting", WATCHDOG_SECONDS)
    database.release_embedded_server()
    os._exit(1)


def _serve_in_workers(settings: Settings, host: str, port: int, workers: int) -> None:
    # The app is imported in the workers only: a worker that cannot build it exits
    # with uvicorn's start-up failure status, and uvicorn then stops them all.
    if settings.uses_embedded_database:
        # Spawned workers read their settings from this environment.
        os.environ[EMBEDDED_DATABASE_URI] = database.database_url()
    config = _config(APP_FACTORY, host, port, factory=True, workers=workers)
    _Supervisor(config, sockets=[listening_socket(config)]).run()


def listening_socket(config: uvicorn.Config) -> socket.socket:
    """uvicorn's bound socket for the workers, marked as TCP so answers are not held back.

    uvicorn makes it with protocol 0, and asyncio switches Nagle's algorithm off
    only on connections whose socket says TCP; every connection the workers
    accepted then kept it on, and an answer written as headers and then body
    waited for the client's delayed acknowledgement: 40 ms on every small answer
    over a kept-alive connection (``GET /health`` took 45 ms instead of 2).
    Re-opened on the same descriptor, the socket reads its protocol from the
    kernel, and so does each connection accepted from it.
    """
    bound = config.bind_socket()
    if bound.family not in (socket.AF_INET, socket.AF_INET6):
        return bound
    return socket.socket(fileno=bound.detach())


class _Supervisor(Multiprocess):
    """uvicorn's worker supervisor, but one that never waits for ever for a worker."""

    def join_all(self) -> None:
        deadline = time.monotonic() + WORKER_STOP_SECONDS
        for worker in self.processes:
            worker.process.join(max(0.0, deadline - time.monotonic()))
        for worker in self.processes:
            if worker.process.is_alive():
                log.warning("worker %s did not stop in time; killing it", worker.pid)
                worker.kill()
                worker.process.join(2)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM stops the service the way Ctrl-C does.

    Python's default SIGTERM ends the process on the spot, skipping every
    ``finally`` and exit hook, so the embedded PostgreSQL was left running.
    uvicorn catches SIGTERM while it serves and raises it again once it has
    stopped; it then lands here, as a KeyboardInterrupt.
    """
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
