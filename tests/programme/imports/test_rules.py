"""The whole-file checks of an import on their own: no database, no HTTP
(tests/referrals/test_import.py and tests/outcomes/test_reoffending_import.py run
whole imports through the command line and the API)."""

from __future__ import annotations

import hashlib
import hmac
from datetime import date

import pytest

from programme.imports.rules import (
    COLUMNS,
    INCIDENT_COLUMNS,
    MAX_CELL,
    Plan,
    check_overlaps,
    final_status,
    keyed_digest,
    plan_import,
    plan_incidents,
    read_csv,
)
from referrals.rules import ReturnReason, Status, match_key
from tests.builders import csv_person, csv_text

TODAY = date(2026, 11, 27)
AREAS = ("Barnsley", "Doncaster", "Rotherham", "Sheffield")
SECRET = "a test secret"


def read(content: bytes, columns=("a", "b", "c"), required=("a",)):
    problems: list = []
    rows = read_csv(content, columns, required, problems)
    return rows, [(p.line, p.code, p.field) for p in problems]


def plan(rows: list[dict], **kwargs) -> Plan:
    return plan_import(
        csv_text(rows).encode(),
        today=kwargs.get("today", TODAY),
        commissioned_areas=AREAS,
        fingerprint_key=kwargs.get("fingerprint_key", SECRET),
        reference_key=kwargs.get("reference_key", SECRET),
    )


def errors(found) -> list[tuple[int, str, str]]:
    return [(p.line, p.code, p.field) for p in found.errors]


# ------------------------------------------------------------------ reading


def test_rows_come_with_their_line_numbers_and_stripped_values():
    rows, problems = read(b" a , b\n1, x \n  2  ,y\n")
    assert problems == []
    assert rows == [(2, {"a": "1", "b": "x"}), (3, {"a": "2", "b": "y"})]


@pytest.mark.parametrize(
    "content",
    [
        b"\xef\xbb\xbfa,b\n1,x\n",  # a byte-order mark, as Excel writes
        b"a,b\r\n1,x\r\n",  # Windows line ends
        b"\xef\xbb\xbfa,b\r\n1,x\r\n",
        b"a,b\n1,x",  # no line end at the end
    ],
)
def test_a_byte_order_mark_and_windows_line_ends_are_read(content):
    assert read(content) == ([(2, {"a": "1", "b": "x"})], [])


def test_a_file_that_is_not_utf8_is_refused():
    assert read("a,b\nJos\u00e9,x\n".encode("latin-1")) == ([], [(1, "invalid", "")])


@pytest.mark.parametrize("content", [b"", b"\n", b"\r\n", b"\na,b\n1,x\n"])
def test_a_file_must_name_its_columns_on_line_1(content):
    assert read(content) == ([], [(1, "invalid", "")])


def test_every_header_problem_is_reported_and_no_rows_come_back():
    rows, problems = read(b"b,d,b,b,e\n1,2,3,4,5\n")
    assert rows == []
    assert problems == [
        (1, "unknown_column", "d"),
        (1, "unknown_column", "e"),
        (1, "duplicate_column", "b"),
        (1, "missing_column", "a"),
    ]


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        (b"a,b,favourite_colour", (1, "unknown_column", "favourite_colour")),
        (b"a,b,", (1, "unknown_column", "")),  # a trailing comma
        (b"a,b,A", (1, "unknown_column", "A")),  # names are case-sensitive
        (b"a,b, a ", (1, "duplicate_column", "a")),
        (b"b,c", (1, "missing_column", "a")),
    ],
)
def test_each_header_problem(header, problem):
    assert read(header + b"\n1,2,3\n") == ([], [problem])


def test_optional_columns_may_be_left_out():
    assert read(b"a\n1\n") == ([(2, {"a": "1"})], [])


def test_a_row_of_the_wrong_width_is_a_problem_on_its_line_and_left_out():
    rows, problems = read(b"a,b\n1,x\n2\n3,y,z\n4,w\n")
    assert [line for line, _ in rows] == [2, 5]
    assert problems == [(3, "invalid", ""), (4, "invalid", "")]


def test_a_nul_character_refuses_the_file_at_its_line():
    assert read(b"a,b\n1,x\n2,y\x00\n3,z\n") == ([], [(3, "invalid", "")])
    assert read(b"a\x00,b\n1,x\n") == ([], [(1, "invalid", "")])


def test_blank_lines_are_skipped_and_do_not_shift_line_numbers():
    rows, problems = read(b"a,b\n\n1,x\n   \n,\n , \n2,y\n\n")
    assert problems == []
    assert rows == [(3, {"a": "1", "b": "x"}), (7, {"a": "2", "b": "y"})]


def test_quoted_cells_may_hold_commas_quotes_and_line_breaks():
    content = b'a,b\n1,"Smith, ""JJ"""\n2,"first line\nsecond line\n\nfourth line"\n3,z\n4,"w"\n'
    rows, problems = read(content)
    assert problems == []
    assert [values for _, values in rows] == [
        {"a": "1", "b": 'Smith, "JJ"'},
        {"a": "2", "b": "first line\nsecond line\n\nfourth line"},
        {"a": "3", "b": "z"},
        {"a": "4", "b": "w"},
    ]
    # Lines are counted in the file, not in rows: the multi-line cell takes lines 3-6,
    # and its row is numbered by the line it starts on.
    assert [line for line, _ in rows] == [2, 3, 7, 8]


def test_a_problem_after_a_multi_line_cell_is_on_the_right_line():
    rows, problems = read(b'a,b\n1,"two\nlines"\n2\n3,z\n')
    assert [values["b"] for _, values in rows] == ["two\nlines", "z"]
    assert rows[-1][0] == 5
    assert problems == [(4, "invalid", "")]


def test_an_over_long_cell_is_a_problem_on_its_line_and_reading_goes_on():
    content = b"a,b\n1,x\n2," + b"y" * (MAX_CELL + 1) + b"\n3,z\n"
    rows, problems = read(content)
    assert [line for line, _ in rows] == [2, 4]
    assert problems == [(3, "invalid", "")]
    assert read(b"a,b\n1," + b"y" * MAX_CELL + b"\n")[1] == []


def test_a_keyed_digest_is_hmac_sha256_of_the_text():
    digest = keyed_digest(SECRET, "some text")
    assert digest == hmac.new(SECRET.encode(), b"some text", hashlib.sha256).hexdigest()
    assert len(digest) == 64
    assert keyed_digest("another secret", "some text") != digest
    assert keyed_digest(SECRET, "some text!") != digest


# --------------------------------------------------------------- referrals


def test_good_rows_are_planned_with_their_person_and_agency():
    result = plan([csv_person(1), csv_person(2, reference="SYP-2", agency="  Doncaster   CSC ")])
    assert (result.errors, result.warnings, result.returned) == ([], [], [])
    first, second = result.accepted
    assert (first.line, first.agency, second.line, second.agency) == (
        2, "South Yorkshire Police", 3, "Doncaster CSC",
    )  # fmt: skip
    assert first.submission.first_name == "PersonB"
    assert first.person_key == match_key("PersonB", "Imported", date(1971, 1, 15))
    assert second.reference == "SYP-2"
    assert first.milestones == []


def test_a_row_without_a_reference_gets_a_stable_keyed_one():
    reference = plan([csv_person(1)]).accepted[0].reference
    assert reference.startswith("IMP-") and len(reference) == 16
    assert plan([csv_person(1)]).accepted[0].reference == reference
    assert plan([csv_person(1)], reference_key="another").accepted[0].reference != reference
    # The fingerprint key is another purpose's: it leaves generated references alone.
    assert plan([csv_person(1)], fingerprint_key="another").accepted[0].reference == reference
    later = csv_person(1, received_on="2026-10-02")
    assert plan([later]).accepted[0].reference != reference
    # It is derived from the person's match key, not their spelling.
    same = csv_person(1, first_name="personb", last_name="IMPORTED")
    assert plan([same]).accepted[0].reference == reference


def test_the_file_needs_an_agency_and_a_received_on_column():
    for column in ("agency", "received_on"):
        row = {k: v for k, v in csv_person(1).items() if k != column}
        found = plan([row])
        assert errors(found) == [(1, "missing_column", column)]
        assert found.accepted == found.returned == []


@pytest.mark.parametrize(
    ("overrides", "code", "field"),
    [({"agency": ""}, "required", "agency"), ({"agency": "   "}, "required", "agency"),
     ({"agency": "A" * 201}, "invalid", "agency"),
     ({"received_on": ""}, "required", "received_on")],
)  # fmt: skip
def test_each_row_names_its_agency_and_received_date(overrides, code, field):
    found = plan([csv_person(1), csv_person(2, **overrides)])
    assert errors(found) == [(3, code, field)]
    assert found.error_lines == {3}


def test_a_row_that_cannot_be_read_is_an_error_with_every_problem():
    found = plan([csv_person(1), csv_person(2, date_of_birth="31/12/1980", gender="?")])
    assert errors(found) == [(3, "invalid", "date_of_birth"), (3, "invalid", "gender")]
    assert [row.line for row in found.accepted] == [2]
    assert found.returned == []


def test_a_readable_row_failing_the_intake_checks_is_returned():
    rows = [csv_person(1, consent_given="no", local_authority="Leeds"), csv_person(2)]
    found = plan(rows)
    assert found.errors == []
    [returned] = found.returned
    assert (returned.line, returned.agency, returned.received_on) == (
        2, "South Yorkshire Police", date(2026, 10, 1),
    )  # fmt: skip
    assert returned.reasons == [ReturnReason.out_of_area, ReturnReason.consent_missing]
    assert [row.line for row in found.accepted] == [3]
    # The same row gives the same fingerprint, so importing it again adds nothing.
    assert plan(rows).returned[0].fingerprint == returned.fingerprint
    other = plan([csv_person(1, consent_given="no", local_authority="York")]).returned[0]
    assert other.fingerprint != returned.fingerprint


def test_a_returned_row_cannot_have_milestones():
    found = plan([csv_person(1, consent_given="no", contacted_on="2026-10-02")])
    assert errors(found) == [(2, "out_of_order", "")]
    assert found.returned == found.accepted == []


def test_a_reference_twice_in_one_file_is_a_duplicate():
    found = plan(
        [csv_person(1, reference="SYP-1"), csv_person(2), csv_person(3, reference="SYP-1")]
    )
    assert errors(found) == [(4, "duplicate", "reference")]
    assert "line 2" in found.errors[0].message
    assert [row.line for row in found.accepted] == [2, 3]


def test_milestones_in_order_are_kept_in_date_order():
    row = csv_person(
        1, contacted_on="2026-10-02", engaged_on="2026-10-02", started_on="2026-10-12",
        completed_on="2026-11-20",
    )  # fmt: skip
    [accepted] = plan([row]).accepted
    assert accepted.milestones == [
        (Status.contacted, date(2026, 10, 2)),
        (Status.engaged, date(2026, 10, 2)),
        (Status.started, date(2026, 10, 12)),
        (Status.completed, date(2026, 11, 20)),
    ]


@pytest.mark.parametrize(
    ("milestones", "problem"),
    [
        ({"contacted_on": "2026-10-05", "engaged_on": "2026-10-04"},
         ("out_of_order", "engaged_on")),
        ({"engaged_on": "2026-10-20", "started_on": "2026-10-10"},
         ("out_of_order", "started_on")),
        ({"contacted_on": "2026-09-01"}, ("out_of_order", "contacted_on")),
        ({"started_on": "2026-11-28"}, ("future_date", "started_on")),
        ({"engaged_on": "next tuesday"}, ("invalid", "engaged_on")),
        ({"engaged_on": "2026-10-05", "completed_on": "2026-10-20", "closed_on": "2026-10-21"},
         ("out_of_order", "closed_on")),
        ({"disengaged_on": "2026-10-20", "withdrawn_on": "2026-10-21"},
         ("out_of_order", "withdrawn_on")),
        ({"started_on": "2026-10-20", "disengaged_on": "2026-10-10"},
         ("out_of_order", "disengaged_on")),
    ],
)  # fmt: skip
def test_milestones_out_of_order_or_unreadable_are_errors_on_their_column(milestones, problem):
    found = plan([csv_person(1), csv_person(2, **milestones)])
    assert errors(found) == [(3, *problem)]
    assert found.error_lines == {3}


def test_a_milestone_on_the_day_of_the_referral_or_today_is_in_order():
    row = csv_person(1, contacted_on="2026-10-01", engaged_on=TODAY.isoformat())
    assert plan([row]).errors == []


def test_milestones_skipped_on_the_way_are_warnings_not_errors():
    found = plan([csv_person(1, started_on="2026-10-12", disengaged_on="2026-10-20")])
    assert found.errors == []
    assert [(w.line, w.code, w.field) for w in found.warnings] == [
        (2, "missing_milestone", "contacted_on"), (2, "missing_milestone", "engaged_on"),
    ]  # fmt: skip
    assert found.accepted[0].milestones[-1] == (Status.disengaged, date(2026, 10, 20))
    ended_early = plan([csv_person(1, closed_on="2026-10-03")])
    assert ended_early.warnings == ended_early.errors == []


def test_the_status_a_row_ends_in():
    received = date(2026, 10, 1)
    assert final_status([], received) == (Status.accepted, received)
    [accepted] = plan([csv_person(1, contacted_on="2026-10-02", engaged_on="2026-10-09",
                                  disengaged_on="2026-10-30")]).accepted  # fmt: skip
    status = final_status(accepted.milestones, received)
    assert status == (Status.disengaged, date(2026, 10, 30))


# ----------------------------------------------------------------- overlaps


def overlaps(rows: list[dict], open_elsewhere: dict[str, str] | None = None) -> Plan:
    found = plan(rows)
    assert found.errors == []
    check_overlaps(
        found, {row.line: row.person_key for row in found.accepted}, open_elsewhere or {}
    )
    return found


def again(n: int, received_on: str, **milestones: str) -> dict:
    """Person n referred again on another day."""
    return csv_person(n, received_on=received_on, consent_obtained_on=received_on, **milestones)


def test_a_person_with_two_open_referrals_in_one_file_is_a_conflict():
    found = overlaps([csv_person(1), again(1, "2026-10-05")])
    assert errors(found) == [(3, "conflict", "received_on")]
    assert "Line 2" in found.errors[0].message


def test_the_later_referral_is_the_conflict_whatever_the_order_of_the_lines():
    found = overlaps([again(1, "2026-10-05"), csv_person(1)])
    assert errors(found) == [(2, "conflict", "received_on")]
    assert "Line 3" in found.errors[0].message


@pytest.mark.parametrize(
    ("ending", "conflict"),
    [
        ({"disengaged_on": "2026-10-04"}, False),
        ({"withdrawn_on": "2026-10-05"}, False),  # ended the day the next one came in
        ({"closed_on": "2026-10-06"}, True),  # still open when the next one came in
        ({"contacted_on": "2026-10-02", "engaged_on": "2026-10-03", "started_on": "2026-10-04",
          "completed_on": "2026-10-05"}, False),
        ({"contacted_on": "2026-10-02"}, True),  # progress is not an ending
    ],
)  # fmt: skip
def test_a_referral_after_an_ending_is_no_conflict(ending, conflict):
    found = overlaps([csv_person(1, **ending), again(1, "2026-10-05")])
    assert errors(found) == ([(3, "conflict", "received_on")] if conflict else [])


def test_an_open_referral_blocks_every_later_one_not_only_the_next():
    # January stays open; March began and ended in between; May is still a second
    # open referral beside January's.
    found = overlaps(
        [
            again(1, "2026-01-05"),
            again(1, "2026-03-01", disengaged_on="2026-04-01"),
            again(1, "2026-05-01"),
        ]
    )
    assert errors(found) == [(3, "conflict", "received_on"), (4, "conflict", "received_on")]
    assert all("Line 2" in e.message for e in found.errors)


def test_different_people_never_conflict():
    assert overlaps([csv_person(1), csv_person(2), csv_person(3)]).errors == []


def test_a_person_with_an_open_referral_already_stored_conflicts_on_every_row():
    first, second, third = csv_person(1), again(1, "2026-10-20"), csv_person(2)
    key = match_key("PersonB", "Imported", date(1971, 1, 15))
    found = overlaps([first, second, third], {key: "ITC-2026-0001"})
    assert errors(found) == [(2, "conflict", "reference"), (3, "conflict", "reference")]
    assert all("ITC-2026-0001" in error.message for error in found.errors)


# ---------------------------------------------------------------- incidents


def incidents(text: str, today: date = TODAY):
    return plan_incidents(text.encode(), today=today)


def test_incidents_are_named_by_reference_or_by_name_and_birth_date():
    found = incidents(
        "reference,first_name,last_name,date_of_birth,offence_date,offence_type\n"
        "SYP-0001,,,,2026-10-20,assault\n"
        ",Seán,O'Neil,1990-05-17,2026-11-01,\n"
        "SYP-0002,Sean,ONeil,1990-05-17,2026-11-02,harassment\n"
    )
    assert found.errors == []
    assert [(r.line, r.offence_on, r.offence_type, r.reference, r.person_key)
            for r in found.rows] == [
        (2, date(2026, 10, 20), "assault", "SYP-0001", None),
        (3, date(2026, 11, 1), None, None, "oneil|sean|1990-05-17"),
        (4, date(2026, 11, 2), "harassment", "SYP-0002", None),
    ]  # fmt: skip


def test_an_incident_file_needs_a_way_to_name_people():
    found = incidents("first_name,last_name,offence_date\nSam,Smith,2026-10-20\n")
    assert [(p.line, p.code, p.field) for p in found.errors] == [(1, "missing_column", "reference")]
    assert found.rows == []
    assert incidents("reference,offence_date\n").errors == []
    by_name = "first_name,last_name,date_of_birth,offence_date\nSam,Smith,1990-01-01,2026-10-20\n"
    assert len(incidents(by_name).rows) == 1


def test_an_incident_file_needs_offence_dates_and_known_columns():
    found = incidents("reference,offence_type,postcode\nSYP-1,assault,S60 1AA\n")
    assert [(p.line, p.code, p.field) for p in found.errors] == [
        (1, "unknown_column", "postcode"), (1, "missing_column", "offence_date"),
    ]  # fmt: skip
    assert set(INCIDENT_COLUMNS) >= {"reference", "offence_date"}


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ("SYP-1,,,,20/10/2026,", ("invalid", "offence_date")),
        ("SYP-1,,,,,assault", ("invalid", "offence_date")),
        ("SYP-1,,,,2026-11-28,", ("future_date", "offence_date")),
        ("SYP-1,,,,2026-10-20," + "x" * 101, ("invalid", "offence_type")),
        (",Sam,Smith,,2026-10-20,", ("required", "reference")),
        (",Sam,,1990-01-01,2026-10-20,", ("required", "reference")),
        (",,Smith,1990-01-01,2026-10-20,", ("required", "reference")),
        (",Sam,Smith,01/01/1990,2026-10-20,", ("invalid", "date_of_birth")),
    ],
)
def test_each_incident_problem_is_on_its_line_and_the_row_left_out(row, problem):
    found = incidents(
        "reference,first_name,last_name,date_of_birth,offence_date,offence_type\n"
        "SYP-0,,,,2026-10-01,\n" + row + "\n"
    )
    assert [(p.line, p.code, p.field) for p in found.errors] == [(3, *problem)]
    assert [r.line for r in found.rows] == [2]


def test_an_offence_today_is_accepted():
    found = incidents(f"reference,offence_date\nSYP-1,{TODAY.isoformat()}\n")
    assert (found.errors, len(found.rows)) == ([], 1)


def test_the_referral_columns_are_the_intake_fields_the_agency_and_milestones():
    assert {"agency", "received_on", "reference", "contacted_on", "closed_on"} <= COLUMNS
