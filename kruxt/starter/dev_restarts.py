"""What ``kruxt dev`` does when its worker or API exits on its own: it starts it again, as the
production stack's supervisor does (compose's ``restart: unless-stopped``, systemd's
``Restart=``), unless it keeps exiting.

A worker's watchdog ends a wedged worker (``WEDGED_EXIT_CODE``) for a fresh one to take over,
and a killed worker's tickets are finished by the next; without a restart, one wedge stopped
the whole dev stack. A child that exits ``limit`` times within ``window`` seconds is crash
looping (a setting it refuses, a port it cannot have): starting it again would only hide why.
"""

from __future__ import annotations

import signal
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from kruxt.workers.watchdog import WEDGED_EXIT_CODE

__all__ = ["RestartBudget", "exit_reason"]


@dataclass
class RestartBudget:
    """At most ``limit`` restarts within any ``window`` seconds (systemd's
    ``StartLimitBurst`` in ``StartLimitIntervalSec``)."""

    limit: int = 3
    window: float = 60.0
    clock: Callable[[], float] = time.monotonic
    _restarts: deque[float] = field(default_factory=deque, init=False, repr=False)

    def allow(self) -> bool:
        """Whether one more restart fits now; a restart allowed is counted."""
        now = self.clock()
        while self._restarts and now - self._restarts[0] >= self.window:
            self._restarts.popleft()
        if len(self._restarts) >= self.limit:
            return False
        self._restarts.append(now)
        return True


def exit_reason(name: str, returncode: int) -> str:
    """Why a child ended, in words: its signal, the watchdog's exit, or its code."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    if name == "worker" and returncode == WEDGED_EXIT_CODE:
        return f"exit code {returncode}: its watchdog found it wedged"
    return f"exit code {returncode}"
