"""The web pages' two settings: Secure cookies and the idle time-out."""

from __future__ import annotations

import pytest

from programme.platform.settings import ConfigurationError, get_settings


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch):
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def test_defaults_are_thirty_minutes_and_cookies_not_marked_secure(environment) -> None:
    environment.delenv("INSPIRE_SESSION_IDLE_MINUTES", raising=False)
    environment.delenv("INSPIRE_SECURE_COOKIES", raising=False)
    settings = get_settings()
    assert settings.session_idle_seconds == 30 * 60
    assert settings.secure_cookies is False


@pytest.mark.parametrize(("raw", "expected"), [("true", True), ("1", True), ("no", False)])
def test_secure_cookies_reads_true_and_false(environment, raw: str, expected: bool) -> None:
    environment.setenv("INSPIRE_SECURE_COOKIES", raw)
    assert get_settings().secure_cookies is expected


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("INSPIRE_SECURE_COOKIES", "maybe"),
        ("INSPIRE_SESSION_IDLE_MINUTES", "0"),
        ("INSPIRE_SESSION_IDLE_MINUTES", "1441"),
        ("INSPIRE_SESSION_IDLE_MINUTES", "half an hour"),
    ],
)
def test_a_value_that_makes_no_sense_stops_the_service_naming_it(
    environment, name: str, raw: str
) -> None:
    environment.setenv(name, raw)
    with pytest.raises(ConfigurationError, match=name):
        get_settings()


def test_the_idle_time_is_read_in_minutes(environment) -> None:
    environment.setenv("INSPIRE_SESSION_IDLE_MINUTES", "5")
    assert get_settings().session_idle_seconds == 300
