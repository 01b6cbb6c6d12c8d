"""The caseload's first-contact setting: how many working days before a new referral is overdue."""

from __future__ import annotations

import pytest

from programme.platform.settings import ConfigurationError, get_settings


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch):
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def test_five_working_days_unless_set(environment) -> None:
    environment.delenv("INSPIRE_FIRST_CONTACT_WORKING_DAYS", raising=False)
    assert get_settings().first_contact_working_days == 5
    get_settings.cache_clear()
    environment.setenv("INSPIRE_FIRST_CONTACT_WORKING_DAYS", "3")
    assert get_settings().first_contact_working_days == 3


@pytest.mark.parametrize("raw", ["0", "366", "a week"])
def test_a_value_that_makes_no_sense_stops_the_service_naming_it(environment, raw: str) -> None:
    environment.setenv("INSPIRE_FIRST_CONTACT_WORKING_DAYS", raw)
    with pytest.raises(ConfigurationError, match="INSPIRE_FIRST_CONTACT_WORKING_DAYS"):
        get_settings()
