"""CSV files no import can store: a NUL character, a cell too long to be a real one,
bytes that are not UTF-8. Over HTTP and from the command line alike, each is a
problem with its line number, never a 500 or a traceback, and a cell the reader
could not finish never turns into rows of its own."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from programme.imports.rules import MAX_CELL
from programme.platform.tables import Role
from referrals.tables import Referral
from tests.builders import distinct_referral, inspire

pytestmark = pytest.mark.anyio

INCIDENTS_HEADER = "reference,offence_date\n"


def referral_line(n: int, **overrides: str) -> str:
    """One CSV line of the n-th distinct person's referral, notes last."""
    values = distinct_referral(n, **overrides)
    values = {k: "yes" if v is True else "no" if v is False else v for k, v in values.items()}
    row = {"agency": "South Yorkshire Police", **values}
    notes = row.pop("notes")
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow([*row.values(), notes])
    return out.getvalue()


def referrals_header() -> str:
    values = distinct_referral(0)
    names = ["agency", *(k for k in values if k != "notes"), "notes"]
    return ",".join(names) + "\n"


def run(tmp_path: Path, kind: str, content: bytes, *extra: str):
    path = tmp_path / f"{kind}.csv"
    path.write_bytes(content)
    return inspire("import", kind, str(path), *extra)


@pytest.fixture
async def admin(sign_in):
    return await sign_in(Role.admin, "alice")


def lines_of(report: dict) -> list[tuple[int, str]]:
    return [(e["line"], e["code"]) for e in report["errors"]]


@pytest.mark.parametrize(
    ("kind", "content", "line", "words"),
    [
        ("referrals", (referrals_header() + referral_line(1) + "x\x00y\n").encode(), 3, "NUL"),
        ("reoffending", (INCIDENTS_HEADER + "SYP-1,2026-10-01\nSYP-\x002,2026-10-01\n").encode(),
         3, "NUL"),
        ("referrals", referrals_header().encode() + referral_line(1).encode("latin-1")
         + "Jos\u00e9\n".encode("latin-1"), 1, "not UTF-8"),
        ("referrals", ("x" * (MAX_CELL + 1) + "," + referrals_header()).encode(), 1,
         f"longer than {MAX_CELL}"),
        ("reoffending", (INCIDENTS_HEADER + "SYP-1," + "9" * (MAX_CELL + 1) + "\n").encode(), 2,
         f"longer than {MAX_CELL}"),
    ],
    ids=["NUL in a referral", "NUL in an incident", "not UTF-8", "long header cell",
         "long incident cell"],
)  # fmt: skip
async def test_a_file_no_import_can_store_is_refused_with_its_line(
    client, admin, tmp_path, kind, content, line, words
):
    response = await client.post(f"/imports/{kind}", content=content, headers=admin)
    assert response.status_code == 422, response.text
    report = response.json()
    assert report["imported"] == 0
    assert lines_of(report) == [(line, "invalid")]
    assert words in report["errors"][0]["message"]

    result = run(tmp_path, kind, content)
    assert result.returncode == 1, result.stderr
    assert f"error: line {line}: " in result.stderr
    assert words in result.stderr
    assert "Traceback" not in result.stderr
    assert await Referral.count() == 0


async def test_an_over_long_cell_refuses_its_line_and_the_others_still_import(
    client, admin, tmp_path
):
    content = (
        referrals_header()
        + referral_line(1)
        + referral_line(2, notes="n" * (MAX_CELL + 1))
        + referral_line(3)
    ).encode()
    refused = await client.post(
        "/imports/referrals?create_agencies=true", content=content, headers=admin
    )
    assert refused.status_code == 422, refused.text
    assert lines_of(refused.json()) == [(3, "invalid")]

    result = run(tmp_path, "referrals", content, "--skip-invalid", "--create-agencies")
    assert result.returncode == 0, result.stderr
    assert "error: line 3: " in result.stderr
    assert "imported 2," in result.stdout
    assert await Referral.count() == 2


async def test_an_over_long_quoted_cell_never_becomes_rows_of_its_own(client, admin):
    """What a quoted cell holds stays in it, even a line that reads as a referral."""
    hidden = referral_line(2).strip()
    long_notes = "n" * MAX_CELL + "\n" + hidden + "\nend of the notes"
    content = (referrals_header() + referral_line(1) + referral_line(3, notes=long_notes)).encode()
    response = await client.post(
        "/imports/referrals",
        params={"skip_invalid": "true", "create_agencies": "true"},
        content=content,
        headers=admin,
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert lines_of(report) == [(3, "invalid")]  # the cell's row, lines 3 to 5
    assert report["imported"] == 1
    assert await Referral.count() == 1
    assert [
        r["first_name"]
        for r in await Referral.select(Referral.person.first_name.as_alias("first_name"))
    ] == [distinct_referral(1)["first_name"]]
