"""The README's tables (API routes, web pages) list the routes the app serves, with their
methods: all of them.

Each route cell is a list of `METHOD[/METHOD] /path` items; an item with no
method takes the previous item's.
"""

from __future__ import annotations

import re
from pathlib import Path

from programme.app import create_app
from programme.platform.accounts import access
from programme.platform.settings import get_settings

README = Path(__file__).resolve().parent.parent / "README.md"
ITEM = re.compile(r"^(?:(?P<methods>[A-Z]+(?:/[A-Z]+)*) )?(?P<path>/\S*)$")


def _shape(path: str) -> str:
    """``/referrals/{referral_id:uuid}`` and ``/referrals/{id}`` alike as ``/referrals/{}``."""
    return re.sub(r"\{[^}]*\}", "{}", path)


def _table(heading: str = "## API overview") -> list[tuple[str, str, bool]]:
    """(method, path, public) for every route in the section's table."""
    section = README.read_text().split(heading, 1)[1].split("\n## ", 1)[0]
    # The route table is the section's first table (the error codes come later).
    first_table = section.split("\n| ", 1)[1].split("\n\n", 1)[0]
    rows = [line for line in ("| " + first_table).splitlines() if line.startswith("| `")]
    listed = []
    for row in rows:
        route_cell, roles_cell = row.split("|")[1:3]
        methods: list[str] = []
        for item in re.findall(r"`([^`]+)`", route_cell):
            match = ITEM.match(item)
            assert match, f"not `METHOD /path`: {item!r} in {row!r}"
            methods = match["methods"].split("/") if match["methods"] else methods
            assert methods, f"no method for {item!r}"
            for method in methods:
                listed.append((method, match["path"], roles_cell.strip() == "public"))
    return listed


def _tables() -> list[tuple[str, str, bool]]:
    return _table() + _table("## Web pages")


def test_the_table_is_there_and_long() -> None:
    assert len(_table()) >= 35


def test_the_pages_table_lists_pages_only() -> None:
    pages = _table("## Web pages")
    assert ("GET", "/sign-in", True) in pages
    assert not any(path.startswith(("/auth", "/referrals")) for _, path, _ in pages)


def test_every_route_in_the_readme_is_served_with_that_method() -> None:
    app = create_app(get_settings())
    served = {
        (method, _shape(path)): public for method, path, _, public in access.routes_and_roles(app)
    }
    missing = [(m, p) for m, p, _ in _tables() if (m, _shape(p)) not in served]
    assert missing == []
    wrongly_public = [(m, p) for m, p, public in _tables() if served[(m, _shape(p))] != public]
    assert wrongly_public == []


def test_every_route_the_app_serves_is_in_the_readme() -> None:
    app = create_app(get_settings())
    listed = {(method, _shape(path)) for method, path, _ in _tables()}
    unlisted = [
        (method, path)
        for method, path, _, _ in access.routes_and_roles(app)
        if not path.startswith(access.OPENAPI_PATH) and (method, _shape(path)) not in listed
    ]
    assert unlisted == []
