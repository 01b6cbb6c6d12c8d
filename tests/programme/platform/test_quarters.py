"""UK financial quarters: Q1 April-June ... Q4 January-March."""

from __future__ import annotations

from datetime import date

import asyncpg
import pytest

from programme.platform import database
from programme.platform.quarters import Quarter, quarter_sql, quarters_between


@pytest.mark.parametrize(
    ("day", "label"),
    [
        (date(2021, 10, 1), "Q3 2021-22"),
        (date(2021, 12, 31), "Q3 2021-22"),
        (date(2022, 1, 1), "Q4 2021-22"),
        (date(2022, 3, 31), "Q4 2021-22"),
        (date(2022, 4, 1), "Q1 2022-23"),
        (date(2022, 9, 30), "Q2 2022-23"),
        (date(2099, 12, 1), "Q3 2099-00"),
    ],
)
def test_a_day_falls_in_its_financial_quarter(day, label):
    assert Quarter.of(day).label == label
    assert Quarter.parse(label) == Quarter.of(day)
    assert Quarter.of(day).first_day <= day <= Quarter.of(day).last_day


def test_previous_and_next_cross_the_financial_year():
    q1 = Quarter.parse("Q1 2022-23")
    assert q1.previous().label == "Q4 2021-22"
    assert q1.previous().next() == q1
    assert Quarter.parse("Q4 2021-22").previous().label == "Q3 2021-22"


def test_quarter_boundaries():
    q = Quarter.parse("Q4 2021-22")
    assert (q.first_day, q.last_day) == (date(2022, 1, 1), date(2022, 3, 31))
    assert Quarter.parse("Q3 2021-22").last_day == date(2021, 12, 31)


def test_the_seed_tables_range_has_eight_quarters():
    labels = [
        q.label for q in quarters_between(Quarter.parse("Q3 2021-22"), Quarter.parse("Q2 2023-24"))
    ]
    assert labels == [
        "Q3 2021-22",
        "Q4 2021-22",
        "Q1 2022-23",
        "Q2 2022-23",
        "Q3 2022-23",
        "Q4 2022-23",
        "Q1 2023-24",
        "Q2 2023-24",
    ]


@pytest.mark.parametrize("label", ["Q5 2021-22", "Q3 2021-23", "2021 Q3", ""])
def test_a_bad_label_is_refused_in_plain_words(label):
    with pytest.raises(ValueError, match=r"quarter|financial year"):
        Quarter.parse(label)


def test_a_backwards_range_is_refused():
    with pytest.raises(ValueError, match="before"):
        quarters_between(Quarter.parse("Q2 2023-24"), Quarter.parse("Q3 2021-22"))


@pytest.mark.anyio
async def test_the_sql_expression_agrees_with_python_on_every_day_of_two_years():
    connection = await asyncpg.connect(**database.engine().config)
    try:
        rows = await connection.fetch(
            f"SELECT d::date AS day, {quarter_sql('d::date')} AS label"
            " FROM generate_series('2021-01-01'::date, '2022-12-31'::date, '1 day') d"
        )
    finally:
        await connection.close()
    assert all(row["label"] == Quarter.of(row["day"]).label for row in rows)
    assert len(rows) == 730
