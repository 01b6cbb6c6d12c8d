"""Proportions with Wilson score intervals, and small-number suppression."""

from __future__ import annotations

from dataclasses import dataclass

from scipy.stats import binomtest


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
