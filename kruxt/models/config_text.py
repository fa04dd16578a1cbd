"""Configuration given as YAML or JSON text (an environment variable or a file), read into a
model with errors that say where and what."""

from __future__ import annotations

from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

__all__ = ["parse_config", "validation_problems"]

Model = TypeVar("Model", bound=BaseModel)


def validation_problems(exc: ValidationError, *, whole: str) -> str:
    """Each error as ``field.path: message`` on one line; ``whole`` names a top-level one."""
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or whole}: {err['msg']}" for err in exc.errors()
    )


def parse_config(
    model: type[Model], text: str | None, *, source: str, expected: str, whole: str
) -> Model | None:
    """The model from YAML or JSON text; None when the text holds nothing (use the default).

    Raises:
        ValueError: ``invalid <source>: ...``: not YAML/JSON, not an object (``expected``
            says of what), or invalid for the model (each field and what is wrong with it).
    """
    if text is None or not text.strip():
        return None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"invalid {source}: not JSON or YAML ({exc})") from None
    if data is None:
        return None
    if not isinstance(data, dict):
        raise ValueError(f"invalid {source}: expected an object with {expected}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValueError(f"invalid {source}: {validation_problems(exc, whole=whole)}") from None
