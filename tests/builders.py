"""What the tests build their data with: bodies, CSV files, the console script.

Plain values and functions, no fixtures (those live in the conftest.py files),
and nothing here touches the database, so the rules' unit tests can use the
same good referral as the HTTP tests without starting PostgreSQL.
"""

from __future__ import annotations

import csv
import functools
import io
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from programme.platform.accounts.schemas import Principal

if TYPE_CHECKING:
    import httpx

PASSWORD = "a perfectly long test password"

INSPIRE = str(Path(sys.executable).parent / "inspire")
"""The console script, run as a user runs it: in its own process."""


def inspire(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [INSPIRE, *args], input=stdin, capture_output=True, text=True, timeout=300, env=env
    )


def run_import(
    tmp_path: Path,
    kind: str,
    text: str,
    *extra: str,
    env: dict[str, str] | None = None,
    create_agencies: bool = True,
) -> subprocess.CompletedProcess[str]:
    """``inspire import <kind>`` (referrals, reoffending) of ``text`` saved as a file.

    Referrals files add the agencies they name (``--create-agencies``) unless told not
    to: most tests start from an empty database, where every agency is new.
    """
    path = tmp_path / f"{kind}.csv"
    path.write_text(text)
    if kind == "referrals" and create_agencies:
        extra = ("--create-agencies", *extra)
    return inspire("import", kind, str(path), *extra, env=env)


NEW_SIGNING_KEY = "a new signing key, as after a leak, 0123456789"
"""An ``INSPIRE_SECRET_KEY`` that no test starts with."""


async def log_in(http: httpx.AsyncClient, username: str) -> dict[str, str]:
    """Bearer headers from ``POST /auth/login``, for an account made with ``sign_in``."""
    response = await http.post("/auth/login", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


# Ofcom's drama numbers for Sheffield (0114 496 0000-0999): valid, never anyone's.
PHONE = "0114 496 0123"
PHONE_E164 = "+441144960123"
ADMIN = Principal(id=None, username="test-setup", role="system")


@functools.cache
def password_hash() -> str:
    """PASSWORD hashed once: argon2 is slow on purpose, and tests make many accounts."""
    from programme.platform.accounts.passwords import hash_password

    return hash_password(PASSWORD)


SignIn = Callable[..., Awaitable[dict[str, str]]]
"""The ``sign_in`` fixture: ``await sign_in(role, username=None, agency=None)`` -> headers."""

MakeReferrals = Callable[..., Awaitable[list[str]]]
"""The ``make_referrals`` fixture: ``await make_referrals(count, status=...)`` -> ids."""


def good_referral(**overrides: Any) -> dict[str, Any]:
    """A referral that passes every check; override fields to break one."""
    body: dict[str, Any] = {
        "received_on": "2026-10-01",
        "first_name": "Jordan",
        "last_name": "Testperson",
        "date_of_birth": "1990-05-17",
        "gender": "male",
        "phone": PHONE,
        "local_authority": "Rotherham",
        "relationship": "partner",
        "risk_level": "medium",
        "prior_incidents": 2,
        "substance_misuse": False,
        "mental_health": True,
        "children_in_household": True,
        "on_probation_programme": False,
        "consent_given": True,
        "consent_obtained_on": "2026-09-30",
        "consent_method": "verbal",
        "notes": "Agreed to a call on weekday mornings.",
    }
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not ...}


def spell(n: int, width: int = 1) -> str:
    """``n`` in letters, a for 0 to j for 9, zero-padded to ``width`` digits.

    People are matched on the letters of their names only, so a number in a
    name must be spelt to keep people distinct.
    """
    return "".join("abcdefghij"[int(digit)] for digit in f"{n:0{width}d}")


def distinct_referral(n: int, **overrides: Any) -> dict[str, Any]:
    """A good referral of the n-th distinct person (0 <= n < 1000)."""
    return good_referral(
        **{
            "first_name": f"Person{spell(n)}",
            "last_name": "Example",
            "date_of_birth": f"{1960 + n % 40}-03-{1 + n % 28:02d}",
            "phone": f"0114 496 0{n:03d}",
            **overrides,
        }
    )


def csv_text(rows: list[dict], columns: list[str] | None = None) -> str:
    """Rows as a CSV file's text; the columns are every key, in first-seen order."""
    columns = columns or list(dict.fromkeys(key for row in rows for key in row))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: "" if value is None else value for key, value in row.items()})
    return out.getvalue()


def csv_row(agency: str = "South Yorkshire Police", **overrides: Any) -> dict[str, Any]:
    """A good referral as a row of a referrals import file (yes/no for true/false)."""
    values = good_referral(**overrides)
    values = {k: ("yes" if v is True else "no" if v is False else v) for k, v in values.items()}
    return {"agency": agency, **values}


def csv_person(n: int, **overrides: Any) -> dict[str, Any]:
    """An import row of a distinct person per n (0 <= n < 26)."""
    distinct = {
        "first_name": f"Person{chr(65 + n)}",
        "last_name": "Imported",
        "date_of_birth": f"19{70 + n}-01-15",
        "phone": f"0114 496 0{n:03d}",
    }
    return csv_row(**(distinct | overrides))


VICTIM = {
    "first_name": "Verity",
    "last_name": "Survivorson",
    "phone": "0114 496 0888",
    "relationship": "partner",
    "consent_to_contact": True,
    "consent_obtained_on": "2026-09-29",
}
"""A consenting victim, as a referrer names them."""

VICTIM_TRACES = ("Verity", "Survivorson", "4960888", "496 0888")
"""Strings that would give VICTIM away wherever they appeared."""
