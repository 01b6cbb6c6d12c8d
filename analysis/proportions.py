"""Proportions with Wilson score intervals, and small-number suppression."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import highspy
import numpy as np
from scipy.sparse import csc_matrix
from scipy.stats import binomtest


def _first_highs_quietly() -> None:
    """HiGHS prints its banner on standard output when the process makes its first solver,
    whatever the options; at the command line that would land inside a report written to
    standard output. So the first one is made here, at import, with standard output shut."""
    sys.stdout.flush()
    saved = os.dup(1)
    sink = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(sink, 1)
        highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(sink)


_first_highs_quietly()


@dataclass(frozen=True)
class Proportion:
    successes: int
    trials: int
    share: float
    ci_low: float
    ci_high: float
    confidence: float


def wilson(successes: int, trials: int, confidence: float = 0.95) -> Proportion:
    """``successes / trials`` with its Wilson score interval (Wilson 1927; Newcombe 1998).

    The Wilson interval stays inside [0, 1] and behaves well for small counts
    and shares near 0 or 1, where the textbook Wald interval does not.
    """
    if trials <= 0:
        raise ValueError("a proportion needs at least one trial")
    if not 0 <= successes <= trials:
        raise ValueError(f"successes ({successes}) must be between 0 and trials ({trials})")
    if not 0 < confidence < 1:
        raise ValueError("confidence must be between 0 and 1, e.g. 0.95")
    interval = binomtest(successes, trials).proportion_ci(
        confidence_level=confidence, method="wilson"
    )
    return Proportion(
        successes=successes,
        trials=trials,
        share=successes / trials,
        ci_low=float(interval.low),
        ci_high=float(interval.high),
        confidence=confidence,
    )


def suppressed(count: int, threshold: int) -> int | str:
    """A count as published: '<threshold' for 1..threshold-1, so no one is identifiable."""
    return f"<{threshold}" if 0 < count < threshold else count


def is_small(count: int, threshold: int) -> bool:
    return 0 < count < threshold


WITHHELD = "[c]"
"""A count withheld though it is not small, so that a small one cannot be worked out by
subtracting the rest of a sum from its total (secondary suppression; ONS's mark for a
confidential cell)."""


def _cells(total: int | None, parts: Sequence[int]) -> tuple[int, ...]:
    """A sum's counts: its parts, and its total when it is in the table."""
    return (*parts, *(() if total is None else (total,)))


def secondary_suppression(
    counts: Sequence[int], sums: Sequence[tuple[int | None, Sequence[int]]], threshold: int
) -> frozenset[int]:
    """The counts (by position) to withhold beside the small ones, so none can be recovered.

    Each of ``sums`` says ``counts[total] == sum(counts[part] for part in parts)``: a
    quarter's referrals are its accepted plus its returned; a year's total is its quarters'.
    A total of None is published elsewhere (the programme's quarter, beside a table by
    agency) and is always known. A sum with exactly one withheld count gives that count away
    by subtraction, so a second is withheld: the smallest non-zero part still shown (the
    least information lost), else the total. A count withheld for one sum can expose
    another, so the sums are gone over again until none holds exactly one. Zeros are shown
    and never chosen: a zero reveals no one; nor is the only non-zero part of a sum whose
    total is published elsewhere, known from there. Returns the secondary positions only;
    the small ones (``is_small``) are the primary suppression.
    """
    # A sum of one part whose total is published elsewhere is that table's own count,
    # withheld there by the same sums: it ties nothing here.
    sums = [(total, parts) for total, parts in sums if total is not None or len(parts) > 1]
    withheld = {i for i, count in enumerate(counts) if is_small(count, threshold)}
    primary = frozenset(withheld)
    # The only non-zero part of a sum published elsewhere is known from there: withholding
    # it here would hide nothing, so it is never the second count.
    known = set()
    for total, parts in sums:
        nonzero = [i for i in parts if counts[i]]
        if total is None and len(nonzero) == 1:
            known.add(nonzero[0])

    def pinned(total: int | None, parts: Sequence[int]) -> bool:
        """Whether a small count withheld in this sum is still worked out exactly: the
        withheld ones add up to what the rest leaves, a small one lies from 1 to
        threshold - 1 and any other withheld one is at least the threshold, so (1, 1, 1)
        with 9 shown out of 12 gives each 1 away, as would (1, [c]) where [c] is 5."""
        hidden = [i for i in _cells(total, parts) if i in withheld]
        if total is None and is_small(sum(counts[i] for i in parts), threshold):
            return False  # the other table shows its total only as small: checked below
        if len(hidden) == 1:
            return True
        if not any(i in primary for i in hidden) or total in hidden:
            return False  # nothing small here, or a withheld total leaves no bound above
        left = sum(counts[i] for i in hidden)  # what the shown counts leave the withheld
        for cell in hidden:
            if cell not in primary:
                continue
            others = [i for i in hidden if i != cell]
            lowest = sum(1 if i in primary else threshold for i in others)
            highest = (
                sum(threshold - 1 for i in others) if all(i in primary for i in others) else None
            )
            low = 1 if highest is None else max(1, left - highest)
            high = min(threshold - 1, left - lowest)
            if high <= low:
                return True
        return False

    def add_beside(total: int | None, parts: Sequence[int]) -> bool:
        shown = sorted(
            (counts[i], n)
            for n, i in enumerate(parts)
            if i not in withheld and i not in known and counts[i]
        )
        if shown:
            withheld.add(parts[shown[0][1]])
        elif total is not None and total not in withheld and total not in known and counts[total]:
            withheld.add(total)
        else:
            return False
        return True

    def sums_of(cell: int) -> list[tuple[int | None, Sequence[int]]]:
        return [(t, ps) for t, ps in sums if cell in _cells(t, ps)]

    for _ in range(len(counts) + 1):
        changed = True
        while changed:
            changed = False
            for total, parts in sums:
                if withheld.intersection(_cells(total, parts)) and pinned(total, parts):
                    changed = add_beside(total, parts) or changed
        # Sums interlock (a quarter's row and its column), so what one sum leaves open
        # another can close: every withheld count is checked against all of them at once.
        exposed = _pinned_by_all(counts, sums, withheld, primary, threshold)
        if not exposed:
            break
        # Which second counts give the pinned small ones away (checked only now: it costs).
        exposed |= _pinned_by_all(counts, sums, withheld, primary, threshold, exposed)
        # A withheld count worked out exactly protects nothing: widen one of its sums,
        # the second counts first (their rows give them back), then the small ones'.
        grew = False
        for cell in sorted(exposed, key=lambda i: (i in primary, i)):
            grew = any(add_beside(total, parts) for total, parts in sums_of(cell)) or grew
        # Their own sums have nothing left to withhold: what pins them is further off, so
        # the next sum holding a withheld count is widened, until nothing is pinned.
        grew = grew or any(
            add_beside(total, parts)
            for total, parts in sums
            if withheld.intersection(_cells(total, parts))
        )
        if not grew:
            break
    return frozenset(withheld - primary)


@dataclass(frozen=True)
class RateRatio:
    """Incidents after over incidents before, in windows of equal length."""

    after: int
    before: int
    ratio: float
    ci_low: float
    ci_high: float | None
    """None when no incident came before: the ratio has no upper bound."""


def rate_ratio(after: int, before: int, confidence: float = 0.95) -> RateRatio | None:
    """The incident rate ratio after/before with its exact (conditional binomial) interval.

    Given a + b incidents in two equal windows, the number after is binomial with
    p = IRR / (1 + IRR) (R's ``poisson.test`` of two counts); the Clopper-Pearson interval
    for p maps to one for the ratio. None with no incidents at all, or none before.
    """
    if after < 0 or before < 0:
        raise ValueError("incident counts cannot be negative")
    if before == 0:
        return None
    interval = binomtest(after, after + before).proportion_ci(
        confidence_level=confidence, method="exact"
    )
    high = float(interval.high)
    return RateRatio(
        after=after,
        before=before,
        ratio=after / before,
        ci_low=float(interval.low) / (1 - float(interval.low)),
        ci_high=None if high >= 1 else high / (1 - high),
    )


def _pinned_by_all(
    counts: Sequence[int],
    sums: Sequence[tuple[int | None, Sequence[int]]],
    withheld: set[int],
    primary: frozenset[int],
    threshold: int,
    around: set[int] | None = None,
) -> set[int]:
    """The small withheld counts that the shown ones and every sum together still pin
    down (their least and greatest values, by linear programming, less than one apart);
    with ``around``, every withheld count pinned down in the groups of those counts.

    A reader knows each shown count, that a '<threshold' lies from 1 to threshold - 1 and
    that any other withheld count is at least the threshold; a total of None is known
    from elsewhere (here, its real value)."""
    # Sums share no withheld count across a table's columns (but for the referrals row), so
    # the withheld counts fall into small groups tied by sums: each is solved on its own.
    parent = {cell: cell for cell in withheld}

    def root(cell: int) -> int:
        while parent[cell] != cell:
            parent[cell] = parent[parent[cell]]
            cell = parent[cell]
        return cell

    tied = []
    for total, parts in sums:
        cells = [i for i in _cells(total, parts) if i in withheld]
        if cells:
            tied.append((total, parts, cells))
            for other in cells[1:]:
                parent[root(other)] = root(cells[0])
    groups: dict[int, list[int]] = {}
    for cell in withheld:
        groups.setdefault(root(cell), []).append(cell)
    out: set[int] = set()
    for members in groups.values():
        if not any(i in primary for i in members):
            continue
        if around is not None and not around.intersection(members):
            continue
        own = [(t, ps) for t, ps, cells in tied if root(cells[0]) == root(members[0])]
        out |= _pinned_in(counts, own, sorted(members), primary, threshold, around is None)
    return out


def _pinned_in(
    counts: Sequence[int],
    sums: Sequence[tuple[int | None, Sequence[int]]],
    hidden: list[int],
    primary: frozenset[int],
    threshold: int,
    small_only: bool,
) -> set[int]:
    """``_pinned_by_all`` for one group of withheld counts and the sums that tie them."""
    column = {cell: n for n, cell in enumerate(hidden)}
    equations, lower, upper = [], [], []
    for total, parts in sums:
        # The withheld parts (less a withheld total) equal what the shown counts leave.
        row = [0.0] * len(hidden)
        left = 0.0
        for i in parts:
            if i in column:
                row[column[i]] += 1.0
            else:
                left -= counts[i]
        if total in column:
            row[column[total]] -= 1.0
        elif total is not None:
            left += counts[total]
        if not any(row):
            continue
        equations.append(row)
        if total is None and is_small(known := sum(counts[i] for i in parts), threshold):
            # Published elsewhere only as small: from 1 to threshold - 1.
            lower.append(left + 1)
            upper.append(left + threshold - 1)
        else:
            exact = left + (known if total is None else 0)
            lower.append(exact)
            upper.append(exact)
    if not equations:
        return set()
    # One model, solved twice per count with only the objective changed: HiGHS starts
    # each solve from the last basis (microseconds, where a fresh linprog took milliseconds).
    highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    matrix = csc_matrix(np.array(equations))
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = len(hidden), len(equations)
    lp.col_cost_ = np.zeros(len(hidden))
    lp.col_lower_ = np.array([1.0 if i in primary else float(threshold) for i in hidden])
    lp.col_upper_ = np.array(
        [float(threshold - 1) if i in primary else highspy.kHighsInf for i in hidden]
    )
    lp.row_lower_, lp.row_upper_ = np.array(lower), np.array(upper)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = matrix.indptr
    lp.a_matrix_.index_ = matrix.indices
    lp.a_matrix_.value_ = matrix.data
    highs.passModel(lp)
    everything = np.arange(len(hidden), dtype=np.int32)
    # Two opposite corners of what a reader could believe, in a few random directions:
    # any count that differs by one or more between them is not pinned down, with no
    # solve of its own (at forty agencies over five years, one solve per count took
    # minutes). Seeded, so the same table is always withheld the same way.
    unproven = {cell for cell in hidden if not small_only or cell in primary}
    directions = np.random.default_rng(0)
    for _ in range(6):
        if not unproven:
            break
        highs.changeColsCost(len(hidden), everything, directions.standard_normal(len(hidden)))
        if corners := _least_and_greatest(highs):
            apart = np.abs(np.subtract(corners[0][1], corners[1][1])) >= 1 - 1e-9
            unproven = {cell for cell in unproven if not apart[column[cell]]}
    highs.changeColsCost(len(hidden), everything, np.zeros(len(hidden)))
    out = set()
    for cell in hidden:
        if cell not in unproven:
            continue
        j = column[cell]
        highs.changeColCost(j, 1.0)
        ends = _least_and_greatest(highs)
        highs.changeColCost(j, 0.0)
        if ends and ends[1][0] - ends[0][0] < 1 - 1e-9:
            out.add(cell)
    return out


def _least_and_greatest(
    highs: highspy.Highs,
) -> tuple[tuple[float, list[float]], tuple[float, list[float]]] | None:
    """The model's objective minimised, then maximised: each value with the counts that
    reach it; None if either cannot be solved."""
    ends = []
    for sense in (highspy.ObjSense.kMinimize, highspy.ObjSense.kMaximize):
        highs.changeObjectiveSense(sense)
        highs.run()
        if highs.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            return None
        ends.append((highs.getInfo().objective_function_value, list(highs.getSolution().col_value)))
    return ends[0], ends[1]
