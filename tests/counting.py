"""The app with every count shown as it is, for tests of what the reports count.

Published reports hide counts from 1 to ``INSPIRE_SUPPRESS_BELOW`` - 1; tests of the
counting itself (one referral, one return) need to see them. Import ``app`` into such a
test module to replace the shared fixture there; the suppression has its own tests
(tests/analysis/test_report_publishing.py).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from litestar import Litestar

UNSUPPRESSED = {**os.environ, "INSPIRE_SUPPRESS_BELOW": "1"}
"""The environment for ``inspire report ...`` in such tests."""


@pytest.fixture
async def app(migrated_database: None) -> AsyncIterator[Litestar]:
    from programme.app import create_app
    from programme.platform.settings import get_settings

    service = create_app(replace(get_settings(), suppress_below=1))
    async with service.lifespan():
        yield service
