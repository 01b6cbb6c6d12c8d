"""No count under the threshold can be worked out by subtraction from what is published.

Primary suppression hides counts from 1 to 4; a total beside them would give one back
(14 referrals, 13 accepted: 1 returned). ``secondary_suppression`` withholds a second count
in every sum that would otherwise hold exactly one hidden count. Checked on the rule's own
textbook cases, on random tables shaped like the quarterly report (every sum the report
implies checked afresh, here, not with the rule's own list), and through the reports over
HTTP.

What this does not claim: a table by agency and the programme's own table are published
separately, each suppressed on its own. The rule takes the programme's quarters as known
(and withholds more for them), but where a group's count is pinned by the programme's
quarter and every count in the table that could be withheld beside it is itself known from
there, no withholding in this table can help. On 60 random tables dense with small counts
(below), combining the two tables still pinned 53 of 1,641 small counts; within one table,
none. Real tables have far fewer small counts."""

from __future__ import annotations

import random
from typing import Any

import pytest
from scipy.optimize import linprog

from analysis.proportions import WITHHELD, secondary_suppression
from analysis.services import COUNTED, GroupRates, QuarterlyReport, _rate, publish_quarterly
from programme.platform.tables import Role

COLUMNS = COUNTED[1:]


def test_one_small_part_takes_the_smallest_other_part_with_it():
    # 14 = 13 + 1: the 1 is small; 13 is the only other part, so it goes too.
    assert secondary_suppression([14, 13, 1], [(0, [1, 2])], 5) == {1}
    # 30 = 20 + 7 + 3: the 3 goes with the 7 (the smaller), the 20 and the total stay.
    assert secondary_suppression([30, 20, 7, 3], [(0, [1, 2, 3])], 5) == {2}


def test_zeros_are_never_chosen_and_the_total_goes_when_nothing_else_can():
    # 11 = 11 + 0, and 11 withheld elsewhere: the zero gives nothing away, the total would.
    counts = [11, 11, 0, 13, 2]
    sums = [(0, [1, 2]), (3, [1, 4])]
    assert secondary_suppression(counts, sums, 5) == {1, 0}


def test_two_hidden_counts_in_a_sum_need_nothing_more():
    assert secondary_suppression([5, 2, 3], [(0, [1, 2])], 5) == frozenset()
    assert secondary_suppression([9, 0, 9], [(0, [1, 2])], 5) == frozenset()


def test_a_total_published_elsewhere_counts_as_known():
    # The programme's quarter (not in this table) less the other agency gives the 2 away.
    assert secondary_suppression([2, 40], [(None, [0, 1])], 5) == {1}
    # With nothing else in the sum there is nothing to withhold: a sum of one part is the
    # part itself, published elsewhere already (so never a count under the threshold).
    assert secondary_suppression([7], [(None, [0])], 5) == frozenset()


def test_withholding_for_one_sum_spreads_to_the_next():
    # A 2x2 table with margins: hiding the 1 takes its row neighbour, which exposes its
    # column, which takes another, and so on until every row and column holds two.
    #   1  10 | 11
    #   8  20 | 28
    #   9  30 | 39
    a, b, c, d, r1, r2, c1, c2, t = range(9)
    counts = [1, 10, 8, 20, 11, 28, 9, 30, 39]
    sums = [(r1, [a, b]), (r2, [c, d]), (c1, [a, c]), (c2, [b, d]), (t, [r1, r2]), (t, [c1, c2])]
    hidden = secondary_suppression(counts, sums, 5) | {a}
    for total, parts in sums:
        assert len(hidden & {total, *parts}) != 1, (total, parts, hidden)
    assert hidden == {a, b, c, d}


def _random_report(rng: random.Random, by: str | None) -> QuarterlyReport:
    groups = [f"agency {g}" for g in range(rng.randint(1, 4))] if by else [None]
    quarters = [f"Q{q} 2026-27" for q in range(1, rng.randint(2, 5))]
    rows: list[dict[str, Any]] = []
    totals = []
    rates = []
    for group in groups:
        own = []
        for quarter in quarters:
            row: dict[str, Any] = {"quarter": quarter}
            if by:
                row[by] = group
            for column in COLUMNS[1:]:
                row[column] = rng.choice([0, 0, 1, 2, 3, 4, 5, 6, 9, 14, 30])
            row["referrals"] = row["accepted"] + row["returned"]
            row["reported"] = ""
            own.append(row)
        total = {"quarter": "Total", **({by: group} if by else {}), "reported": ""}
        for column in COLUMNS:
            total[column] = sum(r[column] for r in own)
        rows += [*own, total]
        totals.append(total)
        rates.append(
            GroupRates(str(group), _rate(total["completed"], total["started"]), _rate(0, 0))
        )
    if by:
        whole = {by: "All", "quarter": "Total", "reported": ""}
        for column in COLUMNS:
            whole[column] = sum(t[column] for t in totals)
        rows.append(whole)
    last = rows[-1]
    return QuarterlyReport(
        rows=rows,
        completion_rate=_rate(last["completed"], last["started"]),
        engagement_rate=_rate(0, 0),
        by=by,
        group_rates=rates if by else [],
    )


def _implied_sums(
    rows: list[dict[str, Any]], by: str | None, every_quarter: bool = False
) -> list[list[Any]]:
    """Every sum a reader can form from the table, written out afresh here: each cell as
    (row, column), a sum's total last. By group, each quarter's groups add up to the
    programme's quarter (a known number, from the report without a breakdown): listed
    with a ("programme", None) marker and the quarter first."""
    sums: list[list[Any]] = [
        [(r, "accepted"), (r, "returned"), (r, "referrals")] for r in range(len(rows))
    ]
    groups: dict[Any, list[int]] = {}
    for r, row in enumerate(rows):
        groups.setdefault(row.get(by) if by else None, []).append(r)
    for column in COLUMNS:
        for key, members in groups.items():
            if key == "All":
                continue
            sums.append([(m, column) for m in members])  # quarters, then their total
        if by:
            totals = [r for r, row in enumerate(rows) if row["quarter"] == "Total"]
            sums.append([(t, column) for t in totals])  # group totals, then the whole
            quarters = sorted({row["quarter"] for row in rows} - {"Total"})
            for quarter in quarters if every_quarter else ():
                members = [r for r, row in enumerate(rows) if row["quarter"] == quarter]
                if len(members) < 2:
                    # One group's quarter is the programme's own count, published in the
                    # report without a breakdown under the same sums.
                    continue
                sums.append(
                    [("programme", None), (quarter, column), *((r, column) for r in members)]
                )
    return sums


def _ranges(
    published: list[dict[str, Any]],
    raw: list[dict[str, Any]],
    by: str | None,
    with_programme: bool = False,
):
    """What a reader can work out of each '<5': its least and greatest value over every
    table consistent with what is published (the sums, '<5' meaning 1 to 4, '[c]' at least
    5, as the rule only withholds counts that are not small) and, by group, the
    programme's own quarters. Linear programming (the continuous relaxation)."""
    hidden = [(r, c) for r, row in enumerate(published) for c in COLUMNS if isinstance(row[c], str)]
    index = {cell: i for i, cell in enumerate(hidden)}
    rows_eq, rhs, rows_ub, ub = [], [], [], []
    for cells in _implied_sums(published, by, every_quarter=with_programme):
        total_known = None
        if cells and cells[0] == ("programme", None):
            # The programme's quarter, from the report without a breakdown: known exactly,
            # or only as '<5' when it is small there.
            cells = cells[2:]
            total_known = sum(raw[r][c] for r, c in cells)
        coefficient = [0.0] * len(hidden)
        constant = 0.0
        for n, (r, c) in enumerate(cells):
            # In-table sums list their total last: total - parts = 0.
            sign = 1.0 if total_known is not None or n < len(cells) - 1 else -1.0
            if (r, c) in index:
                coefficient[index[(r, c)]] += sign
            else:
                constant += sign * published[r][c]
        if not any(coefficient):
            continue
        if total_known is not None and 0 < total_known < 5:
            rows_ub += [coefficient, [-x for x in coefficient]]
            ub += [4 - constant, -(1 - constant)]
            continue
        rows_eq.append(coefficient)
        rhs.append((total_known or 0.0) - constant)
    bounds = [(1, 4) if published[r][c] == "<5" else (5, None) for r, c in hidden]
    out = {}
    for cell in hidden:
        if published[cell[0]][cell[1]] != "<5":
            continue
        objective = [0.0] * len(hidden)
        objective[index[cell]] = 1.0
        given = {
            "A_eq": rows_eq or None,
            "b_eq": rhs or None,
            "A_ub": rows_ub or None,
            "b_ub": ub or None,
            "bounds": bounds,
        }
        low = linprog(objective, **given)
        high = linprog([-x for x in objective], **given)
        assert low.status == 0 and high.status == 0, (low.message, high.message)
        out[cell] = (low.fun, -high.fun)
    return out


@pytest.mark.parametrize("by", [None, "agency"])
def test_no_small_count_can_be_worked_out_from_a_random_quarterly_table(by):
    rng = random.Random(20261127)
    for _ in range(60 if by else 100):
        report = _random_report(rng, by)
        published = publish_quarterly(report, 5)
        for raw, shown in zip(report.rows, published.rows, strict=True):
            for column in COLUMNS:
                value = raw[column]
                if 0 < value < 5:
                    assert shown[column] == "<5"
                else:
                    assert shown[column] in (value, WITHHELD)
        for cell, (low, high) in _ranges(published.rows, report.rows, by).items():
            assert high - low >= 1 - 1e-9, (cell, low, high, published.rows)
        # A rate never gives a withheld count back.
        for rate in (
            published.completion_rate,
            *(g.completion_rate for g in published.group_rates),
        ):
            if rate.rate is not None:
                assert isinstance(rate.numerator, int) and isinstance(rate.denominator, int)


@pytest.mark.anyio
async def test_victim_feedback_withholds_a_quarter_that_would_give_a_small_one_away(
    client, sign_in
):
    from tests.outcomes.test_feedback_report import victims_with_feedback

    await victims_with_feedback(client, sign_in, ["stopped"] * 7, "2026-07-10", n=0)
    await victims_with_feedback(client, sign_in, ["stopped", "same"], "2026-10-10", n=1)
    monitor = await sign_in(Role.monitor, "mona")
    body = (
        await client.get(
            "/reports/victim-feedback",
            params={"from": "Q2 2026-27", "to": "Q3 2026-27"},
            headers=monitor,
        )
    ).json()
    cells = {c["quarter"]: c for c in body["rows"]}
    # 9 responses in all less Q2's 7 would give Q3's 2 away: Q2's 7 is withheld too.
    assert body["total_responded"] == 9
    assert (cells["Q2 2026-27"]["responded"], cells["Q3 2026-27"]["responded"]) == ("[c]", "<5")
    assert cells["Q2 2026-27"]["share"] is None
    assert any("'[c]'" in note for note in body["notes"])
