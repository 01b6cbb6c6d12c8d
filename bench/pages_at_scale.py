"""National scale, issue 15 parts 5 and 6: two more reports and two pages at a million referrals.

    python bench/pages_at_scale.py                                       # about 15 minutes
    python bench/pages_at_scale.py --referrals 100000 --attendance 200000  # a quick check

Builds the national data set (``national_data.generate``: referrals, events,
returned referrals, incidents, groups, attendance) and on it victims, their
consent to contact and their feedback (``national_data.generate_victims``: the
contact details and notes encrypted with the project's field cipher), then:

1. **Reports** (part 5): the quarterly report as ``national_quarterly`` measures
   it, and the referral-quality and victim-feedback reports
   (``national_reports``), each against one hand-written aggregate over the same
   tables, alternated, under custom and generic plans.
2. **Pages** (part 6): the monitor's dashboard (``GET /monitoring``, its default
   four quarters) and the facilitator's caseload (``GET /caseload``), each part
   of the dashboard timed in-process and every statement of both explained
   (EXPLAIN (ANALYZE, BUFFERS)); then ``inspire serve`` on the data, signed in
   to through ``/sign-in`` like a browser (session cookie and CSRF token), and
   the **server time** of each request read from its access log
   (``programme.access``, first byte in to last byte out):

   - *cold*: the first request to a newly started server process (its pool's
     connections new: no prepared statement, no plan and no Python-level state
     from before, as after ``DISCARD ALL``) right after a write to a table the
     page reads, so no stored result can answer it; PostgreSQL's shared buffers
     and the OS page cache keep what earlier work left in them (the server is
     not restarted, so this is not a cold disk);
   - *cold, nothing written*: the first request to a new server process with no
     write since the last view (a stored result may answer);
   - *warm*: the median of ``--page-repeats`` requests one after another on the
     same server with nothing written between them;
   - *warm after a write*: the median of requests each right after a write.

Same isolation as ``national_scale.py`` (own data directory and embedded
PostgreSQL, deleted at the end; with DATABASE_URL it refuses unless
``--allow-emptying-database``). Requests only to 127.0.0.1, one at a time, every
loop a fixed count. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from harness import (
    Servers,
    add_common_arguments,
    add_user,
    connect,
    empty_every_table,
    execution_ms,
    explain,
    index_usage,
    log,
    machine,
    median,
    migrated_pool,
    throwaway_run,
    today,
    write_json,
)
from national_data import generate, generate_victims
from page_bench import ACCESS_LINE, page_client

PAGES = {
    "dashboard": "/monitoring",
    "caseload": "/caseload",
    "caseload, page 200": "/caseload?waiting_page=200&contacted_page=200&engaged_page=200",
}
TOUCH = "UPDATE programme SET weeks = weeks WHERE false"
"""A write that changes nothing: every statement-level trigger on the table still fires,
so whatever watches writes sees one (as it must: it cannot tell it changed nothing)."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--referrals", type=int, default=1_000_000)
    parser.add_argument("--attendance", type=int, default=1_000_000)
    parser.add_argument("--quarters", type=int, default=20)
    parser.add_argument("--report-repeats", type=int, default=3)
    parser.add_argument("--page-repeats", type=int, default=15)
    parser.add_argument("--cold-rounds", type=int, default=3)
    parser.add_argument("--no-quarterly", action="store_true", help="skip the quarterly report")
    add_common_arguments(parser, empties_database=True)
    args = parser.parse_args(argv)
    if not 1_000 <= args.referrals <= 5_000_000:
        parser.error("--referrals must be 1,000 to 5,000,000")
    if not 0 <= args.attendance <= 50_000_000:
        parser.error("--attendance must be 0 to 50,000,000")
    for name in ("report_repeats", "page_repeats", "cold_rounds"):
        if not 1 <= getattr(args, name) <= 100:
            parser.error(f"--{name.replace('_', '-')} must be 1 to 100")
    return args


async def _timed(call: Any, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        await call()
        times.append(time.perf_counter() - started)
    return median(times)


async def dashboard_parts(now: Any) -> dict[str, Any]:
    """Each part of ``services.dashboard`` timed in-process, and its statements explained."""
    from analysis import queries, rules, services
    from programme.delivery import queries as delivery_queries
    from programme.delivery.services import waiting_summary
    from programme.platform.quarters import quarters_between

    start, end = rules.default_range(None, None, now)
    labels = [q.label for q in quarters_between(start, end)]
    low, high = start.first_day, end.last_day
    times = {
        "quarterly": await _timed(lambda: services.quarterly(start, end)),
        "referral_quality (whole range)": await _timed(
            lambda: services.referral_quality(start, end, per_quarter=False)
        ),
        "waiting_summary": await _timed(lambda: waiting_summary(now)),
        "victim_feedback_report": await _timed(
            lambda: services.victim_feedback_report(start, end, 5)
        ),
    }

    async def computed() -> Any:
        await _touch()  # nothing stored can answer it
        return await services.dashboard(start, end, now, 5)

    before = services.DASHBOARD_CACHE.computed
    times["dashboard, computed (the four at once)"] = await _timed(computed)
    if services.DASHBOARD_CACHE.computed - before != 3:
        raise RuntimeError("the dashboard was answered from the cache after a write")
    times["dashboard, from the cache"] = await _timed(
        lambda: services.dashboard(start, end, now, 5)
    )
    connection = await connect()
    try:
        plans = {
            "quarterly": await explain(connection, queries.QUARTERLY_SQL, low, high, labels),
            "quality": await explain(
                connection, queries.QUALITY_OVER_RANGE_SQL["agency"], low, high
            ),
            "waiting": await explain(connection, delivery_queries.WAITING_SUMMARY, now),
            "feedback": await explain(connection, queries.FEEDBACK_SQL, low, high),
        }
    finally:
        await connection.close()
    return {
        "range": [start.label, end.label],
        "seconds": times,
        "plans": plans,
        "execution_ms": {k: execution_ms(v) for k, v in plans.items()},
        "scans": {k: index_usage(v) for k, v in plans.items()},
    }


LATER_PAGE = 200
"""A later page of every caseload section (lines 9,951 to 10,000): how a deep page costs."""


def caseload_statements() -> dict[str, tuple[str, list[Any]]]:
    """The caseload's statements for each section (its count, its first page and a later
    page of 50), as ``referrals.services.caseload_page`` sends them."""
    from programme.delivery.pages import CASELOAD_PAGE_SIZE
    from referrals import queries

    sections = {
        "waiting": (["accepted"], "received_on"),
        "contacted": (["contacted"], "status_on"),
        "engaged": (["engaged", "started"], "status_on"),
    }
    out: dict[str, tuple[str, list[Any]]] = {}
    for name, (statuses, waited_since) in sections.items():
        out[f"{name} count"] = (queries.CASELOAD_SECTION_TOTAL, [statuses, None])
        for number in (1, LATER_PAGE):
            out[f"{name} page {number}"] = (
                queries.caseload_page(len(statuses), waited_since),
                [statuses, CASELOAD_PAGE_SIZE, (number - 1) * CASELOAD_PAGE_SIZE, None],
            )
    return out


async def caseload_plans() -> dict[str, Any]:
    connection = await connect()
    try:
        plans = {
            name: await explain(connection, sql, *values)
            for name, (sql, values) in caseload_statements().items()
        }
        counts = {
            row["status"]: int(row["n"])
            for row in await connection.fetch(
                "SELECT status, count(*) AS n FROM referral GROUP BY 1"
            )
        }
    finally:
        await connection.close()
    return {
        "referrals_by_status": counts,
        "plans": plans,
        "execution_ms": {k: execution_ms(v) for k, v in plans.items()},
        "scans": {k: index_usage(v) for k, v in plans.items()},
    }


def _server_ms(log_path: Path, offset: int) -> list[tuple[str, str, int, float]]:
    with log_path.open("rb") as handle:
        handle.seek(offset)
        text = handle.read().decode(errors="replace")
    return [
        (m, route, int(status), float(ms)) for m, route, status, ms in ACCESS_LINE.findall(text)
    ]


async def _touch() -> None:
    connection = await connect()
    try:
        await connection.execute(TOUCH)
    finally:
        await connection.close()


async def pages(
    servers: Servers, users: dict[str, tuple[str, str]], args: argparse.Namespace
) -> dict[str, Any]:
    measured: dict[str, dict[str, list[float]]] = {
        page: {"cold": [], "cold, nothing written": [], "warm": [], "warm after a write": []}
        for page in PAGES
    }

    async def one(http: httpx.AsyncClient, page: str, server: Any) -> float:
        offset = server.log_path.stat().st_size
        response = await http.get(PAGES[page])
        if response.status_code != 200:
            raise RuntimeError(f"{PAGES[page]} answered {response.status_code}")
        await asyncio.sleep(0.05)  # the access line is written as the response ends
        lines = [line for line in _server_ms(server.log_path, offset) if line[0] == "GET"]
        if not lines:
            raise RuntimeError(f"no access line for {PAGES[page]}")
        return lines[-1][3]

    who = {"dashboard": "monitor", "caseload": "facilitator", "caseload, page 200": "facilitator"}
    for round_number in range(args.cold_rounds * 2):
        written = round_number % 2 == 0
        server = servers.start_service(f"serve-{round_number}", dict(os.environ))
        await server.wait_until_up()
        clients = {
            role: await page_client(server.url, *users[role], concurrency=1)
            for role in ("monitor", "facilitator")
        }
        try:
            if written:
                await _touch()
            order = list(PAGES) if round_number % 4 < 2 else list(reversed(PAGES))
            for page in order:
                ms = await one(clients[who[page]], page, server)
                measured[page]["cold" if written else "cold, nothing written"].append(ms)
            log(
                f"  round {round_number + 1}: "
                + ", ".join(
                    f"{p} {measured[p]['cold' if written else 'cold, nothing written'][-1]:.0f} ms"
                    for p in PAGES
                )
                + (" (after a write)" if written else "")
            )
            if round_number == 0:
                for _ in range(args.page_repeats):
                    for page in PAGES:
                        measured[page]["warm"].append(await one(clients[who[page]], page, server))
                for _ in range(max(3, args.page_repeats // 3)):
                    for page in PAGES:
                        await _touch()
                        measured[page]["warm after a write"].append(
                            await one(clients[who[page]], page, server)
                        )
                # The loop ended with a write: one view stores the dashboard again, so the
                # next round's "nothing written" finds it (the view is not counted).
                await one(clients["monitor"], "dashboard", server)
                log(
                    "  warm: "
                    + ", ".join(
                        f"{p} {median(measured[p]['warm']):.0f} ms"
                        f" ({median(measured[p]['warm after a write']):.0f} ms after a write)"
                        for p in PAGES
                    )
                )
        finally:
            for http in clients.values():
                await http.aclose()
            server.process.terminate()
            server.process.wait(timeout=30)
    return {
        "times_ms": measured,
        "median_ms": {
            page: {kind: median(values) for kind, values in kinds.items() if values}
            for page, kinds in measured.items()
        },
        "max_ms": {
            page: {kind: max(values) for kind, values in kinds.items() if values}
            for page, kinds in measured.items()
        },
    }


async def prepare(args: argparse.Namespace) -> dict[str, Any]:
    from national_quarterly import quarterly_benchmark, quarters_back
    from national_reports import reports_benchmark

    from programme.platform.crypto import cipher

    results: dict[str, Any] = {}
    async with migrated_pool():
        results["machine"] = await machine("shared_buffers", "work_mem")
        results["machine"]["load_average_at_start"] = os.getloadavg()
        if os.environ.get("DATABASE_URL"):
            await empty_every_table()
        now = today()
        first, last = quarters_back(now, args.quarters)
        cutoff = now - timedelta(days=1)
        log(f"generating {args.referrals:,} referrals and {args.attendance:,} attendance marks")
        connection = await connect()
        try:
            results["data"] = await generate(
                connection, args.referrals, args.attendance, first.first_day, last.last_day, cutoff
            )
            log("generating victims, consent and feedback")
            results["victims"] = await generate_victims(connection, cutoff, cipher().encrypt)
        finally:
            await connection.close()
        log(f"victims: {results['victims']['rows']}")
        log("reports: referral quality and victims' feedback")
        results["reports"] = await reports_benchmark(args.report_repeats, first, last)
        if not args.no_quarterly:
            log("reports: the quarterly report")
            results["quarterly"] = await quarterly_benchmark(
                args.report_repeats, first, last, False
            )
        log("pages: the dashboard's parts and the caseload's statements")
        results["dashboard_parts"] = await dashboard_parts(now)
        results["caseload_statements"] = await caseload_plans()
    return results


def print_report(results: dict[str, Any]) -> None:
    print(f"## Reports and pages at national scale ({results['when']}, code {results['code']})\n")
    machine_info = results["machine"]
    print(
        f"Load average {machine_info['load_average_at_start']} at the start, "
        f"{results.get('load_average_at_end')} at the end; whole run "
        f"{results['wall_seconds']:.0f} s.\n"
    )
    print(
        f"Data: {results['data']['rows']}; victims: {results['victims']['rows']}, "
        f"feedback by stage {results['victims']['feedback_by_stage']}; generated in "
        f"{results['data']['seconds']:.0f} + {results['victims']['seconds']:.0f} s.\n"
    )
    reports = results["reports"]
    print("| report | custom plans | bare | x bare | generic plans | bare | x bare |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in ("quality", "feedback"):
        cells = []
        for regime in ("custom", "generic"):
            m = reports[regime]["median"]
            cells += [
                f"{m[name] * 1000:,.0f} ms",
                f"{m['bare_' + name] * 1000:,.0f} ms",
                f"**{m[name] / m['bare_' + name]:.2f}**",
            ]
        print(f"| {name} | " + " | ".join(cells) + " |")
    if "quarterly" in results:
        cells = []
        for regime in ("custom", "generic"):
            m = results["quarterly"][regime]["median"]
            cells += [
                f"{m['report'] * 1000:,.0f} ms",
                f"{m['bare'] * 1000:,.0f} ms",
                f"**{m['report'] / m['bare']:.2f}**",
            ]
        print("| quarterly | " + " | ".join(cells) + " |")
    print()
    parts = results["dashboard_parts"]
    print(f"Dashboard parts in-process ({parts['range'][0]} to {parts['range'][1]}), median of 3:")
    for name, seconds in parts["seconds"].items():
        print(f"- {name}: {seconds * 1000:,.0f} ms")
    print(f"- statements inside PostgreSQL (ms): {parts['execution_ms']}\n")
    case = results["caseload_statements"]
    print(f"Caseload statements inside PostgreSQL (ms): {case['execution_ms']}\n")
    print(f"Referrals by status: {case['referrals_by_status']}\n")
    print("| page | cold | cold, nothing written | warm | warm after a write |")
    print("|---|---:|---:|---:|---:|")
    for page, kinds in results["pages"]["median_ms"].items():
        print(
            f"| `{PAGES[page]}` | "
            + " | ".join(
                f"{kinds.get(k, float('nan')):,.0f} ms"
                for k in ("cold", "cold, nothing written", "warm", "warm after a write")
            )
            + " |"
        )
    print("\n(server time from the access log; medians)")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with throwaway_run(
        "pages_at_scale",
        empties_database=True,
        allowed=args.allow_emptying_database,
        prefix="inspire-bench-ps-",
    ) as work:
        started = time.monotonic()
        results = asyncio.run(prepare(args))
        tag = secrets.token_hex(3)
        users = {
            "monitor": (f"bench-monitor-{tag}", secrets.token_urlsafe(18)),
            "facilitator": (f"bench-facilitator-{tag}", secrets.token_urlsafe(18)),
        }
        add_user(*users["monitor"], "monitor", None)
        add_user(*users["facilitator"], "facilitator", None)
        with Servers(work) as servers:
            log("pages: inspire serve, cold and warm")
            results["pages"] = asyncio.run(pages(servers, users, args))
        results["load_average_at_end"] = os.getloadavg()
        results["wall_seconds"] = time.monotonic() - started
        from harness import code_version

        results["code"] = code_version()
        results["when"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        results["arguments"] = {
            k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
        }
        print_report(results)
        write_json(args.json, results)
        if args.json is None:
            write_json(work.parent / "pages_at_scale_last.json", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
