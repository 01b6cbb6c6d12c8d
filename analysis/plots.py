"""Kaplan-Meier curves a non-statistician can read at a glance."""

from __future__ import annotations

import io
from datetime import date

import pandas as pd
from lifelines import KaplanMeierFitter
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from analysis import services
from analysis.proportions import is_small, suppressed
from analysis.rules import STATUS_GROUPS, AnalysisRequest, landmark_for, resolve_landmark
from analysis.services import group_labels
from analysis.survival import AnalysisError
from programme.platform.threads import off_loop

FORMATS = {"png": "image/png", "svg": "image/svg+xml"}


async def reoffending_plot(
    request: AnalysisRequest, today: date, fmt: str, suppress_below: int, naive: bool = False
) -> bytes:
    """Curves per group with 95% bands, the horizon marked, numbers at risk beneath.

    Grouped by a programme status, the curves are the landmark ones (people still
    followed and offence-free at the landmark, by their status then); the naive curves
    from referral, which flatter the programme, only when ``naive`` is asked for, and
    titled as biased.

    Nothing drawn reveals a count from 1 to ``suppress_below`` - 1: numbers at risk are
    shown as '<N', a curve stops where fewer than that are still at risk, and a group
    with fewer people, reoffences or people without one is not drawn at all.
    """
    if fmt not in FORMATS:
        raise AnalysisError("the plot comes as png or svg")
    as_of = (await services.data_cut_off(request.as_of, today)).as_of
    request = resolve_landmark(request, await services.programme_weeks())
    raw, _ = await services.load_cohort(as_of)
    if raw.empty:
        raise AnalysisError("no referral has any follow-up time by the data cut-off")
    return await off_loop(_draw, raw, request, as_of, fmt, suppress_below, naive)


def _draw(
    raw: pd.DataFrame,
    request: AnalysisRequest,
    as_of: date,
    fmt: str,
    threshold: int,
    naive: bool = False,
) -> bytes:
    # A Figure of its own, not pyplot's shared state: plots are drawn in worker threads.
    frame = services.follow_up(raw, request.horizon_days)
    status = request.group_by if request.group_by in STATUS_GROUPS else None
    start = 0
    if status and not naive:
        # The picture people remember is the corrected one: people still followed and
        # offence-free at the landmark, by their status then.
        start = landmark_for(request)
        frame = frame[frame["duration"] > start]
        reached = frame[f"days_to_{status}"] <= start
        labels = reached.map({True: f"{status} by day {start}", False: f"not {status} by then"})
    elif request.group_by:
        labels = group_labels(frame, request.group_by)
    else:
        labels = pd.Series("all referrals", index=frame.index)
    figure = Figure(figsize=(9, 6.5))
    axes = figure.subplots()
    horizon = request.horizon_days
    ticks = [round(start + (horizon - start) * i / 4) for i in range(5)]
    at_risk_rows = []
    for label in sorted(labels.unique()):
        part = frame[labels == label]
        n, events = len(part), int(part["event"].sum())
        at_risk = [suppressed(int((part["duration"] >= t).sum()), threshold) for t in ticks]
        at_risk_rows.append((label, at_risk))
        if any(is_small(c, threshold) for c in (n, events, n - events)):
            # Drawn, the curve would give the small count away: say so in the legend.
            axes.plot([], [], label=f"{label} (n={suppressed(n, threshold)}): withheld")
            continue
        fitter = KaplanMeierFitter(label=f"{label} (n={n})")
        # Entry at the landmark: survival from then on, on the days-since-referral axis.
        fitter.fit(part["duration"], part["event"], entry=[start] * n if start else None)
        table = fitter.event_table
        enough = table.index[table["at_risk"] >= threshold]
        fitter.plot_survival_function(
            ax=axes, ci_show=True, linewidth=2, loc=slice(start, float(enough.max()))
        )
    axes.axvline(horizon, linestyle="--", color="grey")
    axes.text(horizon, 0.03, f" {horizon}-day follow-up ", ha="right", color="grey")
    if start:
        axes.axvline(start, linestyle=":", color="grey")
        axes.text(start, 0.03, f" landmark: day {start}", ha="left", color="grey")
    axes.set_xlim(0, horizon * 1.03)
    axes.set_xticks(ticks)
    axes.set_ylim(0, 1.02)
    axes.set_xlabel("Days since referral")
    axes.set_ylabel(
        "Share not reoffended" + (f" (of those offence-free at day {start})" * bool(start))
    )
    axes.set_title(_title(request, status, start, naive, as_of), fontsize=10)
    axes.grid(alpha=0.3)
    axes.legend(loc="lower left")
    _at_risk_table(figure, axes, ticks, at_risk_rows)
    buffer = io.BytesIO()
    figure.savefig(buffer, format=fmt, dpi=110)
    return buffer.getvalue()


def _title(
    request: AnalysisRequest, status: str | None, start: int, naive: bool, as_of: date
) -> str:
    """What the picture shows and, for programme status, what it cannot show."""
    data = f"Kaplan-Meier with 95% bands; data to {as_of.isoformat()}"
    if status and naive:
        return (
            f"NAIVE AND BIASED: reoffending by whether {status} by the cut-off, from referral\n"
            f"Flatters the programme: people had to stay offence-free to be {status} "
            f"(immortal-time bias)\n{data}"
        )
    if status:
        return (
            f"Reoffending after day {start}, by whether {status} by then "
            f"(immortal-time corrected)\nPeople still followed and offence-free at day {start}. "
            f"Who is {status} is self-selected:\nnot the programme's effect. {data}"
        )
    by = f", by {request.group_by.replace('_', ' ')}" if request.group_by else ""
    return f"Reoffending after referral{by}\n{data}"


def _at_risk_table(
    figure: Figure, axes: Axes, ticks: list[int], rows: list[tuple[str, list[int | str]]]
) -> None:
    """Numbers at risk beneath the x axis, one row per group, already suppressed."""
    figure.subplots_adjust(bottom=0.18 + 0.05 * len(rows), top=0.9)
    below = axes.get_xaxis_transform()
    axes.text(0, -0.14, "At risk", transform=below, ha="right", fontweight="bold")
    for i, (label, counts) in enumerate(rows):
        y = -0.2 - 0.06 * i
        axes.text(-0.01, y, label, transform=axes.transAxes, ha="right", fontsize=9)
        for tick, count in zip(ticks, counts, strict=True):
            axes.text(tick, y, str(count), transform=below, ha="center", fontsize=9)
