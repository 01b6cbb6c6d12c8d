"""The served app compiles every page's template as it starts (issue 15 part 6: the
dashboard's took half of a first view on a new server process), so no viewer pays for
it; the tests' app still compiles on demand."""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator

import pytest

from programme import server
from programme.app import create_app

pytestmark = pytest.mark.anyio


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """What start-up freezes is handed back to the collector, the switch interval put back."""
    interval = sys.getswitchinterval()
    gc.unfreeze()
    try:
        yield
    finally:
        gc.unfreeze()
        sys.setswitchinterval(interval)


def _compiled(app) -> set[str]:
    """The names of the templates Jinja holds compiled (its cache is keyed by loader and
    name)."""
    held = app.template_engine.engine.cache.keys()
    return {name for _, name in held}


async def test_once_started_every_page_template_is_compiled(migrated_database, unfrozen):
    app = server.served_app()
    names = set(app.template_engine.engine.list_templates(extensions=["html"]))
    assert {"analysis/dashboard.html", "delivery/caseload.html", "base.html"} <= names
    assert _compiled(app) == set()
    async with app.lifespan():
        assert names - _compiled(app) == set()


async def test_the_tests_app_compiles_on_demand(migrated_database):
    app = create_app()
    async with app.lifespan():
        assert "analysis/dashboard.html" not in _compiled(app)
