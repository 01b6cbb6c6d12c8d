"""The reoffending analysis in plain words: a headline, and the comparisons side by side.

Pure: it reads a published ``ReoffendingOut`` and nothing else, so the page, the
quarterly pack and anything later say the same thing about the same result.

``comparisons`` is a list: the naive one, the immortal-time corrected one, and the one
adjusted for who tends to engage (weighting, when it could be fitted), each with its
own words, laid out side by side.
"""

from __future__ import annotations

from dataclasses import dataclass

from analysis.rules import STATUS_GROUPS
from analysis.schemas import GroupOut, LogRankOut, ReoffendingOut, TermOut


@dataclass(frozen=True)
class Comparison:
    key: str
    """naive, corrected, ... (a stable name for tests and anchors)."""
    title: str
    compares: str
    """Who is compared with whom, from when, in plain words."""
    groups: list[GroupOut]
    follow_up_days: int
    test: LogRankOut | None
    hazard: TermOut | None
    """The status's hazard ratio (under 1: fewer reoffended in that group)."""
    caveat: str
    biased: bool


@dataclass(frozen=True)
class Reading:
    headline: str
    comparisons: list[Comparison]
    can_show: str
    cannot_show: str


def _share(value: float | None) -> str:
    return "withheld" if value is None else f"{value * 100:.0f}%"


def _status_term(terms: list[TermOut], status: str) -> TermOut | None:
    for term in terms:
        if term.name == status or term.name == f"{status}={status}":
            return term
    return None


def headline(result: ReoffendingOut) -> str:
    """One sentence a non-statistician can repeat: who did not reoffend, and how many."""
    days = result.horizon_days
    status = result.group_by if result.group_by in STATUS_GROUPS else None
    landmark = result.time_varying.landmark if result.time_varying else None
    if status:
        # Never the naive figures as the headline: they are the biased ones.
        by_group = {g.group: g for g in landmark.groups} if landmark else {}
        yes, no = by_group.get(status), by_group.get(f"not {status}")
        if landmark and yes and no and yes.survival is not None and no.survival is not None:
            return (
                f"Of the people not yet reoffended at day {landmark.landmark_days}, "
                f"{_share(yes.survival)} of those who had {status} by then had no "
                f"police-recorded incident by day {days}, against {_share(no.survival)} of "
                f"those who had not."
            )
        return (
            f"Too few people (or too few incidents) to compare fairly those who had {status} "
            f"with those who had not without revealing small numbers: try a longer follow-up "
            f"or a later data cut-off."
        )
    shown = [g for g in result.groups if g.survival is not None and g.interpretable]
    if len(shown) == 1 and not result.group_by:
        return (
            f"{_share(shown[0].survival)} of people referred had no police-recorded "
            f"domestic-abuse incident within {days} days of referral."
        )
    if len(shown) >= 2:
        low = min(shown, key=lambda g: g.survival or 0)
        high = max(shown, key=lambda g: g.survival or 0)
        return (
            f"Within {days} days of referral, the share with no police-recorded incident "
            f"ranged from {_share(low.survival)} ({low.group}) to {_share(high.survival)} "
            f"({high.group})."
        )
    return (
        f"Too few people (or too few incidents) to say what share had no police-recorded "
        f"incident within {days} days without revealing small numbers."
    )


def reading(result: ReoffendingOut) -> Reading:
    status = result.group_by if result.group_by in STATUS_GROUPS else None
    comparisons = [
        Comparison(
            key="naive",
            title="From the referral date" + (" (biased)" if status else ""),
            compares=(
                f"Everyone followed from their referral, by whether they had {status} by the "
                f"data cut-off."
                if status
                else "Everyone followed from their referral"
                + (f", by {result.group_by.replace('_', ' ')}." if result.group_by else ".")
            ),
            groups=result.groups,
            follow_up_days=result.horizon_days,
            test=result.logrank,
            hazard=_status_term(result.cox.covariates, status) if result.cox and status else None,
            caveat=(
                f"Flatters the programme: to have {status} at all, a person had to stay "
                f"offence-free until they did, so their offence-free days before that are "
                f"counted in the programme's favour."
                if status
                else "Describes who reoffended; it does not say why."
            ),
            biased=bool(status),
        )
    ]
    landmark = result.time_varying.landmark if result.time_varying else None
    if status and result.time_varying is not None:
        comparisons.append(
            Comparison(
                key="corrected",
                title="Counted from when it happened (corrected)",
                compares=(
                    f"People still followed and not reoffended at day "
                    f"{landmark.landmark_days}, by whether they had {status} by then; the "
                    f"hazard ratio counts people as {status} only from the day they were."
                    if landmark
                    else f"People counted as {status} only from the day they were."
                ),
                groups=landmark.groups if landmark else [],
                follow_up_days=landmark.follow_up_days if landmark else result.horizon_days,
                test=landmark.logrank if landmark else None,
                hazard=_status_term(result.time_varying.covariates, status),
                caveat=(
                    f"Removes the head start (immortal-time bias), and nothing else: people "
                    f"choose to {'engage' if status == 'engaged' else 'stay'}, and those who "
                    f"do may differ in motivation, stability and risk."
                ),
                biased=False,
            )
        )
    adjusted = result.adjusted
    if status and adjusted is not None:
        imbalanced = [b.covariate for b in adjusted.balance if b.imbalanced_after]
        status_word = "engaging" if status == "engaged" else "completing"
        comparisons.append(
            Comparison(
                key="adjusted",
                title="Corrected and weighted for who tends to engage (adjusted)",
                compares=(
                    f"The same people as the corrected comparison, each weighted so that "
                    f"the recorded details ({', '.join(adjusted.covariates).replace('_', ' ')}) "
                    f"are alike in both groups; shares not reoffended are weighted, with no "
                    f"interval."
                ),
                groups=[
                    GroupOut(
                        group=g.group,
                        n=g.n,
                        events=g.events,
                        survival=g.weighted_survival,
                        ci_low=None,
                        ci_high=None,
                        rmst=None,
                    )
                    for g in adjusted.groups
                ],
                follow_up_days=adjusted.follow_up_days,
                test=None,
                hazard=adjusted.hazard_ratio,
                caveat=(
                    "Takes into account only what is recorded about people at referral; "
                    "what is not recorded (motivation, support) can still make those who "
                    f"{'engage' if status == 'engaged' else 'stay'} differ. "
                    f"To explain this result away, something not recorded would have to be "
                    f"linked to both {status_word} and reoffending by a factor of at least "
                    f"{adjusted.e_value.estimate:.1f} each (its 'E-value')."
                    + (
                        f" The weighting left these still unlike: {', '.join(imbalanced)}."
                        if imbalanced
                        else ""
                    )
                ),
                biased=False,
            )
        )
    thing = status or "took part"
    return Reading(
        headline=headline(result),
        comparisons=comparisons,
        can_show=(
            "These figures show how many people had a police-recorded domestic-abuse incident "
            "after their referral, and whether that differed between groups, with the "
            "uncertainty that small numbers bring."
        ),
        cannot_show=(
            f"They cannot show that the programme caused any difference. Counted from the "
            f"referral date, people who {thing} look better simply because they had to stay "
            f"out of trouble long enough to get there; the corrected figures remove that "
            f"head start, but people who choose to take part may differ from those who do "
            f"not in ways that also change their reoffending. Police records miss what is "
            f"not reported."
            if status
            else "They cannot show that the programme caused any difference, and police "
            "records miss what is not reported."
        ),
    )
