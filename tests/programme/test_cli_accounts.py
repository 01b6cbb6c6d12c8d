"""``inspire user list|deactivate|reactivate|reset-password|unlock``, and ``user add`` at a
terminal, run as an admin runs them: in a separate process."""

from __future__ import annotations

import os
import pty
import select
import signal
import time

import pytest

from programme.platform.tables import Account, AuditEvent, LoginThrottle, Role
from tests.builders import INSPIRE, PASSWORD, log_in
from tests.builders import inspire as run_inspire
from tests.programme.web.helpers import make_account

pytestmark = pytest.mark.anyio


def inspire(*args: str):
    return run_inspire(*args)


async def test_user_list_shows_every_account(clean_database):
    await make_account("alice", Role.admin)
    await make_account("rita", Role.referrer, "South Yorkshire Police")
    result = inspire("user", "list")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines == [
        "alice\tadmin\t-\tactive",
        "rita\treferrer\tSouth Yorkshire Police\tactive",
    ]


async def test_deactivate_reactivate_and_the_last_admin(client, clean_database):
    await make_account("alice", Role.admin)
    await make_account("fran", Role.facilitator)
    token = await log_in(client, "fran")
    result = inspire("user", "deactivate", "Fran")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "deactivated fran"
    assert (await client.get("/auth/me", headers=token)).status_code == 401
    assert "deactivated" in inspire("user", "list").stdout
    result = inspire("user", "reactivate", "fran")
    assert result.returncode == 0 and result.stdout.strip() == "reactivated fran"
    assert (await client.get("/auth/me", headers=token)).status_code == 401
    last = inspire("user", "deactivate", "alice")
    assert last.returncode == 1
    assert "last active admin" in last.stderr and "Traceback" not in last.stderr
    unknown = inspire("user", "deactivate", "nobody")
    assert unknown.returncode == 1 and "No account is called 'nobody'" in unknown.stderr
    rows = await AuditEvent.select().where(AuditEvent.username == "cli")
    assert {r["action"] for r in rows} >= {"update"}


async def test_reset_password_prints_a_temporary_one_that_must_be_replaced(client, clean_database):
    await make_account("fran", Role.facilitator)
    result = inspire("user", "reset-password", "fran")
    assert result.returncode == 0, result.stderr
    temporary = result.stdout.strip().rsplit(" ", 1)[1]
    login = await client.post("/auth/login", json={"username": "fran", "password": temporary})
    assert login.status_code == 200
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    assert (await client.get("/auth/me", headers=headers)).json()["reset_pending"] is True
    assert (await client.get("/referrals", headers=headers)).status_code == 403


async def test_unlock_lifts_the_sign_in_delay(client, app, clean_database):
    await make_account("fran", Role.facilitator)
    for _ in range(app.state.settings.login_max_failures):
        await client.post("/auth/login", json={"username": "fran", "password": "wrong"})
    assert await LoginThrottle.count().where(LoginThrottle.username == "fran") > 0
    result = inspire("user", "unlock", "fran")
    assert result.returncode == 0 and result.stdout.strip() == "unlocked fran"
    assert await LoginThrottle.count().where(LoginThrottle.username == "fran") == 0


def _at_a_terminal(args: list[str], answers: list[str], timeout: float = 120) -> tuple[int, str]:
    """Run the command with a terminal of its own, answering each prompt as it appears."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the pty is its controlling terminal
        os.execv(INSPIRE, [INSPIRE, *args])  # noqa: S606 (the console script itself)
    seen, answered = b"", 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 1024)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
        prompts = seen.count(b"Password:") + seen.count(b"Again:")
        if answered < min(prompts, len(answers)):
            os.write(fd, (answers[answered] + "\n").encode())
            answered += 1
    else:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), seen.decode(errors="replace")


async def test_user_add_asks_for_the_password_at_a_terminal(clean_database):
    code, shown = _at_a_terminal(["user", "add", "mo", "--role", "monitor"], [PASSWORD, PASSWORD])
    assert code == 0, shown
    assert "Password:" in shown and "Again:" in shown
    assert PASSWORD not in shown  # not echoed
    assert await Account.count().where(Account.username == "mo") == 1
    code, shown = _at_a_terminal(
        ["user", "add", "mo2", "--role", "monitor"], [PASSWORD, "something else entirely"]
    )
    assert code == 1 and "the two passwords differ" in shown
    assert await Account.count().where(Account.username == "mo2") == 0
