"""The served app hides what start-up left alive from the garbage collector.

bench/loop_responsiveness.py found the event loop stopped for up to 1.5 s at a
time during an import and an analysis, with nothing else running: full
collections of the cyclic garbage collector, walking (among the rest) the
200,000 objects the libraries leave at start-up, with the GIL held. ``inspire serve`` (one process
or each worker) freezes them once the app has started.
"""

from __future__ import annotations

import gc
import sys
import weakref
from collections.abc import Iterator

import pytest

from programme import server

pytestmark = pytest.mark.anyio


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """Whatever a test freezes is handed back to the collector afterwards, and the
    switch interval is put back."""
    interval = sys.getswitchinterval()
    gc.unfreeze()
    try:
        yield
    finally:
        gc.unfreeze()
        sys.setswitchinterval(interval)


class _Cycle:
    def __init__(self) -> None:
        self.me = self


async def test_once_started_the_objects_alive_are_left_out_of_every_collection(
    migrated_database, unfrozen
):
    app = server.served_app()
    assert gc.get_freeze_count() == 0
    async with app.lifespan():
        frozen = gc.get_freeze_count()
    assert frozen > 10_000
    assert len(gc.get_objects(generation=2)) < frozen


async def test_what_is_made_after_start_up_is_still_collected(migrated_database, unfrozen):
    async with server.served_app().lifespan():
        garbage = _Cycle()
        gone = weakref.ref(garbage)
        del garbage
        gc.collect()
        assert gone() is None


async def test_a_cycle_made_before_start_up_and_dropped_then_is_not_kept_for_ever(
    migrated_database, unfrozen
):
    app = server.served_app()
    garbage = _Cycle()
    gone = weakref.ref(garbage)
    del garbage
    async with app.lifespan():
        assert gone() is None  # collected before the freeze, not frozen


async def test_once_started_a_worker_thread_hands_the_gil_back_to_the_loop_within_1_ms(
    migrated_database, unfrozen
):
    sys.setswitchinterval(0.005)  # Python's default
    async with server.served_app().lifespan():
        assert sys.getswitchinterval() == pytest.approx(0.001)
