"""The README's "where rules live" table names real things: every entry imports."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def _entries() -> list[str]:
    text = README.read_text()
    section = text.split("### Where rules live", 1)[1].split("\n\n", 2)[1]
    return re.findall(r"\| `([a-z_.]+\.[A-Za-z_]+)` \|", section)


def test_the_table_is_there_and_long() -> None:
    assert len(_entries()) >= 30


def test_every_rule_the_readme_names_exists_where_it_says() -> None:
    missing = []
    for dotted in _entries():
        module_name, name = dotted.rsplit(".", 1)
        module = importlib.import_module(module_name)
        if not hasattr(module, name):
            missing.append(dotted)
    assert missing == []
