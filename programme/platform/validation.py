"""Reading input: one vocabulary of problems, every problem at once.

msgspec stops at the first error, which is right for speed but wrong for a
referrer correcting a form: they need the whole list at once. The fast path is
a plain ``msgspec.convert``; only when it fails is the input walked field by
field to collect the rest.

Every problem is a ``FieldError`` whose ``code`` says what kind of problem it
is, in one vocabulary wherever the input came from (a JSON body, a query
parameter, a CSV cell):

- ``required``: the field is missing or blank;
- ``invalid``: the value cannot be read as what the field takes; the message
  says what it takes (``expected``), in the same words for every field of a kind
  (dates as YYYY-MM-DD, choices listed, whole numbers with their range);
- ``unknown_field``: the field is not one the request takes;
- ``future_date``: a date that has not happened yet;
- otherwise a code naming the rule the value breaks (``under_16``,
  ``out_of_area``, ...), which the message explains.
"""

from __future__ import annotations

import datetime as dt
import enum
import types
import uuid
from collections.abc import Iterable
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

import msgspec

from programme.platform.errors import FieldError, InvalidInput, UnreadableInput

S = TypeVar("S", bound=msgspec.Struct)

REQUIRED = "This field is required."
UNKNOWN_FIELD = "This field is not recognised."
DATE = "Expected a date as YYYY-MM-DD."
FUTURE = "Cannot be in the future."
NUL = "Contains a NUL character (\\u0000), which no text may hold."

MAX_JSON_DEPTH = 32
"""Deeper than any body the service takes; deeper still would exhaust the decoder's stack."""


def _choices(choices: Iterable[Any]) -> str:
    return "one of: " + ", ".join(str(choice) for choice in choices)


def one_of(choices: Iterable[Any]) -> str:
    """The message for a value that is not one of ``choices``: it always lists them."""
    return f"Expected {_choices(choices)}."


def _between(low: Any, high: Any, unit: str) -> str:
    if low is not None and high is not None:
        return f"{low} to {high}{unit}"
    if high is not None:
        return f"up to {high}{unit}"
    return f"{low}{unit} or more" if low is not None else unit.strip()


def _describe(annotation: Any, bounds: dict[str, Any]) -> str | None:
    """What a value of ``annotation`` looks like, as the object of 'Expected ...'."""
    origin = get_origin(annotation)
    if origin is Annotated:
        inner, *metadata = get_args(annotation)
        merged = dict(bounds)
        for meta in metadata:
            for name in ("ge", "le", "gt", "lt", "min_length", "max_length"):
                value = getattr(meta, name, None)
                if value is not None:
                    merged.setdefault(name, value)
        return _describe(inner, merged)
    if origin in (Union, types.UnionType):
        options = [a for a in get_args(annotation) if a is not type(None)]
        return _describe(options[0], bounds) if len(options) == 1 else None
    low = bounds.get("ge", None if bounds.get("gt") is None else bounds["gt"] + 1)
    high = bounds.get("le", None if bounds.get("lt") is None else bounds["lt"] - 1)
    shortest, longest = bounds.get("min_length"), bounds.get("max_length")
    if origin is Literal:
        return _choices(get_args(annotation))
    if origin is list:
        return "a list of " + _between(shortest, longest, " items")
    if not isinstance(annotation, type):
        return None
    if issubclass(annotation, enum.Enum):
        return _choices(member.value for member in annotation)
    if annotation is bool:
        return "true or false"
    if annotation is int:
        if low is not None and high is not None:
            return f"a whole number from {low} to {high}"
        return "a whole number" + (
            "" if low is None and high is None else f", {_between(low, high, '')}"
        )
    if annotation is dt.datetime:
        return "a date and time as YYYY-MM-DDTHH:MM:SS with a time zone"
    if annotation is dt.date:
        return DATE.removeprefix("Expected ").removesuffix(".")
    if annotation is uuid.UUID:
        return "an id (a UUID such as 1b4e28ba-2fa1-4d3b-a3f5-ef19b5a7633b)"
    if annotation is str:
        return (
            "text" if longest is None else "text of " + _between(shortest, longest, " characters")
        )
    if issubclass(annotation, msgspec.Struct | dict):
        return "a JSON object"
    return None


def expected(annotation: Any, **bounds: Any) -> str | None:
    """The message for a value that is not a valid ``annotation``, or None if it has no words.

    ``bounds`` adds limits declared beside the type (a query parameter's ge/le).
    """
    described = _describe(annotation, {k: v for k, v in bounds.items() if v is not None})
    return None if described is None else f"Expected {described}."


def _type_at(annotation: Any, path: str) -> Any:
    """The type of the item at ``path`` ('[0]', '[2][1]') inside ``annotation``, or None."""
    while path.startswith("["):
        while get_origin(annotation) is Annotated or get_origin(annotation) in (
            Union,
            types.UnionType,
        ):
            args = [a for a in get_args(annotation) if a is not type(None)]
            if get_origin(annotation) is not Annotated and len(args) != 1:
                return None
            annotation = args[0]
        if get_origin(annotation) is not list:
            return None
        annotation = get_args(annotation)[0]
        path = path[path.index("]") + 1 :]
    return annotation if not path else None


def _path_of(error: msgspec.ValidationError) -> tuple[str, str]:
    """Split msgspec's 'Expected ... - at `$.x`' into (message, field)."""
    text = str(error)
    message, _, where = text.partition(" - at `")
    field = where.rstrip("`").removeprefix("$").lstrip(".") if where else ""
    return message, field


def field_errors(struct_type: type[msgspec.Struct], raw: Any) -> list[FieldError]:
    """Every problem that stops ``raw`` becoming a ``struct_type``."""
    if not isinstance(raw, dict):
        return [FieldError("invalid", "", "The body must be a JSON object.")]
    errors: list[FieldError] = []
    fields = msgspec.structs.fields(struct_type)
    known = {f.encode_name for f in fields}
    config = struct_type.__struct_config__
    if config.forbid_unknown_fields:
        errors.extend(
            FieldError("unknown_field", str(name), UNKNOWN_FIELD)
            for name in raw
            if name not in known
        )
    for f in fields:
        if f.encode_name not in raw:
            if f.required:
                errors.append(FieldError("required", f.encode_name, REQUIRED))
            continue
        try:
            msgspec.convert(raw[f.encode_name], f.type, strict=True)
        except msgspec.ValidationError as exc:
            message, inner = _path_of(exc)
            separator = "" if inner.startswith("[") or not inner else "."
            field = f"{f.encode_name}{separator}{inner}"
            item_type = _type_at(f.type, inner)
            errors.append(FieldError("invalid", field, expected(item_type) or message))
    if not errors:
        # Individually valid fields can still fail together (__post_init__ rules).
        try:
            msgspec.convert(raw, struct_type, strict=True)
        except msgspec.ValidationError as exc:
            message, field = _path_of(exc)
            errors.append(FieldError("invalid", field, message))
    return errors


def parse(struct_type: type[S], raw: Any) -> S:
    """Convert ``raw`` to ``struct_type`` or raise ``InvalidInput`` listing every problem."""
    try:
        return msgspec.convert(raw, struct_type, strict=False)
    except msgspec.ValidationError:
        raise InvalidInput(errors=field_errors(struct_type, raw)) from None


def _unreadable(message: str) -> UnreadableInput:
    return UnreadableInput(errors=[FieldError("invalid", "", message)])


def _name(key: Any) -> str:
    return str(key).replace("\x00", "\\u0000")


def _inspect(value: Any) -> tuple[int, list[str]]:
    """How many containers deep ``value`` nests, and where a string in it (key or value)
    holds a NUL.

    Iterative, so a deep value cannot exhaust the stack of its checker either.
    """
    deepest = 0
    with_nul: list[str] = []
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        item, where, around = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                with_nul.append(where)
        elif isinstance(item, dict):
            deepest = max(deepest, around + 1)
            for key, inner in item.items():
                name = f"{where}.{_name(key)}" if where else _name(key)
                if "\x00" in str(key):
                    with_nul.append(name)
                stack.append((inner, name, around + 1))
        elif isinstance(item, list):
            deepest = max(deepest, around + 1)
            stack.extend((inner, f"{where}[{i}]", around + 1) for i, inner in enumerate(item))
    return deepest, sorted(with_nul)


def decode_json(body: bytes) -> Any:
    """A request body as JSON, refusing what no handler should be given.

    Not UTF-8, not JSON, or nested deeper than ``MAX_JSON_DEPTH``:
    ``UnreadableInput`` (400). A NUL character in any string, which PostgreSQL
    cannot store in text: ``InvalidInput`` (422) naming every field that holds one.
    """
    try:
        value = msgspec.json.decode(body)
    except UnicodeDecodeError:
        raise _unreadable("The body is not UTF-8 text.") from None
    except RecursionError:
        raise _unreadable(f"The body nests deeper than {MAX_JSON_DEPTH} levels.") from None
    except msgspec.DecodeError as exc:
        where = str(exc).removeprefix("JSON is malformed: ")
        raise _unreadable(f"The body is not valid JSON: {where}.") from None
    # Both walks are skipped when the bytes show they cannot find anything: a NUL can
    # only be written as the escape \u0000, and depth needs as many brackets.
    maybe_deep = body.count(b"[") + body.count(b"{") > MAX_JSON_DEPTH
    if maybe_deep or b"\\u0000" in body:
        depth, with_nul = _inspect(value)
        if depth > MAX_JSON_DEPTH:
            raise _unreadable(f"The body nests deeper than {MAX_JSON_DEPTH} levels.")
        if with_nul:
            raise InvalidInput(errors=[FieldError("invalid", name, NUL) for name in with_nul])
    return value
