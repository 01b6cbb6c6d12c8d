"""Kaplan-Meier curves a non-statistician can read at a glance."""

from __future__ import annotations

import io
import math
import textwrap
from dataclasses import dataclass
from datetime import date

import pandas as pd
from lifelines import KaplanMeierFitter
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

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
    """Curves per group with 95% bands, the horizon marked, the numbers still followed
    beneath; a headline sentence above and the caveat below, on the picture itself; the
    y-axis zoomed to the curves; more than four groups as small multiples.

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


MAX_CURVES = 4
"""More groups than this are drawn as small multiples: past four lines, no one can follow
which is which."""
COLOURS = ("#1d70b8", "#d4351c", "#00703c", "#912b88")
REFERENCE = "#6f777b"


@dataclass
class Curve:
    label: str
    n: int | str
    withheld: bool
    times: list[float]
    survival: list[float]
    low: list[float]
    high: list[float]
    still_followed: list[int | str]
    at_horizon: float | None


def _curves(
    frame: pd.DataFrame, labels: pd.Series, start: int, ticks: list[int], threshold: int
) -> list[Curve]:
    """Each group's Kaplan-Meier curve, cut where fewer than ``threshold`` are still
    followed; a group whose size, reoffences or non-reoffences are small is withheld."""
    out = []
    horizon = ticks[-1]
    for label in sorted(labels.unique()):
        part = frame[labels == label]
        n, events = len(part), int(part["event"].sum())
        followed = [suppressed(int((part["duration"] >= t).sum()), threshold) for t in ticks]
        if any(is_small(c, threshold) for c in (n, events, n - events)):
            out.append(
                Curve(str(label), suppressed(n, threshold), True, [], [], [], [], followed, None)
            )
            continue
        fitter = KaplanMeierFitter()
        # Entry at the landmark: survival from then on, on the days-since-referral axis.
        fitter.fit(part["duration"], part["event"], entry=[start] * n if start else None)
        table = fitter.event_table
        enough = float(table.index[table["at_risk"] >= threshold].max())
        curve = fitter.survival_function_.iloc[:, 0]
        bands = fitter.confidence_interval_survival_function_
        keep = (curve.index >= start) & (curve.index <= enough)
        at_horizon = float(fitter.predict(horizon)) if enough >= horizon else None
        out.append(
            Curve(
                str(label),
                n,
                False,
                [float(t) for t in curve.index[keep]],
                [float(v) for v in curve[keep]],
                [float(v) for v in bands.iloc[:, 0][keep]],
                [float(v) for v in bands.iloc[:, 1][keep]],
                followed,
                at_horizon,
            )
        )
    return out


def _floor(curves: list[Curve]) -> float:
    """The y-axis starts just below the lowest band drawn, on a 5% step: differences
    between curves that all sit near the top are then visible."""
    lows = [min(c.low) for c in curves if c.low]
    if not lows:
        return 0.0
    return max(0.0, math.floor((min(lows) - 0.02) * 20) / 20)


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
    horizon = request.horizon_days
    ticks = [round(start + (horizon - start) * i / 4) for i in range(5)]
    curves = _curves(frame, labels, start, ticks, threshold)
    if not curves:
        raise AnalysisError(
            f"nobody is still followed at day {start} to draw"
            if start
            else "nobody has any follow-up to draw"
        )
    overall = None
    if len(curves) > MAX_CURVES:
        everyone = pd.Series("everyone", index=frame.index)
        overall = _curves(frame, everyone, start, ticks, threshold)[0]
        panels = [[c] for c in curves]
    else:
        panels = [curves]
    columns = 1 if len(panels) == 1 else 3
    rows = math.ceil(len(panels) / columns)
    single = len(panels) == 1
    figure = Figure(figsize=(9, 6.8) if single else (11, 3.4 * rows + 2.2))
    grid = figure.subplots(rows, columns, squeeze=False, sharey=True)
    floor = _floor([*curves, *([overall] if overall else [])])
    for i, axes in enumerate(grid.flat):
        if i >= len(panels):
            axes.set_visible(False)
            continue
        if overall is not None and not overall.withheld:
            _line(axes, overall, REFERENCE, "everyone (for reference)", dashed=True)
        for j, curve in enumerate(panels[i]):
            colour = COLOURS[j % len(COLOURS)] if single else COLOURS[0]
            if curve.withheld:
                axes.plot(
                    [], [], color=colour, label=f"{curve.label} (n={curve.n}): withheld, too few"
                )
                continue
            _line(axes, curve, colour, f"{curve.label} (n={curve.n})")
        axes.axvline(horizon, linestyle="--", color="grey", linewidth=1)
        if start:
            axes.axvline(start, linestyle=":", color="grey", linewidth=1)
            axes.text(start, floor, f" compared from day {start}", ha="left", va="bottom",
                      color="grey", fontsize=8)  # fmt: skip
        margin = (horizon - start) * 0.03
        axes.set_xlim(start - margin, horizon + margin)
        axes.set_xticks(ticks)
        axes.set_ylim(floor, 1.005)
        axes.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        axes.grid(alpha=0.3)
        axes.spines[["top", "right"]].set_visible(False)
        if single:
            axes.set_xlabel("Days since referral")
            axes.set_ylabel("Share with no police-recorded incident")
            axes.legend(loc="lower left", fontsize=9, frameon=False)
            _still_followed(figure, axes, ticks, [(c.label, c.still_followed) for c in curves])
        else:
            curve = panels[i][0]
            axes.set_title(
                f"{curve.label} (n={curve.n})" + (": withheld" * curve.withheld), fontsize=10
            )
            _still_followed(figure, axes, ticks, [("", curve.still_followed)], compact=True)
    figure.suptitle(_headline(curves, status, start, horizon, naive), fontsize=12,
                    fontweight="bold", x=0.02, ha="left", y=0.985, wrap=True)  # fmt: skip
    subtitle = _subtitle(request, status, start, naive, as_of)
    if overall is not None:
        subtitle += " Dashed grey in each: everyone, for comparison."
    if floor > 0:
        subtitle += f" The side axis starts at {floor:.0%}, to show the differences."
    figure.text(0.02, 0.925, textwrap.fill(subtitle, 130), fontsize=9,
                ha="left", va="top", color="#383f43")  # fmt: skip
    figure.text(0.02, 0.012, _caveat(status, start, naive), fontsize=9, ha="left",
                va="bottom", color="#d4351c" if naive else "#0b0c0c", wrap=True)  # fmt: skip
    if single:
        widest = max(len(c.label) for c in curves)
        figure.subplots_adjust(
            left=min(0.3, 0.05 + 0.0085 * widest),
            right=0.97,
            top=0.82,
            bottom=0.2 + 0.045 * len(curves),
        )
    else:
        figure.subplots_adjust(left=0.07, right=0.98, top=0.86, bottom=0.14, hspace=0.8)
    buffer = io.BytesIO()
    figure.savefig(buffer, format=fmt, dpi=110)
    return buffer.getvalue()


def _line(axes: Axes, curve: Curve, colour: str, label: str, dashed: bool = False) -> None:
    axes.step(curve.times, curve.survival, where="post", color=colour, linewidth=2.2,
              label=label, linestyle="--" if dashed else "-")  # fmt: skip
    if not dashed:
        axes.fill_between(curve.times, curve.low, curve.high, step="post", color=colour,
                          alpha=0.15, linewidth=0)  # fmt: skip


def _headline(
    curves: list[Curve], status: str | None, start: int, horizon: int, naive: bool
) -> str:
    """One sentence of what the picture shows, as a person would say it."""
    shown = [c for c in curves if c.at_horizon is not None]
    if status and not naive and len(shown) == 2:
        yes = next((c for c in shown if not c.label.startswith("not ")), None)
        no = next((c for c in shown if c.label.startswith("not ")), None)
        if yes and no:
            return (
                f"By day {horizon}, {yes.at_horizon:.0%} of people who had {status} by day "
                f"{start} had no police-recorded incident,\nagainst {no.at_horizon:.0%} of "
                f"those who had not (people not reoffended by day {start})"
            )
    if len(shown) == 1 and len(curves) == 1:
        return (
            f"{shown[0].at_horizon:.0%} of people had no police-recorded incident "
            f"{horizon} days after referral"
        )
    if len(shown) >= 2:
        low = min(shown, key=lambda c: c.at_horizon or 0)
        high = max(shown, key=lambda c: c.at_horizon or 0)
        return (
            f"By day {horizon}, the share with no police-recorded incident ranged from "
            f"{low.at_horizon:.0%} ({low.label})\nto {high.at_horizon:.0%} ({high.label})"
        )
    return "Too few people to draw without revealing small numbers"


def _subtitle(
    request: AnalysisRequest, status: str | None, start: int, naive: bool, as_of: date
) -> str:
    data = f"Shaded: 95% interval. Data to {as_of.isoformat()}."
    if status and naive:
        return (
            f"NAIVE AND BIASED: everyone from referral, by whether they had {status} by the "
            f"cut-off. {data}"
        )
    if status:
        return (
            f"People still followed and not reoffended at day {start}, by whether they had "
            f"{status} by then (immortal-time corrected: no head start). {data}"
        )
    by = f", by {request.group_by.replace('_', ' ')}" if request.group_by else ""
    return f"Everyone referred, from the day of referral{by}. {data}"


def _caveat(status: str | None, start: int, naive: bool) -> str:
    """What the picture cannot show, on the picture, so it travels with it."""
    if status and naive:
        return (
            f"Biased in the programme's favour: to have {status} at all, people had to stay "
            f"out of trouble until they did.\nDo not use this picture as the programme's effect."
        )
    if status:
        return (
            f"People choose whether to {'engage' if status == 'engaged' else 'stay'}: those "
            f"who do may differ in ways that also change reoffending.\nThe gap is not proof "
            f"of the programme's effect. Police records miss what is not reported."
        )
    return (
        "Describes who had a police-recorded incident; it does not show why.\n"
        "Police records miss what is not reported."
    )


def _still_followed(
    figure: Figure,
    axes: Axes,
    ticks: list[int],
    rows: list[tuple[str, list[int | str]]],
    compact: bool = False,
) -> None:
    """How many people are still followed (and not reoffended) at each tick, already
    suppressed: beneath the x axis, one row per group."""
    below = axes.get_xaxis_transform()
    if compact:
        axes.text(0, -0.2, "Still followed:", transform=axes.transAxes, ha="left", fontsize=8,
                  fontweight="bold")  # fmt: skip
        for tick, count in zip(ticks, rows[0][1], strict=True):
            axes.text(tick, -0.3, str(count), transform=below, ha="center", fontsize=8)
        return
    axes.text(-0.01, -0.14, "Still followed", transform=axes.transAxes, ha="right",
              fontweight="bold")  # fmt: skip
    for i, (label, counts) in enumerate(rows):
        y = -0.2 - 0.06 * i
        axes.text(-0.01, y, label, transform=axes.transAxes, ha="right", fontsize=9)
        for tick, count in zip(ticks, counts, strict=True):
            axes.text(tick, y, str(count), transform=below, ha="center", fontsize=9)
