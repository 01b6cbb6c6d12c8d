"""Imports and the reoffending analysis run with the garbage collector paused, and only then.

bench/loop_responsiveness.py found the event loop stopped for seconds at a time
while a 200,000-row import ran: the collector's full collections walking the
millions of objects the import keeps alive, with the GIL held.
"""

from __future__ import annotations

import asyncio
import gc
from datetime import date

import pytest

from analysis import services as analysis_services
from analysis.rules import analysis_request
from programme.imports import services as import_services
from programme.platform.accounts.schemas import Principal
from programme.platform.settings import get_settings
from programme.platform.threads import collector_paused
from tests.builders import csv_person, csv_text

pytestmark = pytest.mark.anyio

TODAY = date(2026, 11, 20)


class _Stop(Exception):
    pass


def test_the_collector_is_paused_inside_the_block_and_back_after_it():
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_the_collector_comes_back_when_the_block_fails():
    with pytest.raises(_Stop), collector_paused():
        raise _Stop
    assert gc.isenabled()


async def test_overlapping_blocks_share_one_pause_until_the_last_ends():
    first_in, second_done = asyncio.Event(), asyncio.Event()
    seen = []

    async def first() -> None:
        with collector_paused():
            first_in.set()
            await second_done.wait()
            seen.append(("first, after the second ended", gc.isenabled()))

    async def second() -> None:
        await first_in.wait()
        with collector_paused():
            seen.append(("second", gc.isenabled()))
        second_done.set()

    await asyncio.gather(first(), second())
    assert seen == [("second", False), ("first, after the second ended", False)]
    assert gc.isenabled()


async def test_an_import_of_referrals_runs_with_the_collector_paused(
    app, clean_database, monkeypatch
):
    during = []
    plan = import_services.check_rows

    def watched(*args, **kwargs):
        during.append(gc.isenabled())
        return plan(*args, **kwargs)

    monkeypatch.setattr(import_services, "check_rows", watched)
    report = await import_services.import_referrals(
        csv_text([csv_person(1), csv_person(2)]).encode(),
        Principal(id=None, username="tester", role="system"),
        get_settings(),
        TODAY,
        skip_invalid=False,
        create_agencies=True,
    )
    assert report.imported == 2
    assert during == [False]
    assert gc.isenabled()


async def test_the_reoffending_analysis_runs_with_the_collector_paused(app, monkeypatch):
    during = []

    async def watched(as_of):
        during.append(gc.isenabled())
        raise _Stop

    monkeypatch.setattr(analysis_services, "load_cohort", watched)
    request = analysis_request(182, None, None, None, None, TODAY)
    with pytest.raises(_Stop):
        await analysis_services.analyse(request, TODAY, suppress_below=5)
    assert during == [False]
    assert gc.isenabled()
