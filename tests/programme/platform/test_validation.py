"""Input checks report every problem at once, not one per round trip."""

from __future__ import annotations

from typing import Annotated

import msgspec
import pytest

from programme.platform.errors import InvalidInput
from programme.platform.validation import field_errors, parse


class Example(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1)]
    count: Annotated[int, msgspec.Meta(ge=0)]
    tags: list[str] = []


def test_every_field_problem_is_listed():
    problems = field_errors(Example, {"name": "", "count": -1, "tags": [1], "colour": "red"})
    assert {(p.code, p.field) for p in problems} == {
        ("unknown_field", "colour"),
        ("invalid", "name"),
        ("invalid", "count"),
        ("invalid", "tags[0]"),
    }


def test_missing_required_fields_are_listed():
    problems = field_errors(Example, {})
    assert {(p.code, p.field) for p in problems} == {("required", "name"), ("required", "count")}


def test_a_body_that_is_not_an_object_is_one_clear_problem():
    assert [p.message for p in field_errors(Example, [1, 2])] == ["The body must be a JSON object."]


def test_parse_returns_the_struct_or_raises_with_all_problems():
    assert parse(Example, {"name": "x", "count": "3"}) == Example(name="x", count=3)
    with pytest.raises(InvalidInput) as raised:
        parse(Example, {"name": "", "count": "many"})
    assert len(raised.value.errors) == 2
