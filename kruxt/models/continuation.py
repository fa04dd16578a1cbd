"""What the inputs of the long-running workflows (ticket, incident) share: when a run hands
over to a fresh one by continue-as-new."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

# ``history_limit: HistoryLimit = None`` on a workflow's input.
HistoryLimit = Annotated[
    int | None,
    Field(
        ge=10,
        description="Continue-as-new once the history has this many events (tests); "
        "otherwise when the server suggests it",
    ),
]
