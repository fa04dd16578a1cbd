"""JSON from outside (webhooks, Slack's interactions, the app's intake): every way it can be
unreadable is the same ``ValueError``, which the routes answer with a 4xx."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["loads"]


def loads(body: str | bytes) -> Any:
    """``json.loads(body)``, with a document nested deeper than Python's reader goes (a few
    kilobytes of ``[``) refused like any other bad JSON: that reader raises RecursionError,
    which no route would answer but with a 500.

    Raises:
        ValueError: not JSON, not UTF-8, or nested too deeply.
    """
    try:
        return json.loads(body)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
