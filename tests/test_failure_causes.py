"""An error whose causes loop (asyncpg can chain them so) still reaches history as itself."""

from __future__ import annotations

import itertools
import uuid
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

# The sandbox re-imports this module for its workflow: asyncpg's extension modules imported
# twice crash the interpreter later (a segfault in the next test's connect).
with workflow.unsafe.imports_passed_through():
    import asyncpg
    from temporalio.api.failure.v1 import Failure
    from temporalio.converter import PayloadConverter
    from temporalio.testing import WorkflowEnvironment
    from temporalio.worker import Worker

    from kruxt.adapters.temporal_client import (
        MAX_FAILURE_CAUSES,
        BoundedCauseFailureConverter,
        cut_cause_loop,
    )

PAYLOADS = PayloadConverter.default


def looped_connection_error() -> asyncpg.ConnectionDoesNotExistError:
    """A lost connection whose cause's cause is itself again."""
    lost = asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation")
    refused = ConnectionRefusedError(111, "Connect call failed")
    lost.__cause__ = refused
    refused.__cause__ = lost
    return lost


def causes(failure: Failure) -> list[str]:
    """The messages down a failure's chain of causes."""
    found = [failure.message]
    while failure.HasField("cause"):
        failure = failure.cause
        found.append(failure.message)
    return found


def test_a_cause_loop_is_cut_where_it_repeats() -> None:
    failure = Failure()
    BoundedCauseFailureConverter().to_failure(looped_connection_error(), PAYLOADS, failure)
    assert causes(failure) == [
        "connection was closed in the middle of operation",
        "[Errno 111] Connect call failed",
    ]
    assert failure.application_failure_info.type == "ConnectionDoesNotExistError"


def test_a_context_loop_is_cut_too() -> None:
    """An ApplicationError raised while handling another follows ``__context__``."""
    outer = ApplicationError("step failed", type="StepFailed")
    inner = OSError("socket closed")
    outer.__context__ = inner
    inner.__cause__ = outer
    failure = Failure()
    BoundedCauseFailureConverter().to_failure(outer, PAYLOADS, failure)
    assert causes(failure) == ["step failed", "socket closed"]


def test_a_long_chain_keeps_its_first_links() -> None:
    errors = [RuntimeError(f"error {i}") for i in range(3 * MAX_FAILURE_CAUSES)]
    for error, cause in itertools.pairwise(errors):
        error.__cause__ = cause
    cut_cause_loop(errors[0])
    failure = Failure()
    BoundedCauseFailureConverter().to_failure(errors[0], PAYLOADS, failure)
    assert causes(failure) == [f"error {i}" for i in range(MAX_FAILURE_CAUSES + 1)]


def test_a_short_chain_is_left_whole() -> None:
    first, second = RuntimeError("first"), RuntimeError("second")
    first.__cause__ = second
    cut_cause_loop(first)
    assert first.__cause__ is second and second.__cause__ is None


@activity.defn
async def lose_the_connection() -> None:
    raise looped_connection_error()


@workflow.defn
class LosesItsConnection:
    @workflow.run
    async def run(self, attempts: int) -> list[str]:
        # A workflow of no argument here made mypy type other modules' handles wrong.
        try:
            await workflow.execute_activity(
                lose_the_connection,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(maximum_attempts=attempts),
            )
        except ActivityError as err:
            cause = err.cause
            assert isinstance(cause, ApplicationError)
            return [cause.type or "", cause.message]
        return []


async def test_an_activity_failing_with_a_cause_loop_reports_its_own_error(
    ts_env: WorkflowEnvironment,
) -> None:
    """Through a real worker and the project's encrypting converter: the workflow sees the
    asyncpg error, not "Failed building exception result: maximum recursion depth"."""
    queue = f"tq-{uuid.uuid4().hex[:8]}"
    async with Worker(
        ts_env.client,
        task_queue=queue,
        workflows=[LosesItsConnection],
        activities=[lose_the_connection],
    ):
        seen = await ts_env.client.execute_workflow(
            LosesItsConnection.run, 1, id=f"loop-{queue}", task_queue=queue
        )
    assert seen == [
        "ConnectionDoesNotExistError",
        "connection was closed in the middle of operation",
    ]
