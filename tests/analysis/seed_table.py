"""Build referrals whose milestone dates reproduce the council's published quarterly table.

The table (Rotherham's domestic abuse strategy progress report, December 2023,
section 2.6; copied in tests/data/) gives, per quarter, referrals received and
the engagements, starts and completions that happened in it. This builds one
CSV row per referral, in the importer's columns, so that importing it and
running the quarterly report must give the table back.
"""

from __future__ import annotations

import csv
from datetime import date, timedelta
from pathlib import Path

from programme.platform.quarters import Quarter
from tests.builders import csv_text, spell

SEED = Path(__file__).parents[1] / "data" / "rotherham-itc-quarterly-2021-2023.csv"
COLUMNS = [
    "agency",
    "reference",
    "received_on",
    "first_name",
    "last_name",
    "date_of_birth",
    "gender",
    "phone",
    "local_authority",
    "relationship",
    "risk_level",
    "prior_incidents",
    "on_probation_programme",
    "consent_given",
    "consent_obtained_on",
    "consent_method",
    "contacted_on",
    "engaged_on",
    "started_on",
    "completed_on",
]
AGENCIES = ["South Yorkshire Police", "Rotherham Children's Social Care", "Rotherham Early Help"]


def published() -> list[dict[str, str]]:
    with SEED.open(newline="") as handle:
        return list(csv.DictReader(handle))


def build_csv() -> str:
    table = [row for row in published() if row["quarter"] != "Total"]
    rows: list[dict[str, str]] = []
    engaged_pool: list[dict[str, str]] = []  # engaged, not yet started
    unengaged_pool: list[dict[str, str]] = []  # accepted, never engaged
    started_pool: list[dict[str, str]] = []  # started, not yet completed
    for entry in table:
        quarter = Quarter.parse(entry["quarter"])
        first = quarter.first_day
        received, engaging = int(entry["referrals"]), int(entry["engaging"])
        starting, completing = int(entry["started"]), int(entry["completed"])
        returned = min(received // 6, received - engaging)
        # Completions first: only people who started in an earlier quarter.
        for person in started_pool[:completing]:
            person["completed_on"] = (first + timedelta(days=85)).isoformat()
        del started_pool[:completing]
        new: list[dict[str, str]] = []
        for i in range(received):
            n = len(rows)
            day = first + timedelta(days=i % 45)
            row = {
                "agency": AGENCIES[n % len(AGENCIES)],
                "reference": f"RMBC-{n:05d}",
                "received_on": day.isoformat(),
                "first_name": "Seed" + spell(n, 4),
                "last_name": "Person",
                "date_of_birth": date(1970 + n % 30, 1 + n % 12, 1 + n % 28).isoformat(),
                "gender": "male" if n % 5 else "female",
                "phone": f"0114 496 {n:04d}",
                "local_authority": "Rotherham",
                "relationship": "partner",
                "risk_level": ("standard", "medium", "high")[n % 3],
                "prior_incidents": str(n % 4),
                "on_probation_programme": "no",
                "consent_given": "no" if i < returned else "yes",
                "consent_obtained_on": day.isoformat(),
                "consent_method": "verbal",
                "contacted_on": "",
                "engaged_on": "",
                "started_on": "",
                "completed_on": "",
            }
            rows.append(row)
            if i >= returned:
                new.append(row)
        for person in new[:engaging]:
            received_on = date.fromisoformat(person["received_on"])
            person["contacted_on"] = (received_on + timedelta(days=10)).isoformat()
            person["engaged_on"] = (received_on + timedelta(days=30)).isoformat()
        engaged_pool.extend(new[:engaging])
        unengaged_pool.extend(new[engaging:])
        for _ in range(starting):
            # A legacy record may show a start with no engagement date recorded.
            person = engaged_pool.pop(0) if engaged_pool else unengaged_pool.pop(0)
            person["started_on"] = (first + timedelta(days=80)).isoformat()
            started_pool.append(person)
    return csv_text(rows, COLUMNS)
