"""Synthetic referrals for the benchmarks: every row a different, valid person.

Deterministic (no randomness), so every run measures the same data. Row ``i``
is person ``(FIRST[i % 40], LAST[(i // 40) % 50], born on day i // 2000)``,
a bijection for i < 100,000, so no two rows share a match key; phones are
distinct too (mobiles 07400/07800 and Sheffield landlines 0114 2xx/3xx xxxx,
ranges phonenumbers accepts in full). Import rows 100,000 to 199,999 are a
third, disjoint block (born 1986 to 2001, mobiles 07500 and landlines 0114 4xx),
so an import file may have up to 200,000 different people.

This module imports nothing from the project, so the bare baseline app may use
it as well.
"""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from typing import Any

from referrals.rules import SUBMISSION_FIELDS

FIRST = [
    "Aaron",
    "Adam",
    "Alan",
    "Andrew",
    "Anthony",
    "Ben",
    "Carl",
    "Chris",
    "Craig",
    "Daniel",
    "Darren",
    "David",
    "Dean",
    "Gary",
    "Graham",
    "Ian",
    "Jack",
    "James",
    "Jamie",
    "Jason",
    "Joe",
    "John",
    "Jordan",
    "Kevin",
    "Lee",
    "Liam",
    "Mark",
    "Martin",
    "Matthew",
    "Michael",
    "Neil",
    "Paul",
    "Peter",
    "Richard",
    "Robert",
    "Ryan",
    "Scott",
    "Sean",
    "Simon",
    "Steven",
]
LAST = [
    "Adams",
    "Allen",
    "Bailey",
    "Baker",
    "Barker",
    "Bell",
    "Brown",
    "Clarke",
    "Cooper",
    "Cox",
    "Davies",
    "Dawson",
    "Edwards",
    "Evans",
    "Fisher",
    "Fox",
    "Green",
    "Hall",
    "Harris",
    "Hill",
    "Holmes",
    "Hughes",
    "Jackson",
    "James",
    "Johnson",
    "Jones",
    "Kelly",
    "King",
    "Lee",
    "Lewis",
    "Marshall",
    "Martin",
    "Mason",
    "Moore",
    "Morris",
    "Parker",
    "Price",
    "Robinson",
    "Shaw",
    "Smith",
    "Taylor",
    "Thomas",
    "Turner",
    "Walker",
    "Ward",
    "Watson",
    "White",
    "Wilson",
    "Wood",
    "Wright",
]
assert len(FIRST) == 40 and len(LAST) == 50
PEOPLE_PER_BIRTHDAY = len(FIRST) * len(LAST)  # 2,000

AGENCIES = (
    "South Yorkshire Police",
    "Sheffield Children's Services",
    "Rotherham Early Help",
    "Doncaster Adult Social Care",
    "Barnsley Health Visiting",
)
AREAS = ("Barnsley", "Doncaster", "Rotherham", "Sheffield")
RELATIONSHIPS = ("partner", "ex_partner", "family_member")
RISK = ("standard", "medium", "high", "")
YES_NO_BLANK = ("yes", "no", "")
NOTES = (
    "Agreed to a call on weekday mornings.",
    "Prefers text first, then a call; works shifts.",
    "",
    'Said "call after 6pm", please.',
)

MILESTONE_COLUMNS = ("contacted_on", "engaged_on", "started_on", "completed_on", "disengaged_on")
API_FIELDS = tuple(f for f in SUBMISSION_FIELDS if f not in ("reference", "victims"))
"""The keys of ``api_body``: what POST /referrals receives, and the bare table's columns."""
CSV_COLUMNS = ("agency", "reference", *API_FIELDS, *MILESTONE_COLUMNS)
"""The columns of an import file: agency and reference, what the API takes, the milestones."""
MILESTONE_DAYS = {
    "contacted_on": 3,
    "engaged_on": 17,
    "started_on": 31,
    "completed_on": 190,
    "disengaged_on": 45,
}
"""Days after received_on; every row's dates are in lifecycle order and in the past."""
UNCONSENTED_PERCENT = 5


BLOCK = 100_000
"""People per block; ``person(i, offset=k)`` for i < BLOCK is distinct across blocks."""
IMPORT_BLOCKS = (0, 2)
"""The blocks import rows use, in order (block 1 is the HTTP benchmarks')."""
MAX_IMPORT_ROWS = BLOCK * len(IMPORT_BLOCKS)


def person(i: int, *, offset: int = 0) -> tuple[str, str, date, str]:
    """First name, last name, birth date and phone of person ``i`` (distinct for each i).

    ``offset`` moves to a disjoint block of people (another birth-date range and
    other phone ranges), e.g. for the HTTP benchmark.
    """
    if not 0 <= i < BLOCK:
        raise ValueError("person index out of range")
    first = FIRST[i % len(FIRST)]
    last = LAST[(i // len(FIRST)) % len(LAST)]
    if offset == 2:
        # 50 birthdays, 113 days apart, 1986 to 2001; mobiles 07500, landlines 0114 4xx.
        born = date(1986, 1, 3) + timedelta(days=113 * (i // PEOPLE_PER_BIRTHDAY))
        if i % 2 == 0:
            return first, last, born, f"07500 {i:06d}"
        return first, last, born, f"0114 4{i // 10_000:02d} {i % 10_000:04d}"
    # 50 birthdays, 113 days apart: 1968 to 1983 (offset 0), 1950 to 1965 (offset 1).
    born = date(1968 - 18 * offset, 1, 3) + timedelta(days=113 * (i // PEOPLE_PER_BIRTHDAY))
    if i % 2 == 0:
        phone = f"07{4 + 4 * offset}00 {i:06d}"  # 07400 / 07800 mobiles
    else:
        phone = f"0114 {2 + offset}{i // 10_000:02d} {i % 10_000:04d}"  # 0114 2xx / 3xx xxxx
    return first, last, born, phone


def csv_row(i: int, today: date) -> dict[str, str]:
    """One import row; about 5% unconsented (returned on import), 55% with milestones."""
    if not 0 <= i < MAX_IMPORT_ROWS:
        raise ValueError(f"at most {MAX_IMPORT_ROWS:,} import rows")
    first, last, born, phone = person(i % BLOCK, offset=IMPORT_BLOCKS[i // BLOCK])
    received = today - timedelta(days=400 + i % 1500)
    share = i % 100
    consented = share >= UNCONSENTED_PERCENT
    row = {
        "agency": AGENCIES[i % len(AGENCIES)],
        "reference": f"SYP/{received.year}/{i:06d}" if i % 2 == 0 else "",
        "received_on": received.isoformat(),
        "first_name": first,
        "last_name": last,
        "date_of_birth": born.isoformat(),
        "gender": "male" if i % 7 else "female",
        "phone": phone,
        "local_authority": AREAS[i % len(AREAS)],
        "relationship": RELATIONSHIPS[i % len(RELATIONSHIPS)],
        "risk_level": RISK[i % len(RISK)],
        "prior_incidents": "" if i % 11 == 0 else str(i % 9),
        "substance_misuse": YES_NO_BLANK[i % 3],
        "mental_health": YES_NO_BLANK[(i // 3) % 3],
        "children_in_household": YES_NO_BLANK[(i // 9) % 3],
        "on_probation_programme": "no",
        "consent_given": "yes" if consented else "no",
        "consent_obtained_on": (received - timedelta(days=i % 5)).isoformat(),
        "consent_method": "verbal" if i % 3 else "written",
        "notes": NOTES[i % len(NOTES)],
    }
    reached: tuple[str, ...] = ()
    if consented:
        if 45 <= share < 60:
            reached = ("contacted_on",)
        elif 60 <= share < 70:
            reached = ("contacted_on", "engaged_on")
        elif 70 <= share < 80:
            reached = ("contacted_on", "engaged_on", "started_on")
        elif 80 <= share < 92:
            reached = ("contacted_on", "engaged_on", "started_on", "completed_on")
        elif share >= 92:
            reached = ("contacted_on", "engaged_on", "disengaged_on")
    for column in MILESTONE_COLUMNS:
        row[column] = ""
    for column in reached:
        row[column] = (received + timedelta(days=MILESTONE_DAYS[column])).isoformat()
    return row


def expected_outcome(rows: int) -> tuple[int, int]:
    """(accepted, returned) an import of the first ``rows`` rows should report."""
    returned = sum(1 for i in range(rows) if i % 100 < UNCONSENTED_PERCENT)
    return rows - returned, returned


def referrals_csv(rows: int, today: date) -> bytes:
    """A CSV file (header + ``rows`` rows) as bytes, built in memory."""
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for i in range(rows):
        writer.writerow(csv_row(i, today))
    return buffer.getvalue().encode("utf-8")


def api_body(i: int, today: date) -> dict[str, Any]:
    """A JSON body for POST /referrals that passes every check: person ``i`` of block 1."""
    first, last, born, phone = person(i, offset=1)
    received = today - timedelta(days=i % 30)
    body = {
        "received_on": received.isoformat(),
        "first_name": first,
        "last_name": last,
        "date_of_birth": born.isoformat(),
        "gender": "male",
        "phone": phone,
        "local_authority": AREAS[i % len(AREAS)],
        "relationship": RELATIONSHIPS[i % len(RELATIONSHIPS)],
        "risk_level": ("standard", "medium", "high")[i % 3],
        "prior_incidents": i % 9,
        "substance_misuse": bool(i % 2),
        "mental_health": bool(i % 3),
        "children_in_household": bool(i % 5),
        "on_probation_programme": False,
        "consent_given": True,
        "consent_obtained_on": (received - timedelta(days=1)).isoformat(),
        "consent_method": "verbal",
        "notes": NOTES[0],
    }
    assert tuple(body) == API_FIELDS
    return body
