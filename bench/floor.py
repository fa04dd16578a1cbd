"""The floor the pipeline is measured against: a workflow of the ticket's shape that does
nothing, so what it costs is Temporal's and the worker's share alone.

It runs ``steps`` no-op activities one after another (each a workflow task, as the ticket's
are), then waits for a signal, as an answered ticket waits for its customer.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow


class Noop:
    """The floor's one activity; it counts the workflows that reached their last step, so the
    bench learns the floor is done without asking the server (the ticket side asks PostgreSQL
    one count per poll; reading five floors' histories each poll cost the floor side more)."""

    def __init__(self, steps: int) -> None:
        self.steps = steps
        self.finished = 0

    @activity.defn(name="noop")
    async def noop(self, step: int) -> int:
        """Nothing; answers its step so the result is a payload like any other."""
        if step == self.steps - 1:
            self.finished += 1
        return step


@workflow.defn
class FloorWorkflow:
    """``steps`` no-op activities, then a wait for ``release``."""

    def __init__(self) -> None:
        self._released = False

    @workflow.run
    async def run(self, steps: int) -> None:
        for step in range(steps):
            await workflow.execute_activity_method(
                Noop.noop, step, start_to_close_timeout=timedelta(seconds=30)
            )
        await workflow.wait_condition(lambda: self._released)

    @workflow.signal
    def release(self) -> None:
        self._released = True
