"""The data cut-off: follow-up ends where the police data does, not today.

Each incident import records the day its extract was taken; the analysis follows
people to the latest extract unless asked otherwise, and warns when asked past it:
days with no police data would count as offence-free.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from analysis.rules import data_cut_off
from outcomes.tables import IncidentExtract, Reoffence
from programme.imports.rules import extract_date
from programme.platform.clock import today
from programme.platform.errors import InvalidInput
from programme.platform.tables import Role
from tests.builders import csv_person, csv_text, inspire, run_import

pytestmark = pytest.mark.anyio

EXTRACT = "2025-10-01"
EARLY, LATE = date(2025, 1, 6), date(2025, 9, 1)


def referrals() -> str:
    """12 people referred in January 2025, 12 in September: the latter have about 30
    days of police data by the extract, and far more by today."""
    rows = []
    for n in range(24):
        received = EARLY + timedelta(days=n) if n < 12 else LATE + timedelta(days=n - 12)
        rows.append(
            csv_person(
                n,
                reference=f"CUT-{n:03d}",
                received_on=received.isoformat(),
                consent_obtained_on=received.isoformat(),
            )
        )
    return csv_text(rows)


def incidents() -> str:
    """Half the January people reoffend on day 100; nobody else does."""
    lines = ["reference,offence_date"]
    for n in range(6):
        lines.append(f"CUT-{n:03d},{(EARLY + timedelta(days=n + 100)).isoformat()}")
    return "\n".join(lines) + "\n"


LATEST_OFFENCE = (EARLY + timedelta(days=105)).isoformat()


@pytest.fixture
async def admin(client, sign_in):
    headers = await sign_in(Role.admin, "ada")
    response = await client.post(
        "/imports/referrals?create_agencies=true", content=referrals(), headers=headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["imported"] == 24
    return headers


async def import_incidents(client, headers, text: str, **params: str):
    return await client.post("/imports/reoffending", content=text, params=params, headers=headers)


async def analyse(client, headers, **params: str) -> dict:
    response = await client.get("/analysis/reoffending", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_the_cut_off_defaults_to_the_latest_extract_not_today(client, admin, sign_in):
    imported = await import_incidents(client, admin, incidents(), extracted_on=EXTRACT)
    assert imported.status_code == 200, imported.text
    assert imported.json()["extracted_on"] == EXTRACT
    monitor = await sign_in(Role.monitor, "mo")
    default = await analyse(client, monitor)
    assert default["as_of"] == default["latest_extract"] == EXTRACT
    assert default["warnings"] == []
    assert any(EXTRACT in note and "latest police extract" in note for note in default["notes"])
    # Only the January people are still followed on day 100: 6 of 12 reoffend.
    assert default["groups"][0]["survival"] == pytest.approx(0.5)
    # To today, the September people add months with no police data, counted offence-free.
    to_today = await analyse(client, monitor, as_of=today().isoformat())
    assert to_today["groups"][0]["survival"] == pytest.approx(0.75)
    assert to_today["as_of"] == today().isoformat()
    (warning,) = to_today["warnings"]
    assert f"after the latest police extract ({EXTRACT})" in warning
    assert "offence-free" in warning


async def test_a_cut_off_up_to_the_extract_is_not_warned_about(client, admin, sign_in):
    await import_incidents(client, admin, incidents(), extracted_on=EXTRACT)
    monitor = await sign_in(Role.monitor, "mo")
    earlier = await analyse(client, monitor, as_of="2025-09-15")
    assert earlier["as_of"] == "2025-09-15" and earlier["warnings"] == []
    on_the_day = await analyse(client, monitor, as_of=EXTRACT)
    assert on_the_day["warnings"] == []
    assert on_the_day["groups"] == (await analyse(client, monitor))["groups"]


async def test_the_latest_of_the_extracts_is_the_cut_off(client, admin, sign_in):
    await import_incidents(client, admin, incidents(), extracted_on="2025-12-01")
    # An older extract imported afterwards (a late correction) does not pull it back.
    older = "reference,offence_date\nCUT-013,2025-09-20\n"
    assert (await import_incidents(client, admin, older, extracted_on=EXTRACT)).status_code == 200
    monitor = await sign_in(Role.monitor, "mo")
    assert (await analyse(client, monitor))["as_of"] == "2025-12-01"
    assert await IncidentExtract.count() == 2


async def test_unstated_the_extract_is_the_latest_offence_date_in_the_file(client, admin):
    imported = await import_incidents(client, admin, incidents())
    assert imported.json()["extracted_on"] == LATEST_OFFENCE
    stored = await IncidentExtract.select(
        IncidentExtract.extracted_on, IncidentExtract.stated, IncidentExtract.incidents
    )
    assert stored == [{"extracted_on": date.fromisoformat(LATEST_OFFENCE), "stated": False,
                       "incidents": 6}]  # fmt: skip


@pytest.mark.parametrize(
    ("extracted_on", "says"),
    [
        ("2025-02-30", "date"),
        ("yesterday", "date"),
        ((today() + timedelta(days=1)).isoformat(), "future"),
        ("2025-04-01", f"incident on {LATEST_OFFENCE}"),
    ],
)
async def test_a_bad_extract_date_is_a_422_naming_the_field(client, admin, extracted_on, says):
    refused = await import_incidents(client, admin, incidents(), extracted_on=extracted_on)
    assert refused.status_code == 422, refused.text
    problems = refused.json()["errors"]
    assert [p["field"] for p in problems] == ["extracted_on"]
    assert says in problems[0]["message"].lower() or says in problems[0]["message"]
    assert await Reoffence.count() == 0 and await IncidentExtract.count() == 0


async def test_with_no_extract_recorded_the_cut_off_is_today_with_a_warning(client, admin, sign_in):
    monitor = await sign_in(Role.monitor, "mo")
    result = await analyse(client, monitor)
    assert result["as_of"] == today().isoformat() and result["latest_extract"] is None
    (warning,) = result["warnings"]
    assert "No police extract date is recorded" in warning


async def test_the_command_line_records_the_extract_and_warns_past_it(tmp_path, admin):
    bad = run_import(tmp_path, "reoffending", incidents(), "--extracted-on", "2025-13-01")
    assert bad.returncode != 0 and "--extracted-on" in bad.stderr
    early = run_import(tmp_path, "reoffending", incidents(), "--extracted-on", "2025-01-01")
    assert early.returncode == 1 and "extracted_on" in early.stderr
    done = run_import(tmp_path, "reoffending", incidents(), "--extracted-on", EXTRACT)
    assert done.returncode == 0, done.stderr
    assert f"extract taken on {EXTRACT}" in done.stdout
    past = inspire("analyse", "reoffending", "--as-of", "2026-01-01")
    assert past.returncode == 0, past.stderr
    warned = (
        f"warning: The data cut-off (2026-01-01) is after the latest police extract ({EXTRACT})"
    )
    assert warned in past.stderr
    default = inspire("analyse", "reoffending", "--format", "json")
    assert default.returncode == 0 and '"as_of":"2025-10-01"' in default.stdout.replace(" ", "")
    assert "warning" not in default.stderr


def test_the_cut_off_rule():
    today_ = date(2026, 11, 27)
    extract = date(2026, 9, 30)
    assert data_cut_off(None, extract, today_).as_of == extract
    assert data_cut_off(None, extract, today_).warnings == ()
    assert data_cut_off(date(2026, 6, 30), extract, today_).warnings == ()
    later = data_cut_off(date(2026, 10, 31), extract, today_)
    assert later.as_of == date(2026, 10, 31)
    assert "the 31 days between have no police data" in later.warnings[0]
    none = data_cut_off(None, None, today_)
    assert none.as_of == today_ and none.latest_extract is None and none.warnings


def test_the_extract_date_rule():
    offences = [date(2026, 1, 5), date(2026, 3, 1)]
    today_ = date(2026, 11, 27)
    assert extract_date(offences, None, today_) == (date(2026, 3, 1), False)
    assert extract_date([], None, today_) == (None, False)
    assert extract_date([], date(2026, 4, 1), today_) == (date(2026, 4, 1), True)
    assert extract_date(offences, date(2026, 3, 1), today_) == (date(2026, 3, 1), True)
    for bad in (date(2026, 2, 1), date(2026, 11, 28)):
        with pytest.raises(InvalidInput) as refused:
            extract_date(offences, bad, today_)
        assert [e.field for e in refused.value.errors] == ["extracted_on"]
