"""A file written a slice at a time goes in exactly as it would in one piece: each
person once, linked to all their referrals, every step, every audit row."""

from __future__ import annotations

import pytest

from programme.imports import services
from programme.platform.accounts.schemas import Principal
from programme.platform.clock import today
from programme.platform.settings import get_settings
from programme.platform.tables import AuditEvent
from referrals.tables import Person, Referral, ReferralEvent, ReturnedReferral
from tests.builders import csv_person, csv_text

pytestmark = pytest.mark.anyio

SYSTEM = Principal(id=None, username="slices", role="system")


async def test_a_person_in_an_earlier_slice_is_linked_from_a_later_one(clean_database, monkeypatch):
    monkeypatch.setattr(services, "WRITE_SLICE", 1)  # every referral a slice of its own
    rows = [
        csv_person(1, received_on="2026-10-05", consent_obtained_on="2026-10-05"),
        csv_person(2, contacted_on="2026-10-02", engaged_on="2026-10-05"),
        csv_person(1, received_on="2026-06-01", consent_obtained_on="2026-06-01",
                   disengaged_on="2026-07-01"),
        csv_person(3, consent_given="no"),
    ]  # fmt: skip
    report = await services.import_referrals(
        csv_text(rows).encode(), SYSTEM, get_settings(), today(),
        skip_invalid=False, create_agencies=True,
    )  # fmt: skip
    assert (report.imported, report.returned, report.errors) == (3, 1, [])
    assert await Person.count() == 2
    first = await Referral.select(Referral.person).where(Referral.status == "disengaged").first()
    again = await Referral.select(Referral.person).where(Referral.status == "accepted").first()
    assert first is not None and again is not None and first["person"] == again["person"]
    assert await ReferralEvent.count() == 3 + 2 + 1
    assert await ReturnedReferral.count() == 1
    assert await AuditEvent.count().where(AuditEvent.record_type == "referral") == 3
