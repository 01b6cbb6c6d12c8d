"""An import writes each part of its file as soon as that part is checked, in its one
transaction: an error in any later part still leaves nothing written, a clash with an
earlier part is still found, and what goes in (and the report) is what checking the
whole file first gave."""

from __future__ import annotations

import msgspec
import pytest

from programme.imports import services
from programme.platform import database
from programme.platform.accounts.schemas import Principal
from programme.platform.clock import today
from programme.platform.settings import get_settings
from programme.platform.tables import Agency, AuditEvent
from referrals.tables import Person, Referral, ReferralEvent, ReturnedReferral
from tests.builders import csv_person, csv_text

pytestmark = pytest.mark.anyio

SYSTEM = Principal(id=None, username="parts", role="system")


@pytest.fixture(autouse=True)
def parts_of_two(monkeypatch):
    """Two rows a part: a file of a few rows is checked and written in several parts."""
    monkeypatch.setattr(services, "CHECK_PART", 2)


async def run(rows: list[dict], **options):
    return await services.import_referrals(
        csv_text(rows).encode(), SYSTEM, get_settings(), today(),
        **{"skip_invalid": False, "create_agencies": True, **options},
    )  # fmt: skip


async def audit_rows_numbered() -> int:
    """How many audit rows were ever numbered: the sequence is not rolled back, so it
    shows rows written and then undone."""
    found = await database.fetch("SELECT pg_sequence_last_value('audit_event_id_seq') AS n")
    return found[0]["n"] or 0


async def nothing_written() -> bool:
    counts = [
        await Person.count(),
        await Referral.count(),
        await ReferralEvent.count(),
        await ReturnedReferral.count(),
        await AuditEvent.count().where(AuditEvent.record_type == "referral"),
        await Agency.count(),
    ]
    return counts == [0] * len(counts)


async def test_an_error_in_the_last_part_leaves_nothing_of_the_earlier_parts(clean_database):
    rows = [csv_person(n) for n in range(1, 7)] + [csv_person(7, gender="?")]
    numbered = await audit_rows_numbered()

    report = await run(rows)

    assert [(e.line, e.field) for e in report.errors] == [(8, "gender")]
    assert (report.imported, report.returned, report.refused) == (0, 0, 1)
    assert await nothing_written()
    # The three clean parts were written (the new agency and six referrals, each with
    # its audit row), then rolled back.
    assert await audit_rows_numbered() - numbered == 1 + 6


async def test_a_reference_repeated_parts_after_its_first_is_refused(clean_database):
    rows = [
        csv_person(1, reference="SYP-1"),
        *[csv_person(n) for n in range(2, 6)],
        csv_person(6, reference="SYP-1"),
    ]
    report = await run(rows)
    assert [(e.line, e.code, e.message) for e in report.errors] == [
        (7, "duplicate", "Same reference as line 2.")
    ]
    assert await nothing_written()

    skipping = await run(rows, skip_invalid=True)
    assert (skipping.imported, skipping.refused) == (5, 1)
    assert await Referral.count() == 5
    assert await Person.count() == 5


async def test_a_later_part_can_make_an_earlier_written_row_the_overlapping_one(clean_database):
    # Line 2 (October, open) is written with the first part; line 7, in the last part,
    # is the same person's earlier referral, still open in October: line 2 is refused.
    rows = [
        csv_person(1, received_on="2026-10-05", consent_obtained_on="2026-10-05"),
        *[csv_person(n) for n in range(2, 6)],
        csv_person(1, received_on="2026-06-01", consent_obtained_on="2026-06-01"),
    ]
    report = await run(rows)
    assert [(e.line, e.code) for e in report.errors] == [(2, "conflict")]
    assert "Line 7 is still open" in report.errors[0].message
    assert await nothing_written()


async def test_a_file_in_parts_is_reported_as_its_check_reported_it(clean_database):
    older_first_name = "PERSONB"  # the same person as "PersonB": names fold to one key
    rows = [
        csv_person(1, received_on="2026-10-05", consent_obtained_on="2026-10-05"),
        csv_person(2, consent_given="no"),
        csv_person(3, agency="Doncaster Children's Services", contacted_on="2026-10-02"),
        csv_person(4, contacted_on="2026-10-03", started_on="2026-10-09"),
        csv_person(5, consent_given="no"),
        csv_person(2, consent_given="no"),  # the same returned row again: present once
        csv_person(1, first_name=older_first_name, phone="0114 496 0999",
                   received_on="2026-06-01", consent_obtained_on="2026-06-01",
                   disengaged_on="2026-07-01"),
    ]  # fmt: skip
    checked = await run(rows, dry_run=True)
    assert await nothing_written()

    imported = await run(rows)

    assert imported == msgspec.structs.replace(checked, checked_only=False)
    assert imported.agencies_created == ["Doncaster Children's Services", "South Yorkshire Police"]
    assert (imported.imported, imported.returned, imported.already_present) == (4, 2, 1)
    assert [w.line for w in imported.warnings] == [5]  # no engaged date before started
    assert await Referral.count() == 4
    assert await ReturnedReferral.count() == 2
    assert await ReferralEvent.count() == 1 + 2 + 3 + 2
    assert await AuditEvent.count().where(AuditEvent.record_type == "referral") == 4
    # One person for both of person 1's referrals, with the details of the older one
    # (written after the newer one's part), as if the file had been written oldest first.
    people = await Person.select(Person.first_name, Person.phone).where(
        Person.last_name == "Imported"
    )
    assert len(people) == 3
    assert {"first_name": older_first_name, "phone": "+441144960999"} in people

    again = await run(rows)
    assert (again.imported, again.returned, again.already_present) == (0, 0, 7)
    assert await Referral.count() == 4


async def test_a_file_with_errors_is_reported_as_its_check_reported_it(clean_database):
    rows = [
        csv_person(1),
        csv_person(2, agency="Nowhere Agency"),
        csv_person(3, date_of_birth="x"),
        csv_person(4, reference="SYP-4"),
        csv_person(5, reference="SYP-4"),
    ]
    options = {"create_agencies": False}
    checked = await run(rows, dry_run=True, **options)
    imported = await run(rows, **options)
    assert imported == msgspec.structs.replace(checked, checked_only=False)
    assert {e.line for e in imported.errors} == {2, 3, 4, 5, 6}
    assert await nothing_written()


async def test_a_new_agency_spelt_two_ways_is_created_as_one_file_would_create_it(clean_database):
    # "SYP Two" sorts before "syp two": written whole, the file creates "SYP Two".
    rows = [
        csv_person(1, agency="syp two"),
        csv_person(2, agency="syp two"),
        csv_person(3, agency="SYP Two"),
    ]
    report = await run(rows)
    assert (report.imported, report.agencies_created) == (3, ["SYP Two"])
    assert [a["name"] for a in await Agency.select(Agency.name)] == ["SYP Two"]
