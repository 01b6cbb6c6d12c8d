"""A real browser on the real service: Debian's Chromium, driven by Playwright.

``live_server`` runs the app under uvicorn in its own process on 127.0.0.1 and
a free port, on the tests' database (it joins the embedded server the tests
started, as ``inspire serve --workers`` processes do). Tests set up accounts
through the services, in this process, and do everything else in the browser.

Playwright's own browser download cannot reach the internet from the machines
this runs on, so only ``/usr/bin/chromium`` (``apt-get install chromium``) is
used; without it every browser test is skipped with the one message below.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

CHROMIUM = Path(os.environ.get("INSPIRE_TEST_CHROMIUM", "/usr/bin/chromium"))
NO_CHROMIUM = (
    f"browser tests need Debian's Chromium at {CHROMIUM} (apt-get install chromium);"
    " .ci/run installs it"
)

SCREENSHOTS = os.environ.get("INSPIRE_TEST_SCREENSHOTS")
"""Where the browser tests save a screenshot of each page they visit (unset: nowhere)."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def needs_chromium() -> None:
    """Skips, before anything is started, when there is no Chromium to drive."""
    if not CHROMIUM.exists():
        pytest.skip(NO_CHROMIUM)


@pytest.fixture(scope="module")
def live_server(needs_chromium: None, migrated_database: None) -> Iterator[str]:
    """The service at http://127.0.0.1:PORT, in a process of its own, for one module.

    Stopped after it, so no later test finds its connections to the database
    (a restore refuses to run while anything else is connected).
    """
    from programme.platform import database
    from programme.platform.settings import EMBEDDED_DATABASE_URI, get_settings

    port = _free_port()
    env = dict(os.environ)
    if get_settings().uses_embedded_database:
        env[EMBEDDED_DATABASE_URI] = database.database_url()
    env["INSPIRE_PASSWORD_HASH_WORKERS"] = "1"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "programme.app:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the live server did not start")
            time.sleep(0.3)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def chromium(needs_chromium: None, migrated_database: None) -> Iterator[Any]:
    """Chromium, for one module of synchronous tests.

    Playwright's synchronous API keeps an event loop running in this thread
    while it is started: started after the database, and stopped before the
    next module's async tests need the thread's loop.
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(live_server: str, empty_database: None, chromium: Any) -> Iterator[Any]:
    """A fresh browser window (its own cookies) on the live server; CSP breaches fail the test."""
    context = chromium.new_context(base_url=live_server, viewport={"width": 1100, "height": 900})
    tab = context.new_page()
    breaches: list[str] = []
    tab.on(
        "console",
        lambda message: (
            breaches.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    yield tab
    context.close()
    assert breaches == [], breaches


def run(work: Any) -> Any:
    """Run a coroutine of the services from a synchronous browser test.

    On a thread of its own: Playwright's synchronous API keeps an event loop
    running in the test's thread, where ``asyncio.run`` cannot start another.
    """
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, work).result()


@pytest.fixture
def empty_database(migrated_database: None) -> None:
    """As ``clean_database``, for the synchronous browser tests."""
    import asyncpg

    from programme.platform import database

    async def clean() -> None:
        connection = await asyncpg.connect(**database.engine().config)
        try:
            tables = await connection.fetch(
                "SELECT tablename FROM pg_tables"
                " WHERE schemaname = 'public' AND tablename <> 'migration'"
            )
            names = ", ".join(f'"{row["tablename"]}"' for row in tables)
            async with connection.transaction():
                await connection.execute("SET LOCAL session_replication_role = replica")
                await connection.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
        finally:
            await connection.close()

    run(clean())


def screenshot(page: Any, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=True)


def serious_accessibility_problems(page: Any) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']]}"
        for v in results.response["violations"]
        if v.get("impact") in ("serious", "critical")
    ]
