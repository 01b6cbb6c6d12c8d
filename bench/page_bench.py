"""The web pages against the JSON API doing the same work, over loopback, in one run.

    python bench/page_bench.py                   # about two minutes
    python bench/page_bench.py --requests 100    # a quicker one

Three pairs, each page route against the API route that does its work:

- **live check**: the referral form's check as the person types, ``POST
  /make-a-referral/person/live`` (htmx, the consent step already answered in the
  session), against ``POST /referrals`` with the same answers as JSON, which runs
  the same intake checks (``referrals.rules.check``) and answers 422. There is
  no separate API check route: submitting is how the API checks. So that the
  API side writes nothing either, its answers say the referral came in longer
  ago than the server takes (``INSPIRE_BACKDATE_DAYS``, set for the run): the
  checks run, then the 422 says so and nothing is recorded (an incomplete
  referral in time would be recorded as returned).
- **register GET**: ``GET /delivery/groups/{g}/sessions/{s}/register`` (a
  12-person register) against ``GET /sessions/{s}/attendance``.
- **register save**: the register form sent by htmx (``HX-Request``; answered
  with the register's part of the page, no redirect) against ``PUT
  /sessions/{s}/attendance``; each client alternates two registers that differ
  in every line on a session of its own, so every save is a correction.

**Server time per request** is the service's own figure: its access log
(``programme.access``) writes each request's time from the first byte in to the
last byte out, by route template; the medians of the measured rounds' lines are
compared. With 16 requests in flight on a small machine that time includes
waiting for the event loop behind the other 15, so it is about 16 times the
work of one request; both sides wait alike. Requests per second (client side)
are shown too.

Set-up as ``register_bench.py``: a throwaway data directory and embedded
PostgreSQL, ``inspire user add`` for a referrer and a facilitator, ``inspire
serve`` on a free port of 127.0.0.1, the referrals, group and sessions over the
API; the pages are signed in to through ``/sign-in`` like a browser (a session
cookie and the form's CSRF token). Rounds alternate page, API, page, API, ...
Every loop has a fixed count and a time limit; the server is stopped at the end
and on errors.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import shutil
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from harness import (
    Server,
    Servers,
    add_common_arguments,
    add_user,
    describe_machine,
    log,
    machine,
    median,
    percentile,
    project_database,
    table,
    throwaway_run,
    today,
    write_json,
)
from register_setup import HISTORY_DAYS, REGISTER_A, REGISTER_B, build_setup, new_sessions

TARGET_RATIO = 1.3
PAIR_NAMES = ("live check", "register GET", "register GET, vs marks + members", "register save")
BACKDATE_DAYS = HISTORY_DAYS + 20
CSRF_FIELD = re.compile(r'name="_csrf_token" value="([^"]+)"')
ACCESS_LINE = re.compile(r"programme\.access: (\w+) (\S+) (\d{3}) ([\d.]+)ms")
HTTP_TIMEOUT = 30.0


@dataclass
class Sender:
    """One side of a pair: how a client sends its next request, and what answer is right."""

    name: str
    routes: tuple[tuple[str, str], ...]
    """The method and route template the access log names, for each request a turn sends."""
    expected: int
    send: Any

    @property
    def label(self) -> str:
        return " + ".join(f"{method} {route}" for method, route in self.routes)


@dataclass
class Round:
    sender: str
    requests: int = 0
    wrong: Counter[int] = field(default_factory=Counter)
    wall: float = 0.0
    latencies: list[float] = field(default_factory=list)
    server_ms: dict[str, list[float]] = field(default_factory=dict)
    """The access log's times, by route: a turn's server time is the sum of its routes'."""
    cut_short: bool = False


def csrf_from(html: str) -> str:
    found = CSRF_FIELD.search(html)
    if not found:
        raise RuntimeError("no CSRF token on the page")
    return found.group(1)


async def page_client(
    base: str, username: str, password: str, concurrency: int
) -> httpx.AsyncClient:
    """A browser signed in to the pages: its session cookie, ready for ``concurrency`` requests."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    http = httpx.AsyncClient(base_url=base, timeout=HTTP_TIMEOUT, limits=limits, trust_env=False)
    shown = await http.get("/sign-in")
    signed = await http.post(
        "/sign-in",
        data={"_csrf_token": csrf_from(shown.text), "username": username, "password": password},
    )
    if signed.status_code != 303:
        raise RuntimeError(f"page sign-in of {username}: {signed.status_code}")
    return http


async def drive(sender: Sender, count: int, concurrency: int, limit: float) -> Round:
    result = Round(sender.name)
    issued = 0
    deadline = time.perf_counter() + limit

    async def client(worker: int) -> None:
        nonlocal issued
        while issued < count and time.perf_counter() < deadline:
            n = issued
            issued += 1
            started = time.perf_counter()
            try:
                status = await sender.send(worker, n)
            except httpx.HTTPError as exc:
                log(f"  {sender.name}: {type(exc).__name__}")
                status = 0
            result.latencies.append(time.perf_counter() - started)
            result.requests += 1
            if status != sender.expected:
                result.wrong[status] += 1

    started = time.perf_counter()
    tasks = [asyncio.create_task(client(w)) for w in range(concurrency)]
    try:
        async with asyncio.timeout(limit + HTTP_TIMEOUT + 5):
            await asyncio.gather(*tasks)
    except TimeoutError:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    result.wall = time.perf_counter() - started
    result.cut_short = result.requests < count
    return result


def server_times(log_path: Path, offset: int, sender: Sender) -> dict[str, list[float]]:
    """The access log's times for each of ``sender``'s routes, written since ``offset``."""
    with log_path.open("rb") as handle:
        handle.seek(offset)
        text = handle.read().decode(errors="replace")
    times: dict[str, list[float]] = {f"{m} {r}": [] for m, r in sender.routes}
    for method, route, _, ms in ACCESS_LINE.findall(text):
        if f"{method} {route}" in times:
            times[f"{method} {route}"].append(float(ms))
    return times


def turn_ms(by_route: dict[str, list[float]], measure: Any) -> float | None:
    """A turn's server time: ``measure`` of each route's times, added up."""
    if not by_route or not all(by_route.values()):
        return None
    return float(sum(measure(times) for times in by_route.values()))


async def pairs(service: str, users: dict[str, tuple[str, str]], concurrency: int) -> Any:
    """The three pairs of senders, and the clients to close afterwards."""
    setup = await build_setup(service, None, users, secrets.token_hex(3))
    group = setup.group_id
    # A session of its own for each client and side: saves of one session queue on its lock.
    page_sessions = await new_sessions(setup, concurrency)
    api_sessions = await new_sessions(setup, concurrency)
    read_session = page_sessions[0]
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    api = httpx.AsyncClient(base_url=service, timeout=HTTP_TIMEOUT, limits=limits, trust_env=False)
    referrer_token = (
        await api.post(
            "/auth/login",
            json={"username": users["referrer"][0], "password": users["referrer"][1]},
        )
    ).json()["access_token"]
    referrer_api = {"Authorization": f"Bearer {referrer_token}"}
    facilitator_api = setup.facilitator_headers

    referrer = await page_client(service, *users["referrer"], concurrency)
    start = await referrer.get("/make-a-referral/consent")
    token = csrf_from(start.text)
    agreed = today() - timedelta(days=2)
    consent = {
        "consent_given": "yes",
        "consent_obtained_on-day": str(agreed.day),
        "consent_obtained_on-month": str(agreed.month),
        "consent_obtained_on-year": str(agreed.year),
        "consent_method": "verbal",
    }
    answered = await referrer.post(
        "/make-a-referral/consent", data={"_csrf_token": token, "action": "continue", **consent}
    )
    if answered.status_code != 303:
        raise RuntimeError(f"consent step: {answered.status_code}")
    person = {
        "first_name": "Alex",
        "last_name": "Benchperson",
        "date_of_birth-day": "17",
        "date_of_birth-month": "5",
        "date_of_birth-year": "1990",
        "gender": "male",
        "phone": "",  # missing: the check names it
        "local_authority": "Rotherham",
    }
    person_form = {"_csrf_token": token, **person}
    htmx = {"HX-Request": "true"}
    same_answers = {
        "consent_given": True,
        "consent_obtained_on": agreed.isoformat(),
        "consent_method": "verbal",
        "first_name": "Alex",
        "last_name": "Benchperson",
        "date_of_birth": "1990-05-17",
        "gender": "male",
        "local_authority": "Rotherham",
        # Received longer ago than the server takes (INSPIRE_BACKDATE_DAYS, set for the run):
        # every intake check runs, then the API answers 422 "came in the wrong door" and
        # records nothing. A referral refused by the checks alone would be recorded as
        # returned (a write the live check never does).
        "received_on": (today() - timedelta(days=BACKDATE_DAYS + 100)).isoformat(),
    }

    async def live_page(worker: int, n: int) -> int:
        answer = await referrer.post("/make-a-referral/person/live", data=person_form, headers=htmx)
        if answer.status_code == 200 and 'id="live-check"' not in answer.text:
            return -1
        return answer.status_code

    async def live_api(worker: int, n: int) -> int:
        answer = await api.post("/referrals", json=same_answers, headers=referrer_api)
        return answer.status_code

    facilitator = await page_client(service, *users["facilitator"], concurrency)
    register_path = f"/delivery/groups/{group}/sessions/{read_session}/register"
    shown = await facilitator.get(register_path)
    page_token = csrf_from(shown.text)

    async def register_page(worker: int, n: int) -> int:
        answer = await facilitator.get(register_path)
        return answer.status_code

    async def register_api(worker: int, n: int) -> int:
        answer = await api.get(f"/sessions/{read_session}/attendance", headers=facilitator_api)
        return answer.status_code

    async def register_and_group_api(worker: int, n: int) -> int:
        """What a JSON client reads to draw the same register: the marks and the members."""
        marks = await api.get(f"/sessions/{read_session}/attendance", headers=facilitator_api)
        members = await api.get(f"/groups/{group}", headers=facilitator_api)
        return max(marks.status_code, members.status_code)

    turns = [0] * concurrency

    def marks(worker: int) -> list[str]:
        turns[worker] += 1
        return REGISTER_A if turns[worker] % 2 else REGISTER_B

    async def save_page(worker: int, n: int) -> int:
        chosen = marks(worker)
        form = {
            "_csrf_token": page_token,
            **{f"mark-{r}": m for r, m in zip(setup.referrals, chosen, strict=True)},
        }
        path = f"/delivery/groups/{group}/sessions/{page_sessions[worker]}/register"
        answer = await facilitator.post(path, data=form, headers=htmx)
        if answer.status_code == 200 and "Register" not in answer.text:
            return -1
        return answer.status_code

    async def save_api(worker: int, n: int) -> int:
        chosen = marks(worker)
        body = [
            {"referral_id": str(r), "status": m}
            for r, m in zip(setup.referrals, chosen, strict=True)
        ]
        answer = await api.put(
            f"/sessions/{api_sessions[worker]}/attendance", json=body, headers=facilitator_api
        )
        return answer.status_code

    register = "/delivery/groups/{group_id}/sessions/{session_id}/register"
    attendance = "/sessions/{session_id}/attendance"
    live = (("POST", "/make-a-referral/{slug}/live"),)
    found = [
        (
            "live check",
            Sender("page (htmx)", live, 200, live_page),
            Sender("API", (("POST", "/referrals"),), 422, live_api),
        ),
        (
            "register GET",
            Sender("page", (("GET", register),), 200, register_page),
            Sender("API", (("GET", attendance),), 200, register_api),
        ),
        (
            "register GET, vs marks + members",
            Sender("page", (("GET", register),), 200, register_page),
            Sender(
                "API",
                (("GET", attendance), ("GET", "/groups/{group_id}")),
                200,
                register_and_group_api,
            ),
        ),
        (
            "register save",
            Sender("page (htmx)", (("POST", register),), 200, save_page),
            Sender("API", (("PUT", attendance),), 200, save_api),
        ),
    ]
    return found, [api, referrer, facilitator]


async def run(args: argparse.Namespace, server: Server, users: dict[str, tuple[str, str]]) -> Any:
    await server.wait_until_up()
    results: dict[str, Any] = {"machine": await machine(), "pairs": [], "options": vars(args)}
    results["options"] = {k: str(v) for k, v in vars(args).items()}
    found, clients = await pairs(server.url, users, args.concurrency)
    if args.only:
        found = [pair for pair in found if pair[0] in args.only]
    try:
        for name, page, api in found:
            log(f"{name}: warm-up")
            for sender in (page, api):
                await drive(sender, args.warm_up, args.concurrency, args.time_limit)
            measured: dict[str, list[Round]] = {page.name: [], api.name: []}
            for number in range(args.rounds):
                for sender in (page, api) if not args.api_first else (api, page):
                    offset = server.log_path.stat().st_size
                    done = await drive(sender, args.requests, args.concurrency, args.time_limit)
                    await asyncio.sleep(0.2)  # the last lines reach the log
                    done.server_ms = server_times(server.log_path, offset, sender)
                    measured[sender.name].append(done)
                    log(
                        f"  round {number + 1} {sender.name}: {done.requests} in {done.wall:.1f}s,"
                        f" server median {turn_ms(done.server_ms, median) or 0:.1f} ms,"
                        f" wrong {dict(done.wrong)}"
                    )
            results["pairs"].append(summarise(name, page, api, measured))
    finally:
        for client in clients:
            await client.aclose()
    return results


def summarise(name: str, page: Sender, api: Sender, measured: dict[str, list[Round]]) -> Any:
    sides = {}
    for sender in (page, api):
        rounds = measured[sender.name]
        server_ms: dict[str, list[float]] = {}
        for r in rounds:
            for route, times in r.server_ms.items():
                server_ms.setdefault(route, []).extend(times)
        latencies = [s * 1000 for r in rounds for s in r.latencies]
        requests = sum(r.requests for r in rounds)
        wall = sum(r.wall for r in rounds)
        sides[sender.name] = {
            "route": sender.label,
            "requests": requests,
            "wrong": sum(sum(r.wrong.values()) for r in rounds),
            "cut_short": any(r.cut_short for r in rounds),
            "logged": {route: len(times) for route, times in server_ms.items()},
            "server_ms_median": _rounded(turn_ms(server_ms, median)),
            "server_ms_p90": _rounded(turn_ms(server_ms, lambda t: percentile(t, 0.9))),
            "client_ms_median": round(median(latencies), 2) if latencies else None,
            "per_second": round(requests / wall, 1) if wall else 0.0,
        }
    p, a = sides[page.name], sides[api.name]
    ratio = (
        p["server_ms_median"] / a["server_ms_median"]
        if p["server_ms_median"] and a["server_ms_median"]
        else None
    )
    throughput_ratio = a["per_second"] / p["per_second"] if p["per_second"] else None
    return {
        "pair": name,
        "sides": sides,
        "ratio": round(ratio, 2) if ratio else None,
        "throughput_ratio": round(throughput_ratio, 2) if throughput_ratio else None,
        "met": ratio is not None and ratio <= TARGET_RATIO,
    }


def _rounded(value: float | None) -> float | None:
    return round(value, 2) if value is not None else None


def print_report(results: dict[str, Any]) -> None:
    print(f"Machine: {describe_machine(results['machine'])}\n")
    rows = []
    for pair in results["pairs"]:
        for side, figures in pair["sides"].items():
            rows.append(
                [
                    pair["pair"],
                    side,
                    f"`{figures['route']}`",
                    f"{figures['requests']:,}",
                    figures["wrong"],
                    figures["server_ms_median"],
                    figures["server_ms_p90"],
                    figures["per_second"],
                ]
            )
    print(
        table(
            rows,
            [
                "pair",
                "side",
                "route",
                "requests",
                "wrong answers",
                "server ms (median)",
                "server ms (p90)",
                "requests/s",
            ],
        )
    )
    print()
    print(
        table(
            [
                [
                    p["pair"],
                    f"{p['ratio']}x",
                    f"{p['throughput_ratio']}x",
                    "met" if p["met"] else "missed",
                ]
                for p in results["pairs"]
            ],
            ["pair", "page / API, server time", "API / page, requests/s", f"<= {TARGET_RATIO}x"],
        )
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=500, help="requests per side per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per side")
    parser.add_argument("--warm-up", type=int, default=100, help="unmeasured requests per side")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    parser.add_argument("--time-limit", type=float, default=60.0, help="seconds allowed per round")
    parser.add_argument(
        "--server-log", type=Path, help="copy the service's log (stderr) here at the end"
    )
    parser.add_argument(
        "--api-first", action="store_true", help="in each round, the API side before the page"
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=PAIR_NAMES,
        help="measure this pair only (may be given more than once); every pair by default",
    )
    add_common_arguments(parser, empties_database=False)
    args = parser.parse_args(argv)
    if not 1 <= args.requests <= 20_000 or not 0 <= args.warm_up <= 2_000:
        parser.error("--requests must be 1 to 20,000 and --warm-up 0 to 2,000")
    if not 1 <= args.rounds <= 10 or not 1 <= args.concurrency <= 32:
        parser.error("--rounds must be 1 to 10 and --concurrency 1 to 32")
    if not 1 <= args.time_limit <= 600:
        parser.error("--time-limit must be 1 to 600 seconds")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # The set-up back-dates its referrals by HISTORY_DAYS + 10; the API side of the live
    # check sends one older than this, which the server refuses without recording it.
    os.environ["INSPIRE_BACKDATE_DAYS"] = str(BACKDATE_DAYS)
    with throwaway_run("page_bench", empties_database=False, prefix="inspire-bench-pg-") as work:
        with Servers(work) as servers:
            project_database().database_url()  # starts the embedded server, held for the run
            tag = secrets.token_hex(3)
            users = {
                "referrer": (f"bench-referrer-{tag}", secrets.token_urlsafe(18)),
                "facilitator": (f"bench-facilitator-{tag}", secrets.token_urlsafe(18)),
            }
            add_user(*users["referrer"], "referrer", "Bench Police")
            add_user(*users["facilitator"], "facilitator", None)
            service = servers.start_service("inspire-serve", dict(os.environ))
            try:
                results = asyncio.run(run(args, service, users))
            finally:
                if args.server_log:
                    shutil.copyfile(service.log_path, args.server_log)
        print_report(results)
        write_json(args.json, results)
        wrong = sum(side["wrong"] for p in results["pairs"] for side in p["sides"].values())
        return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
