"""A session's file is written when the session changes or its renewal is due, not on
every page read (``browser.RENEW_AFTER_SECONDS``); an idle session still ends (the
idle time-out test in test_pages)."""

from __future__ import annotations

import os

import pytest

from programme.platform.web import browser as web
from tests.programme.web.helpers import browser, make_account, sign_in

pytestmark = pytest.mark.anyio


async def test_reading_pages_does_not_rewrite_the_session(app, clean_database):
    await make_account("fran")
    store = app.stores.get(web.SESSION_STORE)
    assert isinstance(store, web._SessionFiles)
    async with browser(app) as http:
        await sign_in(http, "fran")
        path = str(store._path_from_key(http.cookies[web.SESSION_COOKIE]))
        written = os.stat(path).st_mtime_ns
        for _ in range(5):
            assert (await http.get("/")).status_code == 200
        assert os.stat(path).st_mtime_ns == written  # renewed a moment ago: nothing written


async def test_a_due_renewal_is_written(app, clean_database):
    await make_account("fran")
    store = app.stores.get(web.SESSION_STORE)
    idle = app.state.settings.session_idle_seconds
    async with browser(app) as http:
        await sign_in(http, "fran")
        session = http.cookies[web.SESSION_COOKIE]
        data = await store.get(session)
        assert data is not None
        # As if the last renewal were two minutes ago.
        await store.set(session, data, expires_in=idle - 2 * web.RENEW_AFTER_SECONDS)
        assert (await store.expires_in(session) or 0) < idle - web.RENEW_AFTER_SECONDS
        assert (await http.get("/")).status_code == 200
        assert (await store.expires_in(session) or 0) > idle - 5
