"""Saving a 12-person register over real HTTP, as a ratio to a bare asyncpg executemany.

    python bench/register_bench.py                    # the full run (a few minutes)
    python bench/register_bench.py --requests 100     # a quicker one

Runs on its own embedded PostgreSQL in a fresh temporary data directory
(INSPIRE_DATA_DIR is set before any project module is imported), deleted at the
end. With DATABASE_URL set it uses that server instead (point it at a scratch
database: the accounts, referrals, group and audit rows it creates stay there;
only its scratch table is dropped).

Setup goes through the real interfaces: ``inspire user add`` for a referrer and
a facilitator, ``inspire serve`` on a free port of 127.0.0.1, then HTTP for the
12 referrals (moved to engaged), the group, its members and its sessions (and as
many more groups of 12 as the highest concurrency, less one).

Each case PUTs /sessions/{id}/attendance with a 12-person register, at a fixed
concurrency, either on ONE session (concurrent saves of one session queue on
its row lock by design), spread over one session per client (all in one group:
the same 12 people, whose referral rows the saves then queue on, by design too),
or one session in each of as many groups of 12 people of their own (facilitators
of different groups). ``identical`` re-saves the same register (the idempotent
path); ``changing`` alternates two registers that differ in every line, so each
save is a correction (updates, audit rows, milestone derivation). Each session
gets its first register (the insert) one at a time before the clients start,
then a warm-up, then the measured saves. The same traffic then goes to two
baselines in the same run:

- ``bare HTTP``: bench/register_bare_app.py, a Litestar app served by uvicorn
  like the service, that decodes the same JSON and does one executemany;
- ``executemany``: asyncpg ``executemany`` of the same 12 rows straight from
  this process (one held connection per client), no HTTP at all.

Both baselines upsert into a scratch copy of the ``attendance`` table
(``CREATE TABLE ... (LIKE attendance INCLUDING ALL)``: same columns, defaults
and indexes, no foreign keys) with ``ON CONFLICT (session, referral) DO UPDATE
... WHERE status IS DISTINCT FROM``, so an identical register writes nothing
there either.

Two probes follow: first saves of fresh sessions of the group sent at once
(the status codes they get), and the service's ``save_register`` called
in-process (no HTTP) with every SQL statement logged by asyncpg, to show where
a save spends its time.

All traffic goes to 127.0.0.1; every loop has a fixed count and a time limit;
the servers started here are stopped at the end and on errors.

The parts: ``register_setup`` (the referrals, group and sessions over HTTP),
``register_load`` (the cases and the load), ``register_breakdown`` (the
in-process breakdown), ``register_report`` (the Markdown); this script reads the
options, starts the servers and runs them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import sys
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import asyncpg
from harness import (
    Server,
    Servers,
    add_common_arguments,
    add_user,
    log,
    machine,
    project_database,
    throwaway_run,
    write_json,
)
from register_load import (
    cases,
    corrections_recorded,
    first_saves_at_once,
    measure_executemany,
    measure_http,
)
from register_report import print_report
from register_setup import (
    REGISTER_A,
    REGISTER_B,
    REGISTER_SIZE,
    build_setup,
    new_sessions,
    register_json,
)

TABLE = "bench_register_attendance"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="measured saves per case")
    parser.add_argument("--warm-up", type=int, default=40, help="unmeasured saves per case")
    parser.add_argument(
        "--concurrency", default="1,4", help="comma-separated clients in flight (default 1,4)"
    )
    parser.add_argument(
        "--time-limit", type=float, default=120.0, help="seconds allowed per measurement"
    )
    parser.add_argument(
        "--breakdown-saves", type=int, default=100, help="in-process saves per breakdown"
    )
    parser.add_argument(
        "--first-save-rounds",
        type=int,
        default=5,
        help="rounds of first saves of fresh sessions at once (0: skip)",
    )
    parser.add_argument("--no-bare-http", action="store_true", help="skip the bare HTTP baseline")
    parser.add_argument(
        "--server-log", type=Path, help="copy the service's log (stderr) here at the end"
    )
    add_common_arguments(parser, empties_database=False)
    args = parser.parse_args(argv)
    try:
        args.concurrency = sorted({int(part) for part in args.concurrency.split(",") if part})
    except ValueError:
        parser.error("--concurrency must be whole numbers separated by commas")
    if not args.concurrency or not all(1 <= c <= 32 for c in args.concurrency):
        parser.error("--concurrency values must be 1 to 32")
    if not 1 <= args.requests <= 20_000 or not 0 <= args.warm_up <= 2_000:
        parser.error("--requests must be 1 to 20,000 and --warm-up 0 to 2,000")
    if not 0 <= args.first_save_rounds <= 20:
        parser.error("--first-save-rounds must be 0 to 20")
    if not 1 <= args.time_limit <= 600 or not 0 <= args.breakdown_saves <= 2_000:
        parser.error("--time-limit must be 1 to 600 seconds, --breakdown-saves 0 to 2,000")
    return args


async def run(
    args: argparse.Namespace,
    dsn: str,
    service_server: Server,
    bare_server: Server | None,
    users: dict[str, tuple[str, str]],
    tag: str,
) -> dict[str, Any]:
    from register_bare_app import upsert_sql  # (it imports Litestar)

    await service_server.wait_until_up()
    if bare_server is not None:
        await bare_server.wait_until_up()
    service = service_server.url
    bare = bare_server.url if bare_server is not None else None
    results: dict[str, Any] = {"cases": [], "requests": args.requests, "warm_up": args.warm_up}
    results["machine"] = await machine()
    results["machine"]["service_pool"] = int(os.environ.get("INSPIRE_DB_POOL_SIZE") or 10)
    setup = await build_setup(service, bare, users, tag)
    log(f"set up {len(setup.referrals)} engaged referrals in group {setup.group_id}")
    # Groups of their own for the "c groups" cases: 12 other people each.
    others = [
        await build_setup(service, bare, users, f"{tag}-{k}", first=k * REGISTER_SIZE)
        for k in range(1, max(args.concurrency))
    ]
    if others:
        log(f"set up {len(others)} more groups of {REGISTER_SIZE}")
    upsert = upsert_sql(TABLE)
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=max(args.concurrency) + 1)
    try:
        async with pool.acquire() as connection:
            await connection.execute(f'DROP TABLE IF EXISTS "{TABLE}"')
            await connection.execute(f'CREATE TABLE "{TABLE}" (LIKE attendance INCLUDING ALL)')
        bodies = register_json(setup.referrals)
        row_sets = [
            [
                (referral_id, status, setup.facilitator_id)
                for referral_id, status in zip(setup.referrals, marks, strict=True)
            ]
            for marks in (REGISTER_A, REGISTER_B)
        ]

        def rows_for(session_id: UUID, which: int) -> list[tuple[Any, ...]]:
            return [(session_id, *row) for row in row_sets[which]]

        for case in cases(args.concurrency):
            by_session: dict[str, list[bytes]] = {}
            if case.groups:
                sessions = []
                for group in [setup, *others][: case.sessions]:
                    (session,) = await new_sessions(group, 1)
                    sessions.append(session)
                    by_session[session] = register_json(group.referrals)
            else:
                sessions = await new_sessions(setup, case.sessions)
            log(f"case {case.label}: service")
            before = 0

            async def count_before() -> None:
                nonlocal before
                async with pool.acquire() as connection:
                    before = await corrections_recorded(connection)

            measured = [
                await measure_http(
                    "service",
                    service,
                    sessions,
                    case,
                    bodies,
                    setup.facilitator_headers,
                    args,
                    count_before,
                    by_session,
                )
            ]
            async with pool.acquire() as connection:
                corrected = await corrections_recorded(connection) - before
                rows = await connection.fetchval(
                    "SELECT count(*) FROM attendance WHERE session = ANY($1::uuid[])",
                    [UUID(s) for s in sessions],
                )
            if bare:
                log(f"case {case.label}: bare HTTP")
                measured.append(
                    await measure_http(
                        "bare HTTP",
                        bare,
                        [str(uuid4()) for _ in sessions],
                        case,
                        bodies,
                        {},
                        args,
                    )
                )
            log(f"case {case.label}: executemany")
            measured.append(
                await measure_executemany(
                    pool, upsert, [uuid4() for _ in sessions], case, rows_for, args
                )
            )
            saves = max(1, measured[0].ok)
            results["cases"].append(
                {
                    "case": case.label,
                    "mode": case.mode,
                    "concurrency": case.concurrency,
                    "sessions": case.sessions,
                    "service_rows_marked": rows,
                    "service_lines_corrected_per_save": round(corrected / saves, 2),
                    "targets": [m.summary() for m in measured],
                }
            )
            for m in measured:
                if m.failures or m.cut_short:
                    log(f"  {m.target}: {len(m.failures)} failures, cut short: {m.cut_short}")
        clients = max(args.concurrency)
        if clients > 1 and args.first_save_rounds:
            log(f"first saves of {clients} fresh sessions at once, {args.first_save_rounds} times")
            results["first_saves_at_once"] = await first_saves_at_once(
                setup, bodies, clients, args.first_save_rounds
            )
        log("in-process breakdown of save_register")
        # It imports the project: only here, once INSPIRE_DATA_DIR is set.
        from register_breakdown import breakdown

        results["breakdown"] = await breakdown(setup, args)
    finally:
        async with pool.acquire() as connection:
            await connection.execute(f'DROP TABLE IF EXISTS "{TABLE}"')
        await pool.close()
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with throwaway_run(
        "register_bench", empties_database=False, prefix="inspire-bench-reg-"
    ) as work_dir:
        servers = Servers(work_dir)
        try:
            with servers:
                # Starts the embedded server (if any), held for the whole run.
                dsn = project_database().database_url()
                where = (
                    "DATABASE_URL" if os.environ.get("DATABASE_URL") else f"embedded in {work_dir}"
                )
                log(f"database: {where}")
                tag = secrets.token_hex(3)
                users = {
                    "referrer": (f"bench-referrer-{tag}", secrets.token_urlsafe(18)),
                    "facilitator": (f"bench-facilitator-{tag}", secrets.token_urlsafe(18)),
                }
                add_user(*users["referrer"], "referrer", "Bench Police")
                add_user(*users["facilitator"], "facilitator", None)
                env = dict(os.environ)
                service = servers.start_service("inspire-serve", env)
                bare = None
                if not args.no_bare_http:
                    bare_env = {**env, "BENCH_DSN": dsn, "BENCH_REGISTER_TABLE": TABLE}
                    bare = servers.start_bare_app("bare-app", "register_bare_app.py", bare_env)
                results = asyncio.run(run(args, dsn, service, bare, users, tag))
        finally:
            if args.server_log and servers.started:
                shutil.copyfile(servers.started[0].log_path, args.server_log)
        print_report(results)
        write_json(args.json, results)
        bad = sum(
            t["non_200"] + (t["requested"] - t["done"])
            for case in results["cases"]
            for t in case["targets"]
        )
        return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
