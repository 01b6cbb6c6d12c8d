"""One paging shape for every list that can grow: ``limit``/``offset`` in, ``total`` out.

A list route declares ``limit: Limit = DEFAULT_LIMIT`` and ``offset: Offset = 0``
(``programme.platform.http_inputs``: the HTTP side of the same bounds) and
answers ``Page[Item]``: the items of this page, how many there are in all
(under the same filters), and the limit and offset it was given. Clients page
with ``offset += limit`` until ``offset >= total``. The bounds keep every value
inside what PostgreSQL takes (its OFFSET stops at 2^63-1), and no page is so
large that one request reads a whole table at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import msgspec

MAX_OFFSET = 1_000_000_000
"""Beyond any table's size; PostgreSQL's OFFSET itself stops at 2^63-1."""

MAX_LIMIT = 500
"""The most items one page holds."""

DEFAULT_LIMIT = 50

T = TypeVar("T")


class Page(msgspec.Struct, Generic[T]):
    """One page of a list: its items, how many match in all, and the paging asked for."""

    items: list[T]
    total: int
    """How many items match in all, across every page."""
    limit: int
    offset: int


@dataclass(frozen=True)
class Paging:
    """A page asked for, as services take it."""

    limit: int = DEFAULT_LIMIT
    offset: int = 0

    def page(self, items: Sequence[T], total: int) -> Page[T]:
        return Page(items=list(items), total=total, limit=self.limit, offset=self.offset)

    def slice(self, items: Sequence[T]) -> Page[T]:
        """Page a list already read whole (a computed list, not a table)."""
        return self.page(items[self.offset : self.offset + self.limit], len(items))
