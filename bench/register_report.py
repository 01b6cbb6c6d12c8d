"""Saving a register, the report: every figure of a run as Markdown on stdout."""

from __future__ import annotations

from typing import Any

from harness import describe_machine, table
from register_setup import REGISTER_SIZE


def print_report(results: dict[str, Any]) -> None:
    print(
        f"\nMachine: {describe_machine(results['machine'])}; {results['requests']} measured"
        f" saves per target and case after {results['warm_up']} warm-up saves;"
        f" register of {REGISTER_SIZE}.\n"
    )
    rows = []
    for case in results["cases"]:
        by_target = {t["target"]: t for t in case["targets"]}
        base = by_target["executemany"]["time_per_save_ms"]
        bare = by_target.get("bare HTTP", {}).get("time_per_save_ms")
        for target in case["targets"]:
            cost = target["time_per_save_ms"]
            rows.append(
                [
                    case["case"],
                    target["target"],
                    f"{target['per_second']:,.0f}",
                    f"{target['p50_ms']:.2f}",
                    f"{target['p95_ms']:.2f}",
                    f"{target['mean_ms']:.2f}",
                    f"{cost / base:.1f}x",
                    f"{cost / bare:.1f}x" if bare else "-",
                    target["non_200"] + (target["requested"] - target["done"]),
                ]
            )
    print(
        table(
            rows,
            [
                "case",
                "target",
                "saves/s",
                "p50 ms",
                "p95 ms",
                "mean ms",
                "vs executemany",
                "vs bare HTTP",
                "non-200",
            ],
        )
    )
    print(
        "\n'vs' columns: wall time per save (1 / saves per second) over the baseline's, "
        "same case, same run.\n"
    )
    for case in results["cases"]:
        print(
            f"- {case['case']}: service corrected {case['service_lines_corrected_per_save']} "
            f"lines per measured 200 save; {case['service_rows_marked']} attendance rows"
            " on its sessions"
        )
    failures = [
        (case["case"], t["target"], sample)
        for case in results["cases"]
        for t in case["targets"]
        for sample in t["failures_sample"]
    ]
    for where, target, sample in failures:
        print(f"  non-200 sample: {where} / {target}: {sample}")
    probe = results.get("first_saves_at_once")
    if probe:
        answers = ", ".join(f"{n} x HTTP {code}" for code, n in probe["statuses"].items())
        print(
            f"\nFirst saves of {probe['clients']} fresh sessions of the group at once, "
            f"{probe['rounds']} rounds: {answers}; slowest answer {probe['slowest_ms']:.0f} ms."
        )
    if results.get("breakdown"):
        print(
            "\nIn-process (no HTTP), one call at a time; statements logged by asyncpg in a"
            " second pass ('in SQL' is the wait for each statement's answer):\n"
        )
        rows = [
            [
                label,
                f"{b['ms_per_call']:.2f}",
                f"{b['ms_per_call_traced']:.2f}",
                f"{b['statements_per_call']:.1f}",
                f"{b['sql_ms_per_call']:.2f}",
                f"{b['ms_per_call_traced'] - b['sql_ms_per_call']:.2f}",
            ]
            for label, b in results["breakdown"].items()
        ]
        print(
            table(
                rows,
                [
                    "call",
                    "ms per call",
                    "ms (logged pass)",
                    "SQL statements",
                    "in SQL ms",
                    "outside SQL ms",
                ],
            )
        )
        for label, b in results["breakdown"].items():
            if not label.startswith("save_register"):
                continue
            print(f"\nTop statements by time, {label} (per call):\n")
            print(
                table(
                    [
                        [f"{row['per_call']:.1f}", f"{row['ms_per_call']:.2f}", row["statement"]]
                        for row in b["top"]
                    ],
                    ["count", "ms", "statement"],
                )
            )
