"""Kubernetes resource quantities, compared by value (``1`` = ``1000m``, ``1Gi`` = ``1024Mi``)."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_QUANTITY = re.compile(
    r"([+-]?(?:\d+\.?\d*|\.\d+))(e[+-]?\d+|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?"
)
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}


def parse_quantity(value: object) -> Decimal | None:
    """A Kubernetes quantity (``500m``, ``256Mi``, ``1e3``) as a number; None if it is not one."""
    match = _QUANTITY.fullmatch(str(value).strip())
    if match is None:
        return None
    try:
        number = Decimal(match.group(1))
    except InvalidOperation:
        return None
    suffix = match.group(2) or ""
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    if suffix.startswith("e"):
        return number.scaleb(int(suffix[1:]))
    return number.scaleb(_DECIMAL.get(suffix, 0))
