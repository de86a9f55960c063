"""Pydantic's validation errors as one readable line."""

from __future__ import annotations

from pydantic import ValidationError


def validation_problems(exc: ValidationError, root: str) -> str:
    """Each error as ``path: message`` (``root`` names the whole document), joined by ``; ``."""
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or root}: {error['msg']}"
        for error in exc.errors()
    )
