"""The deployer's structured settings (the policy, the environments): YAML or JSON given as the
text of one variable or as a file named by another, checked against a pydantic model whose
errors name the field."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from kit.validation import validation_problems

Model = TypeVar("Model", bound=BaseModel)


class ConfigTextError(ValueError):
    """A structured setting is malformed; the message says which and where."""


def load_config_text(
    model: type[Model],
    text: str | None,
    file: Path | None,
    *,
    variable: str,
    what: str,
    root: str,
    error: type[ConfigTextError] = ConfigTextError,
) -> Model | None:
    """``model`` from ``text`` (the variable ``variable``) or from ``file`` (its ``_FILE``
    twin); None when neither is set. ``what`` names the setting in messages (``the deploy
    policy``), ``root`` the top of the field paths they name; ``error`` is raised."""
    if text and file is not None:
        raise error(f"set {variable} or {variable}_FILE, not both")
    source = variable
    if file is not None:
        source = str(file)
        try:
            text = file.read_text()
        except OSError as exc:
            raise error(f"cannot read {what} {file}: {exc}") from None
    if not text:
        return None
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise error(f"{what} in {source} is not YAML or JSON: {exc}") from None
    try:
        return model.model_validate(loaded or {})
    except ValidationError as exc:
        problems = validation_problems(exc, root)
        raise error(f"{what} in {source} is invalid: {problems}") from None
