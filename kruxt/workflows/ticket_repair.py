"""Text that Postgres (or intake) refuses: recognising the refusal, repairing the intake.

A ticket that got past intake's checks (an older client, a new channel) must not retry
forever: the workflow stores it repaired, with U+FFFD for every refused character, and a
person reads it.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from kruxt.models.text import BAD_DATA_ERROR, replace_unstorable
    from kruxt.models.tickets import Requester, TicketIntake

__all__ = ["bad_data", "repaired"]


def bad_data(err: ActivityError) -> bool:
    """The activity refused its input as data no retry can store (``BadTicketData``)."""
    cause = err.cause
    return isinstance(cause, ApplicationError) and cause.type == BAD_DATA_ERROR


def repaired(intake: TicketIntake) -> TicketIntake:
    """The intake with every character Postgres (or intake) refuses replaced by U+FFFD."""
    requester = intake.requester
    return intake.model_copy(
        update={
            "external_id": replace_unstorable(intake.external_id),
            "account_id": replace_unstorable(intake.account_id) if intake.account_id else None,
            "subject": replace_unstorable(intake.subject),
            "body": replace_unstorable(intake.body),
            "requester": Requester.model_construct(
                id=replace_unstorable(requester.id),
                email=requester.email,
                name=replace_unstorable(requester.name),
            ),
        }
    )
