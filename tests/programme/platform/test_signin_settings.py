"""The sign-in settings: refused at start-up, in one line, when they make no sense."""

from __future__ import annotations

import os
from collections.abc import Iterator
from ipaddress import ip_network

import pytest

from programme.platform.settings import ConfigurationError, get_settings
from tests.builders import inspire


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Set variables with the returned monkeypatch; settings are read afresh, then restored."""
    get_settings.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    get_settings.cache_clear()


def test_trusted_proxies_are_addresses_and_cidr_blocks(environment):
    environment.setenv("INSPIRE_TRUSTED_PROXIES", " 10.0.0.5, 172.16.0.0/12,,2001:db8::/32 ")
    assert get_settings().trusted_proxies == (
        ip_network("10.0.0.5/32"),
        ip_network("172.16.0.0/12"),
        ip_network("2001:db8::/32"),
    )


def test_no_proxy_is_trusted_unless_named(environment):
    environment.delenv("INSPIRE_TRUSTED_PROXIES", raising=False)
    assert get_settings().trusted_proxies == ()


@pytest.mark.parametrize(
    ("variables", "refusal"),
    [
        (
            {"INSPIRE_TRUSTED_PROXIES": "10.0.0.0/8, proxy.example, 300.1.1.1"},
            "INSPIRE_TRUSTED_PROXIES must list IP addresses or CIDR blocks;"
            " not: 'proxy.example', '300.1.1.1'",
        ),
        (
            {"INSPIRE_PASSWORD_HASH_WORKERS": "0"},
            "INSPIRE_PASSWORD_HASH_WORKERS must be at least 1",
        ),
        (
            {"INSPIRE_PASSWORD_HASH_WORKERS": "1000"},
            "INSPIRE_PASSWORD_HASH_WORKERS must be at most 64",
        ),
        (
            {"INSPIRE_LOGIN_MAX_FAILURES_PER_ADDRESS": "many"},
            "INSPIRE_LOGIN_MAX_FAILURES_PER_ADDRESS must be a whole number, not 'many'",
        ),
        ({"INSPIRE_LOGIN_DELAY_SECONDS": "0"}, "INSPIRE_LOGIN_DELAY_SECONDS must be at least 1"),
        (
            {"INSPIRE_LOGIN_DELAY_SECONDS": "901", "INSPIRE_LOGIN_LOCKOUT_MINUTES": "15"},
            "INSPIRE_LOGIN_DELAY_SECONDS must not exceed INSPIRE_LOGIN_LOCKOUT_MINUTES in seconds",
        ),
    ],
)
def test_a_setting_that_makes_no_sense_is_refused_naming_it(environment, variables, refusal):
    for name, value in variables.items():
        environment.setenv(name, value)
    with pytest.raises(ConfigurationError) as refused:
        get_settings()
    assert str(refused.value) == refusal


def test_inspire_serve_refuses_to_start_in_one_line_on_a_bad_trusted_proxy(tmp_path):
    # A server nobody runs, with every key: only the setting can stop it first.
    env = {
        **os.environ,
        "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
        "INSPIRE_SECRET_KEY": "a signing key long enough for a test",
        "INSPIRE_ENCRYPTION_KEY": "an encryption key long enough for a test",
        "INSPIRE_PSEUDONYM_KEY": "a pseudonym key long enough for a test",
        "INSPIRE_DATA_DIR": str(tmp_path),
        "INSPIRE_TRUSTED_PROXIES": "a-name",
    }
    result = inspire("serve", "--port", "1", env=env)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "inspire: INSPIRE_TRUSTED_PROXIES must list IP addresses or CIDR blocks; not: 'a-name'"
    )
