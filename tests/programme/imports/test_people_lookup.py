"""An import finds the people already stored, by match key or by birth date and phone, and
does it with joins: never by comparing each stored person with every row of the file.

bench/loop_responsiveness.py found the second: ``match_key = ANY($1) OR phone =
ANY($2)`` made PostgreSQL compare every stored person with every key and phone of
the file, and a 200,000-row file against 100,000 stored people ran for minutes.
"""

from __future__ import annotations

import pytest

from programme.imports import queries
from programme.platform import database
from referrals.tables import Person, Referral
from tests.builders import csv_person, csv_text, run_import

pytestmark = pytest.mark.anyio

ENDED = {"received_on": "2026-06-01", "consent_obtained_on": "2026-06-01",
         "disengaged_on": "2026-07-01"}  # fmt: skip
AGAIN = {"received_on": "2026-10-05", "consent_obtained_on": "2026-10-05"}


def _import(tmp_path, name: str, rows: list[dict]) -> None:
    folder = tmp_path / name
    folder.mkdir()
    result = run_import(folder, "referrals", csv_text(rows))
    assert result.returncode == 0, result.stderr


async def test_a_person_stored_by_an_earlier_import_is_found_by_name_and_birth_date(
    tmp_path, clean_database
):
    _import(tmp_path, "first", [csv_person(1, **ENDED), csv_person(2)])
    _import(tmp_path, "second", [csv_person(1, **AGAIN), csv_person(3)])
    assert await Referral.count() == 4
    assert await Person.count() == 3


async def test_a_person_stored_earlier_is_found_by_birth_date_and_phone_under_another_name(
    tmp_path, clean_database
):
    _import(tmp_path, "first", [csv_person(1, **ENDED)])
    _import(tmp_path, "second", [csv_person(1, last_name="Married-Name", **AGAIN)])
    assert await Referral.count() == 2
    assert await Person.count() == 1


@pytest.mark.parametrize("mode", ["force_custom_plan", "force_generic_plan"])
async def test_the_look_up_never_checks_each_stored_person_against_the_whole_file(
    app, clean_database, mode
):
    keys = [f"key {n}" for n in range(5_000)]
    phones = [f"+44114496{n:04d}" for n in range(5_000)]
    async with database.connection() as connection:
        await connection.execute(f"SET LOCAL plan_cache_mode = {mode}")
        statement = await connection.prepare(queries.PEOPLE_BY_KEY_OR_PHONE)
        plan = await statement.explain(keys, phones)
        assert await statement.fetch(keys, phones) == []

    def filters(node: dict) -> list[str]:
        own = [node["Filter"]] if "Filter" in node else []
        return own + [f for child in node.get("Plans", []) for f in filters(child)]

    # A filter "= ANY (array)" on a scan of person is the comparison with every element.
    assert not [f for f in filters(plan[0]["Plan"]) if "ANY" in f]
