"""Wilson intervals against Newcombe (1998), Statistics in Medicine 17:857-872, Table I."""

from __future__ import annotations

import pytest

from analysis.proportions import suppressed, wilson


@pytest.mark.parametrize(
    ("successes", "trials", "low", "high"),
    [
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0000, 0.1611),
        (1, 29, 0.0061, 0.1718),
        (29, 29, 0.8830, 1.0000),
    ],
)
def test_wilson_matches_newcombes_published_intervals(successes, trials, low, high):
    result = wilson(successes, trials)
    assert result.ci_low == pytest.approx(low, abs=5e-5)
    assert result.ci_high == pytest.approx(high, abs=5e-5)
    assert result.share == successes / trials


def test_the_progress_reports_completion_rate():
    result = wilson(43, 78)
    assert round(result.share * 100) == 55


@pytest.mark.parametrize(("successes", "trials"), [(1, 0), (-1, 5), (6, 5)])
def test_impossible_counts_are_refused_in_plain_words(successes, trials):
    with pytest.raises(ValueError, match=r"trial|between"):
        wilson(successes, trials)


def test_small_counts_are_suppressed_but_zero_is_not():
    assert [suppressed(n, 5) for n in (0, 1, 4, 5, 91)] == [0, "<5", "<5", 5, 91]
