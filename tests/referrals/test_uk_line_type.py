"""The phone check's own walk to a number's line type gives exactly what
``phonenumbers.number_type`` gives, for every kind of +44 number: the UK's, the Crown
Dependencies' (Guernsey, Jersey, the Isle of Man), invalid ones and short ones."""

from __future__ import annotations

import random

import phonenumbers

from referrals.rules import dialable_uk_number, uk_line_type

PREFIXES = (
    "01", "011", "0114", "012", "013", "014", "01481", "01534", "01624", "015", "016", "017",
    "018", "019", "02", "020", "023", "028", "029", "03", "030", "033", "05", "055", "056",
    "07", "0700", "071", "074", "075", "07624", "0776", "07781", "07797", "07839", "07911",
    "08", "0800", "0808", "0843", "0870", "09", "0906", "0", "+44", "+441", "+447",
)  # fmt: skip


def numbers(count: int) -> list[str]:
    draw = random.Random(15)
    found = []
    for _ in range(count):
        prefix = draw.choice(PREFIXES)
        length = draw.choice((8, 9, 10, 10, 10, 11, 12)) - len(prefix) + 1
        found.append(prefix + "".join(draw.choice("0123456789") for _ in range(max(length, 1))))
    return found


def test_every_kind_of_uk_number_gets_the_line_type_number_type_gives():
    kinds = set()
    checked = 0
    for text in numbers(20_000):
        try:
            number = phonenumbers.parse(text, "GB")
        except phonenumbers.NumberParseException:
            continue  # refused before any type is worked out, as by dialable_uk_number
        if number.country_code != 44:  # "00..." dials abroad: the check stops before the type
            continue
        checked += 1
        expected = phonenumbers.number_type(number)
        assert uk_line_type(number) == expected, text
        kinds.add(expected)
    # The draw reaches landlines, mobiles, pagers, premium, toll-free, invalid ones...
    assert len(kinds) >= 6, kinds
    assert checked > 15_000


def test_the_crown_dependencies_numbers_are_typed_by_their_own_region():
    for text in ("01481 256789", "07781 123456", "01534 123456", "07797 123456",
                 "01624 612345", "07624 123456", "07400 123456", "0114 496 0123"):  # fmt: skip
        number = phonenumbers.parse(text, "GB")
        assert uk_line_type(number) == phonenumbers.number_type(number), text
        assert dialable_uk_number(text) is not None, text
