"""Sign-in throttling: whose password is checked now, and who must wait how long.

Following OWASP's "Blocking Brute Force Attacks" and the Authentication Cheat
Sheet (ASVS V2.2.1): no hard lock-out, which anyone could set off against
anyone (the only admin included) with five wrong guesses, but delays that grow
with each further failure, kept separately per username and per client
address. Each attempt reads three records:

- the **address** (whatever the usernames): stops one address trying many names
  (password spraying) and bounds the work one address can cause;
- the **username** (from any address): stops a guessing attack on one account
  spread over many addresses;
- the **username at this address**: whether this address has failed for this
  username lately. It has no delay of its own; it decides whether the
  username's delay applies to this address.

The rule, once each record has forgotten what is older than the memory window:

1. The address is delayed: refused, whatever the username.
2. The username is delayed and this address has failed for it lately: refused.
3. Otherwise the password is checked. The attempt is counted as a failure on
   all three records *before* the check, in the same locked transaction that
   read them, so simultaneous guesses each see the ones before them and no
   more get checked than the limits allow; a right password takes its count
   back.

Why a clean address gets past a delayed username (rule 2): a delay anyone can
trigger against any account must not keep the account's owner out. The owner,
signing in from an address that has not failed for that username lately, still
gets in while an attacker elsewhere hammers the account, and the attacker, whose
address has failed, stays delayed. The price: an attacker with many addresses
gets one guess per fresh address per memory window once the username is
delayed, each guess also spending that address's own allowance (rule 1). From
any one address the guesses at one account are the free ones plus one per
growing delay: 12 in the first hour with the defaults, well under ASVS's 100.
An owner who has just mistyped from their own address is, for that username,
an address that has failed: they wait until the username's delay ends or their
own failure is forgotten, whichever comes first, and then sign in.

A refused attempt is tallied (``refused``, for operators) but grows no delay:
it checked nothing, so waiting out the ``Retry-After`` given is enough.

A refusal is remembered by the worker that gave it, until the time it gave
(``remembered_refusal``): further attempts from the same address (rule 1), or
for the same username from the same address (rule 2), are refused again from
that memory without reading the records. The records stay the authority: the
memory only repeats a refusal they decided, never admits anything, and ends
when that refusal would have. A delay lifted early (a right password taking its
count back) is forgotten by the worker that lifted it; another worker may go on
repeating the refusal until the ``Retry-After`` that client was already given.
Why: guessers refused within a known delay otherwise each cost a locked
transaction on the username's record, and enough of them keep the event loop
and the database busy and make the owner queue behind them for that lock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

# 2**40 seconds is far beyond any longest delay; the cap keeps the power finite.
_MAX_DOUBLINGS = 40

_NEVER = 2**31
"""A number of free failures never reached: the record is never delayed itself."""


@dataclass(frozen=True)
class ThrottlePolicy:
    username_failures: int
    """Failures in a row for one username before the username is delayed."""
    address_failures: int
    """Failures in a row from one address before the address is delayed."""
    first_delay: timedelta
    """The delay after the last free failure; each further failure doubles it."""
    longest_delay: timedelta
    """The cap on a delay, and how long a record remembers its failures after
    the last one (or after the end of its delay, if later)."""

    def delay_after(self, failures: int, free: int) -> timedelta | None:
        """The delay once ``failures`` failures are counted, ``free`` of them without one."""
        if failures < free:
            return None
        doublings = min(failures - free, _MAX_DOUBLINGS)
        # Compared in seconds first: a first delay over 78 s doubled 40 times is
        # past the largest timedelta, and multiplying would raise.
        if self.first_delay.total_seconds() * 2**doublings >= self.longest_delay.total_seconds():
            return self.longest_delay
        return self.first_delay * 2**doublings


@dataclass(frozen=True)
class Throttle:
    """What one record (address, username, or username at an address) remembers."""

    failures: int = 0
    """Checked attempts that did not succeed (and the one being checked now)."""
    refused: int = 0
    """Attempts refused while delayed: for operators; they grow no delay."""
    last_failure_at: datetime | None = None
    delayed_until: datetime | None = None
    forget_at: datetime | None = None
    """From then on the record counts for nothing and may be deleted."""

    def remembered(self, now: datetime) -> Throttle:
        """The record as it stands at ``now``: empty once its memory has lapsed."""
        if self.forget_at is None or self.forget_at <= now:
            return Throttle(forget_at=now)
        return self

    def delayed(self, now: datetime) -> bool:
        return self.delayed_until is not None and self.delayed_until > now

    def counted(self, now: datetime, free: int, policy: ThrottlePolicy) -> Throttle:
        """One more failure, counted before the password is checked."""
        failures = self.failures + 1
        delay = policy.delay_after(failures, free)
        delayed_until = None if delay is None else now + delay
        return replace(
            self,
            failures=failures,
            last_failure_at=now,
            delayed_until=delayed_until,
            forget_at=(delayed_until or now) + policy.longest_delay,
        )

    def taken_back(self, now: datetime, free: int) -> Throttle:
        """The count of an attempt that turned out to be right, taken back again.

        Below ``free`` failures there is no delay: one that this attempt's count
        set off goes with it.
        """
        failures = max(0, self.failures - 1)
        if failures == 0:
            return Throttle(forget_at=now)
        delayed_until = self.delayed_until if failures >= free else None
        return replace(self, failures=failures, delayed_until=delayed_until)


@dataclass(frozen=True)
class Attempt:
    """The three records one sign-in attempt reads and writes, in lock order."""

    address: Throttle
    username_at_address: Throttle
    username: Throttle


@dataclass(frozen=True)
class Admission:
    """Whether to check the password now, and the records to store either way."""

    records: Attempt
    retry_at: datetime | None
    """None: check the password. Otherwise refused until then."""
    username_was_delayed: bool
    """The username was already delayed when this attempt got past it (a clean address)."""
    address_delayed: bool = False
    """Refused by rule 1: the address is delayed, whatever the username."""
    address_has_failed: bool = False
    """The address had failures remembered before this attempt. Its password is
    checked after those of addresses that have not (the hash pool's second
    level): in a flood the owner, from a clean address, is not queued behind
    the guesses of addresses that have already failed."""

    def retry_after_seconds(self, now: datetime) -> int:
        assert self.retry_at is not None
        return retry_after_seconds(self.retry_at, now)


def retry_after_seconds(until: datetime, now: datetime) -> int:
    """Whole seconds to wait, at least one: a client told 0 would come straight back."""
    return max(1, math.ceil((until - now).total_seconds()))


def admit(attempt: Attempt, now: datetime, policy: ThrottlePolicy) -> Admission:
    """Decide one attempt (the rule in this module's docstring) and count it."""
    address = attempt.address.remembered(now)
    here = attempt.username_at_address.remembered(now)
    username = attempt.username.remembered(now)
    if address.delayed(now):
        refused = replace(address, refused=address.refused + 1)
        return Admission(
            Attempt(refused, here, username), address.delayed_until, False, address_delayed=True
        )
    if username.delayed(now) and here.failures > 0:
        refused = replace(username, refused=username.refused + 1)
        return Admission(Attempt(address, here, refused), username.delayed_until, False)
    counted = Attempt(
        address.counted(now, policy.address_failures, policy),
        # No delay of its own: only whether it has failed lately matters.
        here.counted(now, free=_NEVER, policy=policy),
        username.counted(now, policy.username_failures, policy),
    )
    return Admission(
        counted,
        None,
        username_was_delayed=username.delayed(now),
        address_has_failed=address.failures > 0,
    )


@dataclass(frozen=True)
class RememberedRefusal:
    """A refusal the records decided, to be repeated without reading them until ``until``."""

    any_username: bool
    """Rule 1: the address is delayed, so every username from it is refused.
    Otherwise rule 2: only this username from this address."""
    until: datetime


def remembered_refusal(admission: Admission) -> RememberedRefusal | None:
    """What a refused attempt lets the worker refuse again without asking the records.

    Rule 1 holds until the address's delay ends. Rule 2 holds until the
    username's delay ends or this address's failure for it is forgotten,
    whichever comes first: after either, the records may admit the attempt.
    """
    if admission.retry_at is None:
        return None
    records = admission.records
    if admission.address_delayed:
        return RememberedRefusal(any_username=True, until=admission.retry_at)
    here_forgotten = records.username_at_address.forget_at
    until = (
        admission.retry_at if here_forgotten is None else min(admission.retry_at, here_forgotten)
    )
    return RememberedRefusal(any_username=False, until=until)


@dataclass(frozen=True)
class Pace:
    """How often one client address may try to sign in at all, right or wrong.

    The delays above decide which passwords are checked; the pace bounds how many
    requests an address may send the sign-in routes, checked or not: ``burst`` at
    once, then one more per ``interval``. A client sending the next attempt the
    moment a 429 comes back is refused at the door (``platform.sign_in_door``),
    before its body is read, instead of costing a whole request each time.
    Per address, so the owner signing in from any other address never meets
    it; generous enough that a person, or an office behind one address, who
    sends a sign-in a second does not either. Like the delays, it admits nothing
    by itself: an attempt within the pace still goes through every rule above.
    """

    burst: int
    interval: timedelta


def paced(full_at: datetime | None, now: datetime, pace: Pace) -> tuple[datetime | None, datetime]:
    """One sign-in request from an address against its pace.

    ``full_at`` is when the address's allowance would be whole again (None or
    past: it is whole). Each request admitted moves it one ``interval`` on; a
    request that would move it more than ``burst`` intervals past now is
    refused. Returns (refused until then, or None: admitted; the new
    ``full_at``). A refused request costs the address nothing more: waiting
    until the time given is enough (as with the delays' ``Retry-After``).
    """
    start = now if full_at is None or full_at < now else full_at
    after = start + pace.interval
    if after - now > pace.burst * pace.interval:
        return start - (pace.burst - 1) * pace.interval, start
    return None, after


def after_success(
    attempt: Attempt, admission: Admission, now: datetime, policy: ThrottlePolicy
) -> Attempt:
    """The records once the password proved right.

    - username at this address: cleared: this address has proved itself.
    - username: cleared, forgiving the owner's own typing mistakes, unless it
      was already delayed when the attempt got past it (rule 2). Then an
      attack is under way from elsewhere, and clearing it would hand the
      attacker a fresh set of free guesses: only this attempt's count is
      taken back and the delay stays.
    - address: only this attempt's count is taken back. Others may share the
      address (an office behind one router), and clearing it would let anyone
      with an account of their own wipe the address's failures by signing in.
    """
    username = attempt.username.remembered(now)
    return Attempt(
        address=attempt.address.remembered(now).taken_back(now, policy.address_failures),
        username_at_address=Throttle(forget_at=now),
        username=(
            username.taken_back(now, policy.username_failures)
            if admission.username_was_delayed
            else Throttle(forget_at=now)
        ),
    )


ADMIN_CHANGES = ("deactivate", "change_role")
"""Changes that can take an admin's powers away (a reset or an unlock cannot)."""


def account_change_problem(
    change: str, *, acting_on_self: bool, target_is_active_admin: bool, other_active_admins: int
) -> str | None:
    """Why an admin may not make ``change`` to an account, or None.

    Nobody deactivates themselves or changes their own role: a slip would lock
    them out mid-task, and another admin can always do it. And the last active
    admin is never deactivated or moved to another role, by anyone (the command
    line included), since then nobody could add or restore an account except by
    the database. Resets and unlocks take no power away and are always allowed.
    """
    if change not in ADMIN_CHANGES:
        return None
    if acting_on_self:
        return "You cannot deactivate your own account or change your own role."
    if target_is_active_admin and other_active_admins == 0:
        return "This is the last active admin: add or reactivate another admin first."
    return None
