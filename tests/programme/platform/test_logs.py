"""Logs never carry names, dates of birth or phone numbers."""

from __future__ import annotations

import logging

import pytest

from programme.platform.logs import PersonalDataFilter, mask
from programme.platform.tables import Role

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    "text",
    [
        "born 1987-03-14",
        "born 14/03/1987",
        "call 07700 900123",
        "call +44 7700 900123",
        "call 0114 496 0999",
    ],
)
def test_dates_and_phone_numbers_are_masked(text):
    masked = mask(text)
    assert not any(ch.isdigit() for ch in masked.split(" ", 1)[1]), masked


def test_ids_and_counts_survive_masking():
    text = "imported 1204 rows for referral 5f0c2b1e-9d7a-4c1e-8f59-2d7d0b8a1c33"
    assert mask(text) == text


def test_the_filter_rewrites_records_before_any_handler_sees_them(caplog):
    logger = logging.getLogger("programme.test-filter")
    logger.addFilter(PersonalDataFilter())
    with caplog.at_level(logging.INFO, logger="programme.test-filter"):
        logger.info("person born %s on %s", "1987-03-14", "07700 900123")
    assert "1987" not in caplog.text
    assert "07700" not in caplog.text


async def test_a_failing_request_logs_nothing_from_its_body(client, caplog, sign_in):
    headers = await sign_in(Role.admin, "alice")
    with caplog.at_level(logging.DEBUG):
        await client.post(
            "/accounts",
            json={
                "username": "Joanne Bloggs 07700 900123",
                "password": "1987-03-14",
                "role": "referrer",
            },
            headers=headers,
        )
        await client.post("/auth/login", json={"username": "Joanne Bloggs", "password": 1987})
    for secret in ("Joanne", "Bloggs", "07700", "1987-03-14"):
        assert secret not in caplog.text
