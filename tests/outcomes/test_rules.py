"""Consent to contact, decided without a database."""

from __future__ import annotations

from datetime import date

import pytest

from outcomes.rules import may_contact


@pytest.mark.parametrize(
    ("consent", "allowed"),
    [
        (None, False),
        ({"given": False, "withdrawn_on": None}, False),
        ({"given": True, "withdrawn_on": None}, True),
        ({"given": True, "withdrawn_on": date(2026, 10, 1)}, False),
    ],
)
def test_contact_only_on_consent_given_and_not_withdrawn(consent, allowed):
    assert may_contact(consent) is allowed
