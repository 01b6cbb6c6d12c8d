"""Sign-in throttling's pure rules, and who the client is behind a proxy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from ipaddress import ip_network
from pathlib import Path

import pytest

from programme.platform.accounts.access import forwarded_client
from programme.platform.accounts.rules import (
    Admission,
    Attempt,
    Throttle,
    ThrottlePolicy,
    admit,
    after_success,
)
from programme.platform.settings import Settings

POLICY = ThrottlePolicy(
    username_failures=5,
    address_failures=20,
    first_delay=timedelta(seconds=1),
    longest_delay=timedelta(minutes=15),
)
START = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
FRESH = Attempt(Throttle(), Throttle(), Throttle())


def fail(attempt: Attempt, now: datetime) -> tuple[Admission, Attempt]:
    admission = admit(attempt, now, POLICY)
    return admission, admission.records


def test_the_delay_starts_after_the_free_failures_doubles_and_stops_at_the_longest():
    delays = [POLICY.delay_after(n, free=5) for n in range(1, 17)]
    assert delays[:4] == [None] * 4
    assert [d.total_seconds() for d in delays[4:]] == [
        1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900,
    ]  # fmt: skip
    assert POLICY.delay_after(10_000, free=5) == timedelta(minutes=15)


def test_one_address_guessing_at_one_username_gets_12_checks_in_its_first_hour():
    """Retrying the moment each delay ends, with the default settings: the
    docstring's figure, under ASVS's 100 an hour."""
    defaults = Settings(database_url=None, data_dir=Path("unused"), secret_key=None)
    policy = ThrottlePolicy(
        defaults.login_max_failures,
        defaults.login_max_failures_per_address,
        timedelta(seconds=defaults.login_delay_seconds),
        timedelta(minutes=defaults.login_lockout_minutes),
    )
    attempt, now, checked = FRESH, START, 0
    while now < START + timedelta(hours=1):
        admission = admit(attempt, now, policy)
        attempt = admission.records
        if admission.retry_at is None:
            checked += 1
        else:
            now = admission.retry_at
    assert checked == 12


def test_refusals_grow_no_delay_and_do_not_count_as_failures():
    attempt = FRESH
    for _ in range(5):
        _, attempt = fail(attempt, START)
    delayed_until = attempt.username.delayed_until
    for _ in range(100):
        admission, attempt = fail(attempt, START + timedelta(milliseconds=500))
        assert admission.retry_at == delayed_until
    assert attempt.username.failures == 5
    assert attempt.username.refused == 100
    assert attempt.username.delayed_until == delayed_until


def test_a_clean_address_gets_past_a_delayed_username_and_a_failed_one_does_not():
    attacker = FRESH
    for _ in range(5):
        _, attacker = fail(attacker, START)
    username = attacker.username
    assert username.delayed(START)

    owner = admit(Attempt(Throttle(), Throttle(), username), START, POLICY)
    assert owner.retry_at is None and owner.username_was_delayed

    owner_after_a_typo = admit(
        Attempt(Throttle(), owner.records.username_at_address, owner.records.username),
        START,
        POLICY,
    )
    assert owner_after_a_typo.retry_at == owner.records.username.delayed_until


def test_a_delayed_address_is_refused_whatever_the_username():
    policy = ThrottlePolicy(5, 3, timedelta(seconds=1), timedelta(minutes=15))
    address = Throttle()
    for _ in range(3):
        address = admit(Attempt(address, Throttle(), Throttle()), START, policy).records.address
    refused = admit(Attempt(address, Throttle(), Throttle()), START, policy)
    assert refused.retry_at == START + timedelta(seconds=1)
    assert refused.records.username.failures == 0


def test_success_clears_the_usernames_own_failures_but_not_an_attack_under_way():
    attempt = FRESH
    for _ in range(3):
        _, attempt = fail(attempt, START)
    right = admit(attempt, START, POLICY)
    cleared = after_success(right.records, right, START, POLICY)
    assert cleared.username.failures == 0 and cleared.username_at_address.failures == 0
    assert cleared.address.failures == 3  # only the right attempt's count is taken back

    attack = FRESH
    for _ in range(8):
        _, attack = fail(attack, START)
    owner = admit(Attempt(Throttle(), Throttle(), attack.username), START, POLICY)
    after = after_success(owner.records, owner, START, POLICY)
    assert after.username.failures == attack.username.failures
    assert after.username.delayed(START)


def test_a_right_attempt_that_set_off_the_address_delay_takes_it_back():
    policy = ThrottlePolicy(5, 3, timedelta(seconds=1), timedelta(minutes=15))
    attempt = Attempt(Throttle(), Throttle(), Throttle())
    for _ in range(2):
        attempt = admit(attempt, START, policy).records
    right = admit(attempt, START, policy)
    assert right.records.address.delayed(START)
    after = after_success(right.records, right, START, policy)
    assert after.address.failures == 2 and not after.address.delayed(START)


def test_records_forget_their_failures_after_the_longest_delay():
    attempt = FRESH
    for _ in range(5):
        _, attempt = fail(attempt, START)
    delay_end = attempt.username.delayed_until
    assert delay_end is not None
    remembered = attempt.username.remembered(delay_end + POLICY.longest_delay - timedelta(1))
    assert remembered.failures == 5
    forgotten = attempt.username.remembered(delay_end + POLICY.longest_delay)
    assert forgotten.failures == 0 and not forgotten.delayed(delay_end)


PROXIES = (ip_network("10.0.0.0/8"), ip_network("2001:db8:ffff::/48"))


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "trusted", "client"),
    [
        # No trusted proxies: the header is never read.
        ("203.0.113.9", ["198.51.100.7"], (), "203.0.113.9"),
        # A peer that is not a trusted proxy: its header is the client's own claim.
        ("203.0.113.9", ["198.51.100.7"], PROXIES, "203.0.113.9"),
        # A trusted proxy: the right-most entry that is not a trusted proxy.
        ("10.0.0.1", ["192.0.2.1, 198.51.100.7"], PROXIES, "198.51.100.7"),
        ("10.0.0.1", ["192.0.2.1", "198.51.100.7, 10.1.2.3"], PROXIES, "198.51.100.7"),
        ("10.0.0.1", ["198.51.100.7:4711"], PROXIES, "198.51.100.7"),
        # Nothing but trusted proxies: the left-most.
        ("10.0.0.1", ["10.9.9.9, 10.1.2.3"], PROXIES, "10.9.9.9"),
        # Not an address: stop at the proxy that passed it on.
        ("10.0.0.1", ["198.51.100.7, garbage"], PROXIES, "10.0.0.1"),
        # No header from a trusted proxy: the proxy itself.
        ("10.0.0.1", [], PROXIES, "10.0.0.1"),
        # IPv6 clients are keyed by their /64; IPv4-mapped ones as IPv4.
        ("2001:db8:1:2:3:4:5:6", [], (), "2001:db8:1:2::/64"),
        ("2001:db8:ffff::1", ["[2001:db8:7:8::9]:443"], PROXIES, "2001:db8:7:8::/64"),
        ("::ffff:203.0.113.9", [], (), "203.0.113.9"),
        # A peer the server could not name.
        ("", ["198.51.100.7"], PROXIES, "unknown"),
    ],
)
def test_the_client_address_believes_x_forwarded_for_only_from_trusted_proxies(
    peer, forwarded_for, trusted, client
):
    assert forwarded_client(peer, forwarded_for, trusted) == client
