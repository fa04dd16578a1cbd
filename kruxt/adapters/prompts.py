"""Versioned prompt files: ``prompts/<name>/<version>.md`` at the project root.

A prompt is a file under version control, never a string in code, so that every LLM run can
record exactly which prompt text it used (its name, version and SHA-256).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from kruxt.adapters.settings import PROJECT_ROOT

__all__ = ["DEFAULT_PROMPTS_DIR", "Prompt", "PromptNotFoundError", "load_prompt"]

DEFAULT_PROMPTS_DIR = PROJECT_ROOT / "prompts"
PROMPT_SUFFIX = ".md"
# Names and versions become path segments: nothing that could climb out of the prompts folder.
_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class Prompt:
    """One version of a prompt, with the digest of its exact text."""

    name: str
    version: str
    text: str
    sha256: str

    @property
    def ref(self) -> str:
        """``<name>/<version>``, as automation-run records name the prompt."""
        return f"{self.name}/{self.version}"


class PromptNotFoundError(FileNotFoundError):
    """The requested prompt version has no file; the message names the path and what exists."""


def load_prompt(name: str, version: str, prompts_dir: Path = DEFAULT_PROMPTS_DIR) -> Prompt:
    """Read ``<prompts_dir>/<name>/<version>.md``.

    Raises:
        ValueError: the name or version is not a plain path segment.
        PromptNotFoundError: the file does not exist.
    """
    for label, segment in (("name", name), ("version", version)):
        if not _SEGMENT.fullmatch(segment) or ".." in segment:
            raise ValueError(f"invalid prompt {label} {segment!r}: use letters, digits, '_-.'")
    path = prompts_dir / name / f"{version}{PROMPT_SUFFIX}"
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise PromptNotFoundError(
            f"prompt {name}/{version} not found: {path} does not exist "
            f"(available versions of {name!r}: {_available(prompts_dir / name)})"
        ) from None
    return Prompt(
        name=name,
        version=version,
        text=data.decode("utf-8"),
        sha256=hashlib.sha256(data).hexdigest(),
    )


def _available(folder: Path) -> str:
    """The versions present in a prompt's folder, for error messages."""
    if not folder.is_dir():
        return "none, the folder does not exist"
    versions = sorted(p.stem for p in folder.glob(f"*{PROMPT_SUFFIX}"))
    return ", ".join(versions) or "none"
