"""National scale, the report: every figure of a run as Markdown on stdout."""

from __future__ import annotations

from typing import Any

from harness import describe_machine, table


def _gb(value: int) -> str:
    return f"{value / 2**30:.2f} GB"


def print_report(results: dict[str, Any]) -> None:
    machine = results["machine"]
    print(
        f"\nMachine: {describe_machine(machine)}, "
        f"load average {machine['load_average_at_start'][0]:.1f} at start"
    )
    data = results["data"]
    print(
        f"\nData ({data['first_quarter']} to {data['last_quarter']}), generated in "
        f"{data['seconds']:.0f} s, database {_gb(data['database_bytes'])}:"
    )
    print(
        table(
            [
                [name, f"{count:,}", _gb(data["bytes"].get(name, 0))]
                for name, count in data["rows"].items()
            ],
            ["table", "rows", "size with indexes"],
        )
    )
    print(
        table(
            [[name, f"{seconds:.1f}"] for name, seconds in data["steps"].items()],
            ["generation step", "seconds"],
        )
    )
    print(f"shape: {data['shape']}; attendance plan: {data['attendance_plan']}")
    q = results["quarterly"]
    c, g = q["custom"], q["generic"]
    mc, mg = c["median"], g["median"]
    print(
        f"\nBenchmark 1: quarterly report {q['first']} to {q['last']}, median of "
        f"{q['repeats']} ({q['check']})"
    )

    def line(label: str, key: str) -> list[str]:
        cells = [label, f"{mc[key] * 1000:.0f}", f"{mc[key] / mc['bare']:.2f}"]
        if key in mg:
            cells += [f"{mg[key] * 1000:.0f}", f"{mg[key] / mg['bare']:.2f}"]
        else:
            cells += ["", ""]
        return cells

    rows = [
        line("reports.quarterly (whole)", "report"),
        *(
            [line("  part: per-quarter counts", "report_part_counted")]
            if "report_part_counted" in mc
            else []
        ),
        *(
            [line("  part: engagement cohort", "report_part_cohort")]
            if "report_part_cohort" in mc
            else []
        ),
        line("bare: one aggregate, per-quarter counts", "bare"),
        line("bare: engagement cohort aggregate", "bare_cohort"),
    ]
    print(
        table(
            rows,
            ["measure", "custom plans ms", "x bare", "generic plans ms", "x bare"],
        )
    )
    for regime, found in (("custom", c), ("generic", g)):
        print(
            f"{regime} plans: report / bare = {found['ratio_report_to_bare']:.2f} (target <= 1.5);"
            f" report / (bare + bare cohort) = {found['ratio_report_to_bare_plus_cohort']:.2f}"
        )
        for name, scans in found["scans"].items():
            print(
                f"  plan {name} ({found['execution_ms'][name]:.0f} ms in EXPLAIN ANALYZE): {scans}"
            )
    for found in c.get("index_test", {}).values():
        print(
            f"with {found['statement']} (built in {found['build_seconds']:.1f}s): report "
            f"{found['median']['report'] * 1000:.0f} ms (cohort part "
            f"{found['median'].get('report_part_cohort', 0) * 1000:.0f} ms), bare "
            f"{found['median']['bare'] * 1000:.0f} ms, ratio {found['ratio_report_to_bare']:.2f}; "
            f"report plan {found['scans']}"
        )
    s = results["survival"]
    m = s["median"]
    print(
        f"\nBenchmark 2: analyse() with {', '.join(s['covariates'])} ({s['n']:,} complete rows, "
        f"{s['events']:,} events, {s['excluded']:,} excluded), median of {s['repeats']} "
        f"({s['check']})"
    )
    print(
        table(
            [[name, f"{seconds:.2f}", f"{seconds / m['bare']:.2f}"] for name, seconds in m.items()],
            ["measure", "seconds", "x bare"],
        )
    )
    scaling = s["ph_scaling"]
    print(
        "lifelines' PH test on all the rows it is given (scaled Schoenfeld residuals grown by "
        "np.append per row): "
        + ", ".join(f"{p['rows']:,} rows {p['seconds']:.1f}s" for p in scaling["points"])
        + f"; time ~ rows^{scaling['exponent']:.2f}; extrapolated to {s['n']:,} rows: "
        f"{scaling['extrapolated_seconds']:.0f}s. The linear residuals give the same test "
        f"(max difference {scaling['max_difference_linear_vs_lifelines']:.1e})."
    )
    print(
        f"ratio analyse / floor (a), the bare fit = {s['ratio_analyse_to_bare']:.1f} "
        f"(target <= 3); analyse / floor (b) = {s['ratio_analyse_to_floor_b']:.2f} "
        f"(target <= 1.5); cox() / bare = {s['ratio_cox_to_bare']:.2f}; the same analyse() "
        f"again, from the results cache: "
        f"{m['analyse, the same again (results cache)'] * 1000:.0f} ms"
    )
    print(
        f"PH test p, as cox() reports it (R's score test, everyone): {s['ph_test']}; "
        f"lifelines' test on everyone: {s['ph_test_everyone']}"
    )
    child = s.get("child")
    if child:
        if child["stopped_at_limit"]:
            print(
                f"analyse() in a fresh process: stopped at the {child['limit_seconds']:.0f}s "
                f"limit, peak RSS {_gb(child['peak_rss_until_stopped'])} until then"
            )
        else:
            print(
                f"analyse() in a fresh process: {child['seconds']:.1f}s, peak RSS "
                f"{_gb(child['peak_rss_sampled'])} (after imports "
                f"{_gb(child['rss_after_imports'])})"
            )
    peaks = s["rss_peak_above_start"]
    print(
        "peak RSS above the phase's start: "
        + ", ".join(f"{name} {_gb(value)}" for name, value in peaks.items())
        + f"; ru_maxrss {_gb(s['max_rss_before'])} before, {_gb(s['max_rss_after'])} after"
    )
    if "tracemalloc" in s:
        t = s["tracemalloc"]
        print(
            f"tracemalloc peak: analyse {_gb(t['analyse_peak'])} "
            f"({t['analyse_seconds_traced']:.1f}s traced), bare fit {_gb(t['bare_peak'])} "
            f"(its input frame {_gb(t['bare_frame_bytes'])})"
        )
    print(
        f"COHORT_SQL server-side (EXPLAIN ANALYZE): {s['cohort_sql_execution_ms']:.0f} ms; "
        f"plan {s['cohort_scans']}; concordance {s['concordance']:.3f}"
    )
    if "cohort_table_execution_ms" in s:
        print(
            f"COHORT_COPY_SQL (the cohort table) server-side (EXPLAIN ANALYZE): "
            f"{s['cohort_table_execution_ms']:.0f} ms; plan {s['cohort_table_scans']}"
        )
    print(f"\nwhole run {results['wall_seconds']:.0f} s")
