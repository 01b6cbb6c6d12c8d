"""UK financial-year quarters, as contract monitoring counts them.

Q1 is April-June, Q2 July-September, Q3 October-December, Q4 January-March;
``Q3 2021-22`` is October-December 2021 and ``Q4 2021-22`` January-March 2022.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

FIRST_YEAR, LAST_YEAR = 1900, 2999
"""Financial years a label may name: any record's, and far from the calendar's ends (year 1
and 9999), where a quarter's first day or the quarters around it would have no date."""

_LABEL = re.compile(r"^\s*Q([1-4])\s+(\d{4})-(\d{2})\s*$")


@dataclass(frozen=True, order=True)
class Quarter:
    year: int
    """The calendar year the financial year starts in (2021 for 2021-22)."""
    number: int

    @classmethod
    def of(cls, day: date) -> Quarter:
        if day.month >= 4:
            return cls(day.year, (day.month - 4) // 3 + 1)
        return cls(day.year - 1, 4)

    @classmethod
    def parse(cls, label: str) -> Quarter:
        """Read a label like 'Q3 2021-22'; ValueError in plain words if it is not one."""
        match = _LABEL.match(label)
        if not match:
            raise ValueError(f"{label!r} is not a quarter like 'Q3 2021-22'")
        number, year, short_next = int(match[1]), int(match[2]), int(match[3])
        if (year + 1) % 100 != short_next:
            raise ValueError(f"{label!r}: a financial year runs from one year to the next")
        if not FIRST_YEAR <= year <= LAST_YEAR:
            raise ValueError(f"{label!r}: give a year from {FIRST_YEAR} to {LAST_YEAR}")
        return cls(year, number)

    @property
    def label(self) -> str:
        return f"Q{self.number} {self.year}-{(self.year + 1) % 100:02d}"

    @property
    def first_day(self) -> date:
        month = 3 * (self.number - 1) + 4
        return date(self.year + (month > 12), (month - 1) % 12 + 1, 1)

    @property
    def last_day(self) -> date:
        following = self.next()
        return date.fromordinal(following.first_day.toordinal() - 1)

    def next(self) -> Quarter:
        return Quarter(self.year + self.number // 4, self.number % 4 + 1)

    def previous(self) -> Quarter:
        return Quarter(self.year - (self.number == 1), (self.number - 2) % 4 + 1)

    def __str__(self) -> str:
        return self.label


def quarters_between(first: Quarter, last: Quarter) -> list[Quarter]:
    """Every quarter from ``first`` to ``last`` inclusive."""
    if last < first:
        raise ValueError(f"{last.label} is before {first.label}")
    out = [first]
    while out[-1] != last:
        out.append(out[-1].next())
    return out


def quarter_sql(column: str) -> str:
    """A SQL expression giving the quarter label of a date column (for GROUP BY)."""
    month = f"EXTRACT(MONTH FROM {column})::int"
    fy = f"(EXTRACT(YEAR FROM {column})::int - CASE WHEN {month} < 4 THEN 1 ELSE 0 END)"
    number = f"((({month} + 8) % 12) / 3 + 1)"
    return f"'Q' || {number} || ' ' || {fy} || '-' || lpad((({fy} + 1) % 100)::text, 2, '0')"
