"""KBO/BCE enterprise numbers: parse any accepted written form into the canonical 10 digits."""

from __future__ import annotations

import re

_SEPARATORS = re.compile(r"[\s.\-]")


class InvalidEnterpriseNumber(ValueError):
    pass


def canonical_enterprise_number(text: str) -> str:
    """`0316.380.841`, `BE0316380841`, `0316 380 841` → `0316380841`.

    Ten digits, the first 0 or 1, the last two = 97 − (first eight mod 97).
    Raises InvalidEnterpriseNumber with a reason a person can act on.
    """
    text = text or ""
    value = text if len(text) == 10 and text.isdigit() else _SEPARATORS.sub("", text)  # mostly plain digits
    if value[:2].upper() == "BE":
        value = value[2:]
    if not value:
        raise InvalidEnterpriseNumber("is required")
    if not value.isascii() or not value.isdigit() or len(value) != 10:
        raise InvalidEnterpriseNumber("must be 10 digits (for example 0316.380.841)")
    if value[0] not in "01":
        raise InvalidEnterpriseNumber("must start with 0 or 1")
    if 97 - int(value[:8]) % 97 != int(value[8:]):
        raise InvalidEnterpriseNumber("has wrong check digits (mod 97)")
    return value
