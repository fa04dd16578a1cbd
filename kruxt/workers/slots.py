"""Workflow-task slots that finish the tickets a worker has started before taking new ones.

The SDK hands out workflow-task slots first come, first served, to the sticky pollers (tasks
of workflows this worker already runs) and the normal poller (new workflows, and tasks moved
off a sticky queue). In a burst the normal poller keeps admitting new tickets, so every
started ticket is in flight at once and they advance in lockstep; once they outnumber
``max_cached_workflows`` the LRU cache never holds the one about to wake, and every workflow
task is a full replay of its history (``bench.burst``: 300 at once, cache 100, 176 s against
51 s with the cache at 1000, and past the workflow-task timeout the worker can stall). Here a
normal poll is only granted while no sticky task is being processed (nor was for ``quiet``
seconds), or after it waited ``max_wait``: new tickets are taken when the worker has room for
them, the rest wait in the server's queue (same bench: 38-45 s at cache 100 and at 1000).

Not the default (``KRUXT_WORKFLOW_SLOTS=sticky-first`` turns it on): in an early
10,000-ticket scale run the worker wedged with it (100 slots reserved, the SDK reporting 56 in
use, no poller), and its replacement within seconds. The SDK's own slots wedged in another run
(``kruxt.workers.watchdog`` ends a wedged worker's process), and a later 10,000-ticket run with
it was clean, so it is not shown to be the cause, nor shown safe. The benches take it with
``BENCH_STICKY_FIRST=1``.
"""

from __future__ import annotations

import asyncio
import threading
import time

from temporalio.worker import (
    CustomSlotSupplier,
    SlotMarkUsedContext,
    SlotPermit,
    SlotReleaseContext,
    SlotReserveContext,
    WorkflowSlotInfo,
)

RECHECK_SECONDS = 0.01


class _Permit(SlotPermit):
    """A slot permit that remembers whether a sticky task used it."""

    def __init__(self) -> None:
        self.sticky = False


class StickyFirstSlots(CustomSlotSupplier):
    """At most ``slots`` workflow tasks at once; sticky polls first (see the module doc)."""

    def __init__(self, slots: int, *, quiet: float = 0.0, max_wait: float = 0.5) -> None:
        self._slots = slots
        self._quiet = quiet
        self._max_wait = max_wait
        # The SDK's core calls mark/release from its own threads, reserve on the event loop.
        self._lock = threading.Lock()
        self._reserved = 0
        self._sticky_busy = 0
        self._sticky_seen = 0.0  # when a sticky task last finished

    async def reserve_slot(self, ctx: SlotReserveContext) -> SlotPermit:
        """Wait for a free slot; a non-sticky poll also waits for the sticky work to pause."""
        since = time.monotonic()
        while True:
            first = ctx.is_sticky or time.monotonic() - since >= self._max_wait
            permit = self._grant(wait_for_quiet=not first)
            if permit is not None:
                return permit
            await asyncio.sleep(RECHECK_SECONDS)

    def try_reserve_slot(self, ctx: SlotReserveContext) -> SlotPermit | None:
        """An eager task: a slot if one is free, never waiting."""
        return self._grant(wait_for_quiet=False)

    def mark_slot_used(self, ctx: SlotMarkUsedContext) -> None:
        """Count the sticky tasks being processed."""
        info = ctx.slot_info
        if (
            isinstance(ctx.permit, _Permit)
            and isinstance(info, WorkflowSlotInfo)
            and info.is_sticky
        ):
            with self._lock:
                ctx.permit.sticky = True
                self._sticky_busy += 1

    def release_slot(self, ctx: SlotReleaseContext) -> None:
        """Give the slot back."""
        with self._lock:
            self._reserved -= 1
            if isinstance(ctx.permit, _Permit) and ctx.permit.sticky:
                ctx.permit.sticky = False
                self._sticky_busy -= 1
                self._sticky_seen = time.monotonic()

    def counts(self) -> tuple[int, int]:
        """Slots reserved now, and how many of them sticky tasks are using (for diagnostics)."""
        with self._lock:
            return self._reserved, self._sticky_busy

    def _grant(self, *, wait_for_quiet: bool) -> _Permit | None:
        with self._lock:
            if self._reserved >= self._slots:
                return None
            busy = self._sticky_busy > 0 or time.monotonic() - self._sticky_seen < self._quiet
            if wait_for_quiet and busy:
                return None
            self._reserved += 1
            return _Permit()
