"""Decoding input into msgspec Structs while reporting *every* problem.

msgspec stops at the first error, which is right for speed but wrong for a
referrer correcting a form: they need the whole list at once. The fast path is
a plain ``msgspec.convert``; only when it fails is the input walked field by
field to collect the rest.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from programme.platform.errors import FieldError, InvalidInput

S = TypeVar("S", bound=msgspec.Struct)


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
            FieldError("unknown_field", str(name), "This field is not recognised.")
            for name in raw
            if name not in known
        )
    for f in fields:
        if f.encode_name not in raw:
            if f.required:
                errors.append(FieldError("required", f.encode_name, "This field is required."))
            continue
        try:
            msgspec.convert(raw[f.encode_name], f.type, strict=False)
        except msgspec.ValidationError as exc:
            message, inner = _path_of(exc)
            separator = "" if inner.startswith("[") or not inner else "."
            field = f"{f.encode_name}{separator}{inner}"
            errors.append(FieldError("invalid", field, message))
    if not errors:
        # Individually valid fields can still fail together (__post_init__ rules).
        try:
            msgspec.convert(raw, struct_type, strict=False)
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
