"""Sign-in flood: ``GET /health`` while 40 clients sign in at once, and the owner still gets in.

    python bench/signin_flood.py                  # about 1.5 minutes
    python bench/signin_flood.py --json out.json  # also every figure as JSON

One ``inspire serve`` (one worker: /health shares the event loop with the
sign-ins) on a fresh embedded database, with ``INSPIRE_TRUSTED_PROXIES`` set to
127.0.0.1 so that each simulated client can give its own address in
``X-Forwarded-For``, as a reverse proxy in front of the service would. The
throttle keys attempts by that address. ``GET /health`` is polled every
``--interval`` seconds from a process of its own (``health_probe.ProbeProcess``;
``--probe-in-thread``: from a thread beside the flooding clients, whose polls
then also wait for the GIL the clients hold):

1. **idle**: nothing else, for ``--idle-seconds``;
2. **spray**: ``--clients`` clients, each from its own address, sign in with
   random usernames and passwords one after another, for ``--phase-seconds``;
3. **guess**: the same number of clients, each from another address of its
   own, guess passwords for one real username, for ``--phase-seconds``.

During each flood, and again after it, the real account's owner signs in with
the right password from an address that has not failed (a behaviour check,
not a timing: it must answer 200). Reported: /health p50/p95/p99/max per phase,
p99 flood / idle, against 50 ms; sign-in attempts per second and the answers
(401 = password checked and wrong, 429 = throttled, not checked); the owner's
sign-ins and how long each waited.

Same isolation as the other benchmarks: a throwaway data directory with its own
embedded PostgreSQL, or DATABASE_URL only with ``--allow-emptying-database``
(it empties every table, before and after); all traffic to 127.0.0.1; every
phase has a fixed duration and an attempt cap; the server is stopped by its pid.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from harness import (
    HOST,
    Servers,
    add_common_arguments,
    add_user,
    describe_machine,
    empty_every_table,
    inspire_command,
    log,
    machine,
    migrated_pool,
    table,
    throwaway_run,
    write_json,
)
from health_probe import HEADER, Probe, ProbeProcess, describe, row, summary

TARGET_MS = 50.0
OWNER = "bench-owner"
OWNER_PASSWORD = "the owner's right password, loopback only"  # noqa: S105 (a throwaway database)
OWNER_ADDRESSES = {"spray": "192.0.2.10", "guess": "192.0.2.20"}
"""Addresses (TEST-NET-1) the owner signs in from: never used by a flooding client."""
REQUEST_TIMEOUT = 120.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=40, help="concurrent flooding clients")
    parser.add_argument("--phase-seconds", type=float, default=25.0, help="length of each flood")
    parser.add_argument("--max-attempts", type=int, default=5_000, help="attempts per flood, most")
    parser.add_argument("--idle-seconds", type=float, default=10.0, help="idle polling, seconds")
    parser.add_argument("--interval", type=float, default=0.01, help="seconds between polls")
    parser.add_argument(
        "--probe-in-thread",
        action="store_true",
        help="poll /health from a thread beside the flooding clients (as before 2026-11-27),"
        " not from a process of its own",
    )
    add_common_arguments(parser, empties_database=True)
    args = parser.parse_args(argv)
    if not 1 <= args.clients <= 200 or not 5 <= args.phase_seconds <= 300:
        parser.error("--clients must be 1 to 200 and --phase-seconds 5 to 300")
    if not 10 <= args.max_attempts <= 100_000:
        parser.error("--max-attempts must be 10 to 100,000")
    if not 1 <= args.idle_seconds <= 120 or not 0.001 <= args.interval <= 1:
        parser.error("--idle-seconds must be 1 to 120 and --interval 0.001 to 1")
    return args


async def sign_in(
    client: httpx.AsyncClient, username: str, password: str, address: str
) -> httpx.Response:
    return await client.post(
        "/auth/login",
        json={"username": username, "password": password},
        headers={"X-Forwarded-For": address},
    )


async def owner_signs_in(client: httpx.AsyncClient, address: str, when: str) -> dict[str, Any]:
    """The right password from a clean address: must be let in (200), however long it queues."""
    started = time.perf_counter()
    answer = await sign_in(client, OWNER, OWNER_PASSWORD, address)
    found = {
        "when": when,
        "address": address,
        "status": answer.status_code,
        "seconds": time.perf_counter() - started,
    }
    log(f"owner signs in {when}: {answer.status_code} after {found['seconds']:.1f}s")
    return found


async def flood(base_url: str, args: argparse.Namespace, phase: str, octet: int) -> dict[str, Any]:
    """``args.clients`` clients signing in back to back for ``args.phase_seconds``, and the
    owner signing in from a clean address a third of the way through."""
    statuses: Counter[str] = Counter()
    limits = httpx.Limits(max_connections=args.clients + 1, max_keepalive_connections=args.clients)
    sent = 0
    started = time.perf_counter()
    deadline = started + args.phase_seconds
    async with httpx.AsyncClient(
        base_url=base_url, limits=limits, timeout=REQUEST_TIMEOUT, trust_env=False
    ) as client:

        async def one_client(number: int) -> None:
            nonlocal sent
            address = f"10.{octet}.{number // 250}.{number % 250 + 1}"
            while time.perf_counter() < deadline and sent < args.max_attempts:
                sent += 1
                username = OWNER if phase == "guess" else f"nobody-{secrets.token_hex(6)}"
                try:
                    answer = await sign_in(client, username, secrets.token_urlsafe(16), address)
                    statuses[str(answer.status_code)] += 1
                except httpx.HTTPError as exc:
                    statuses[type(exc).__name__] += 1

        async def owner_during() -> dict[str, Any]:
            await asyncio.sleep(args.phase_seconds / 3)
            return await owner_signs_in(client, OWNER_ADDRESSES[phase], f"during the {phase}")

        clients = [asyncio.create_task(one_client(n)) for n in range(args.clients)]
        during = await owner_during()
        await asyncio.gather(*clients)
        seconds = time.perf_counter() - started
        after = await owner_signs_in(client, OWNER_ADDRESSES[phase], f"after the {phase}")
    if statuses.get("200"):
        raise RuntimeError(f"a flooding client was let in: {dict(statuses)}")
    return {
        "attempts": sum(statuses.values()),
        "seconds": seconds,
        "attempts_per_s": sum(statuses.values()) / seconds,
        "checked_per_s": statuses.get("401", 0) / seconds,
        "statuses": dict(statuses),
        "owner": [during, after],
    }


async def run(args: argparse.Namespace, log_dir: Path) -> dict[str, Any]:
    async with migrated_pool():
        found_machine = await machine()
        found_machine["load_average_at_start"] = os.getloadavg()
        await empty_every_table()
    add_user(OWNER, OWNER_PASSWORD, "admin", None, dict(os.environ))
    results: dict[str, Any] = {
        "machine": found_machine,
        "clients": args.clients,
        "phase_seconds": args.phase_seconds,
        "interval": args.interval,
        "probe": "thread" if args.probe_in_thread else "process",
    }
    environment = {**os.environ, "INSPIRE_TRUSTED_PROXIES": HOST}
    try:
        with Servers(log_dir) as servers:
            command = [*inspire_command(), "serve", "--host", HOST, "--workers", "1"]
            server = servers.start("service", command, environment)
            await server.wait_until_up()
            async with httpx.AsyncClient(
                base_url=server.url, trust_env=False, timeout=REQUEST_TIMEOUT
            ) as client:
                # Warm-up: the hash pool's thread and the throttle's queries.
                warm = await owner_signs_in(client, "192.0.2.1", "before the floods")
                if warm["status"] != 200:
                    raise RuntimeError(f"the owner cannot sign in at all: {warm}")

            polls = int(args.idle_seconds / args.interval) + 1
            log(f"idle: polling /health for {args.idle_seconds:.0f}s")
            prober = Probe if args.probe_in_thread else ProbeProcess
            idle = prober(server.url, args.interval, polls).start()
            await asyncio.sleep(args.idle_seconds)
            results["idle"] = summary(idle.stop())
            log(f"idle: {describe(results['idle'])}")

            limit = int((args.phase_seconds + REQUEST_TIMEOUT) / args.interval) + 1
            for octet, phase in enumerate(("spray", "guess"), start=1):
                log(f"{phase}: {args.clients} clients for {args.phase_seconds:.0f}s")
                probe = prober(server.url, args.interval, limit).start()
                try:
                    found = await flood(server.url, args, phase, octet)
                finally:
                    polls_seen = probe.stop()
                found["health"] = summary(polls_seen)
                results[phase] = found
                log(
                    f"{phase}: {found['attempts']} attempts, {found['attempts_per_s']:.1f}/s,"
                    f" {dict(found['statuses'])}; {describe(found['health'])}"
                )
    finally:
        async with migrated_pool():
            await empty_every_table()

    for phase in ("spray", "guess"):
        health = results[phase]["health"]
        health["ratio_p99"] = health["p99_ms"] / results["idle"]["p99_ms"]
        health["target_met"] = health["p99_ms"] <= TARGET_MS
    results["owner_let_in"] = all(
        sign["status"] == 200 for phase in ("spray", "guess") for sign in results[phase]["owner"]
    )
    results["machine"]["load_average_at_end"] = os.getloadavg()
    return results


def print_report(results: dict[str, Any]) -> None:
    print(f"\nMachine: {describe_machine(results['machine'])}")
    start = results["machine"]["load_average_at_start"]
    end = results["machine"]["load_average_at_end"]
    print(f"Load average at start {start[0]:.1f}, at end {end[0]:.1f}")
    print(
        f"\n`inspire serve --workers 1`, {results['clients']} clients per flood for"
        f" {results['phase_seconds']:.0f} s each; /health polled every"
        f" {1000 * results['interval']:.0f} ms from a {results['probe']} of its own.\n"
    )
    rows = [row("idle", results["idle"])]
    rows += [row(f"{phase} flood", results[phase]["health"]) for phase in ("spray", "guess")]
    print(table(rows, HEADER))
    print()
    floods = []
    for phase, what in (("spray", "random usernames"), ("guess", f"one username ({OWNER})")):
        found = results[phase]
        floods.append(
            [
                f"{phase}: {what}",
                str(found["attempts"]),
                f"{found['attempts_per_s']:.1f}",
                f"{found['checked_per_s']:.1f}",
                ", ".join(f"{status}: {n}" for status, n in sorted(found["statuses"].items())),
                f"{found['health']['ratio_p99']:.1f}x",
                "met" if found["health"]["target_met"] else "MISSED",
                " / ".join(f"{s['status']} in {s['seconds']:.1f} s" for s in found["owner"]),
            ]
        )
    print(
        table(
            floods,
            [
                "flood",
                "attempts",
                "attempts/s",
                "checked/s",
                "answers",
                "p99 / idle",
                "p99 <= 50 ms",
                "owner during / after",
            ],
        )
    )
    print(
        "\n- the owner, from a clean address, was "
        + ("let in every time" if results["owner_let_in"] else "**REFUSED** at least once")
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with throwaway_run(
        "signin_flood", empties_database=True, allowed=args.allow_emptying_database
    ) as data_dir:
        results = asyncio.run(run(args, data_dir))
        print_report(results)
        write_json(args.json, results)
    return 0 if results["owner_let_in"] else 1


if __name__ == "__main__":
    sys.exit(main())
