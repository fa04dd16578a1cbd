"""How every notification writes a duration: one formatter, so Slack and mail agree."""

from __future__ import annotations

__all__ = ["format_duration"]


def format_duration(seconds: float) -> str:
    """``seconds`` rounded to minutes: "45 min", "2 h", "1 h 30 min"."""
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest:02d} min" if rest else f"{hours} h"
