"""The quarters whose figures have been reported, and so may no longer change silently."""

from __future__ import annotations

from piccolo.columns import UUID, Date, ForeignKey, Integer, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from programme.platform.tables import Account


class LockedQuarter(Table, tablename="locked_quarter"):
    """A UK financial quarter marked reported by an admin; writes dated in it are refused."""

    id = UUID(primary_key=True)
    quarter = Varchar(length=12, unique=True, help_text="The quarter's label, e.g. 'Q3 2021-22'.")
    first_day = Date(help_text="The quarter's first day.")
    last_day = Date(help_text="The quarter's last day.")
    locked_at = Timestamptz(default=TimestamptzNow(), help_text="When it was marked reported.")
    locked_by = ForeignKey(
        references=Account,
        null=True,
        on_delete=OnDelete.set_null,
        help_text="The admin who marked it reported.",
    )
    locked_by_username = Varchar(length=100, help_text="Who marked it, as they signed in.")
    revisions = Integer(
        default=0, help_text="Writes an admin let into it since (each audited with its reason)."
    )
    revised_at = Timestamptz(
        null=True, default=None, help_text="When a write last landed in it after it was locked."
    )
