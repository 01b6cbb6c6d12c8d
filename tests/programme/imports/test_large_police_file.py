"""A police file as large as a force sends: 100,000 incidents, every one matching a referral.

It used to fail: one bind parameter per row passed PostgreSQL's limit of
32,767, and the error was answered as a database outage (503, Retry-After),
or from the command line as ``failed (InterfaceError)`` from about 7,300 rows.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from outcomes.tables import Reoffence
from programme.platform.tables import Role
from referrals.tables import Referral
from tests.builders import csv_row, csv_text, run_import, spell

pytestmark = pytest.mark.anyio

ROWS = 100_000
START = date(2025, 1, 1)


def _referrals() -> str:
    rows = []
    for n in range(ROWS):
        received = START + timedelta(days=n % 300)
        rows.append(
            csv_row(
                reference=f"BULK-{n:06d}",
                received_on=received.isoformat(),
                consent_obtained_on=received.isoformat(),
                first_name="Bulk" + spell(n, 6),
                last_name="Person",
                date_of_birth=(date(1960, 1, 1) + timedelta(days=n % 14_000)).isoformat(),
                phone=f"07400 {n:06d}",
            )
        )
    return csv_text(rows)


def _incidents() -> str:
    lines = ["reference,offence_date,offence_type"]
    for n in range(ROWS):
        offence = START + timedelta(days=n % 300 + 30)
        lines.append(f"BULK-{n:06d},{offence.isoformat()},assault")
    return "\n".join(lines) + "\n"


async def test_a_hundred_thousand_matching_incidents_import_by_cli_and_again_by_http(
    tmp_path, client, sign_in
):
    referrals = run_import(tmp_path, "referrals", _referrals())
    assert referrals.returncode == 0, referrals.stderr
    assert await Referral.count() == ROWS

    text = _incidents()
    first = run_import(tmp_path, "reoffending", text)
    assert first.returncode == 0, first.stderr
    assert "imported 100000" in first.stdout
    assert await Reoffence.count() == ROWS

    admin = await sign_in(Role.admin, "alice")
    again = await client.post(
        "/imports/reoffending", content=text.encode(), headers=admin, timeout=600
    )
    assert again.status_code == 200, again.text[:500]
    report = again.json()
    assert (report["imported"], report["already_present"], report["refused"]) == (0, ROWS, 0)
    assert report["errors"] == []
    assert await Reoffence.count() == ROWS
