"""Pydantic types that read JSON the way the OpenAPI documents describe it (JSON Schema).

Pydantic's lax ``int`` takes ``"5"`` and ``true``, which JSON Schema's ``integer`` refuses, and
its strict ``int`` refuses ``5.0``, which JSON Schema's ``integer`` accepts (it is the number 5).
Either way the document and the service would disagree about some request.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, Strict


def _whole_number(value: object) -> object:
    """A float without a fractional part as the int it is; anything else as it came."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# JSON Schema's integer: any number without a fractional part (5 and 5.0), never a string or a
# boolean.
JsonInt = Annotated[int, Strict(), BeforeValidator(_whole_number)]
