"""UK phone numbers a person can be rung on."""

from __future__ import annotations

import phonenumbers

_PERSONAL_LINES = {
    phonenumbers.PhoneNumberType.FIXED_LINE,
    phonenumbers.PhoneNumberType.MOBILE,
    phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    phonenumbers.PhoneNumberType.VOIP,
    phonenumbers.PhoneNumberType.PERSONAL_NUMBER,
}
"""Lines a person answers; not freephone, premium-rate, pager or company numbers."""


def dialable_uk_number(value: str) -> str | None:
    """The number in E.164 if it is a valid UK number someone could ring, else None."""
    try:
        number = phonenumbers.parse(value, "GB")
    except phonenumbers.NumberParseException:
        return None
    # number_type() is UNKNOWN for an invalid number, so one call both validates the
    # number and says what kind of line it is (is_valid_number would work it out twice).
    if number.country_code != 44 or phonenumbers.number_type(number) not in _PERSONAL_LINES:
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
