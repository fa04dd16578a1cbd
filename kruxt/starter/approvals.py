"""Deciding approvals and requesting rollbacks: shared by the CLI, the API and Slack/email."""

from __future__ import annotations

import getpass
import logging
import os
import pwd
import uuid
from typing import Protocol

from pydantic import BaseModel
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from kruxt.adapters.approvers import Approver, ApproverDirectory
from kruxt.adapters.postgres.approvals import ApprovalStore
from kruxt.adapters.temporal_client import unavailable_as_error
from kruxt.models.approvals import (
    Decision,
    DecisionChannel,
    DecisionOutcome,
    RollbackRequest,
    TriageCorrection,
    Verdict,
)
from kruxt.models.text import replace_unstorable
from kruxt.models.tickets import workflow_id_for
from kruxt.starter.waiting import until_found
from kruxt.workflows.ticket import TicketWorkflow


class DecisionRefusedError(Exception):
    """The decision was not taken; the message says why (for the person who tried)."""


class UnknownStaffError(DecisionRefusedError):
    """An identity the approvers directory does not know; the message lists who is known."""


def directory_member(directory: ApproverDirectory, who: str) -> Approver:
    """``who``'s entry in the approvers directory: the one check of a staff identity (a CLI
    ``--as``, a decision, a rollback request), refused with the list of known ones."""
    member = directory.by_email(who)
    if member is not None:
        return member
    known = ", ".join(sorted(str(a.email) for a in directory.approvers)) or (
        "nobody: set KRUXT_APPROVERS or KRUXT_APPROVERS_FILE"
    )
    raise UnknownStaffError(
        f"{who!r} is not in the approvers directory (not a configured approver); "
        f"staff actions are taken as one of: {known}"
    )


class DecisionAttempt(BaseModel):
    """A person's decision as a channel (Slack, e-mail, the CLI) received it, before the
    approvers directory and the workflow's validator have checked it."""

    approval_id: uuid.UUID
    approver_email: str
    verdict: Verdict
    channel: DecisionChannel
    reason: str = ""
    correction: TriageCorrection | None = None
    # A Slack click's user: the validator checks it is the directory's for approver_email.
    slack_user_id: str | None = None
    # Who ran the CLI (the operating-system user), recorded beside its --as identity.
    os_user: str | None = None


class Decider(Protocol):
    """Takes an approver's decision: ``ApprovalService`` in production, a fake in tests.

    The Slack and e-mail routes depend on this, not on the service, and translate the
    ``DecisionRefusedError`` it raises into their answer.
    """

    async def decide(self, attempt: DecisionAttempt) -> DecisionOutcome:
        """Send the decision.

        Raises:
            DecisionRefusedError: the decision was not taken (the message says why).
        """
        ...


log = logging.getLogger(__name__)
# How long a rollback request waits for its approval to be stored (normally well under 1 s).
STORED_WITHIN_S = 30.0


class ApprovalService:
    """Turns an authenticated person's decision into the ticket workflow's ``decide`` update."""

    def __init__(
        self, client: Client, *, approvers: ApproverDirectory, store: ApprovalStore
    ) -> None:
        self._client = client
        self._approvers = approvers
        self._store = store

    async def decide(self, attempt: DecisionAttempt) -> DecisionOutcome:
        """Send the decision; the workflow's validator has the last word.

        The validator takes the approver's roles from the directory snapshot on the request
        (a Slack decision must come from the Slack user of that entry). Every refused attempt
        is audited with who tried, from where and why.
        """
        # Free text from Slack, mail or a terminal: what Postgres cannot store is replaced, so
        # neither the decision nor the audit of a refusal can fail on it.
        reason = replace_unstorable(attempt.reason)
        approver_email = replace_unstorable(attempt.approver_email)
        approval_id, verdict, channel = attempt.approval_id, attempt.verdict, attempt.channel
        found = await self._store.get(approval_id)
        ticket_id = found[0].ticket_id if found else None

        async def refuse(reason: str) -> DecisionRefusedError:
            await self._store.record_refused_decision(
                approval_id=approval_id,
                ticket_id=ticket_id,
                who=approver_email,
                channel=channel.value,
                verdict=verdict.value,
                reason=reason,
                os_user=attempt.os_user,
            )
            return DecisionRefusedError(reason)

        try:
            approver = directory_member(self._approvers, approver_email)
        except UnknownStaffError as exc:
            raise await refuse(str(exc)) from exc
        if found is None:
            raise await refuse(f"unknown approval {approval_id}")
        request, _ = found
        decision = Decision(
            approval_id=approval_id,
            approver=str(approver.email),
            # Read only by approvals requested before the directory was snapshotted.
            roles=approver.roles,
            verdict=verdict,
            reason=reason,
            channel=channel,
            correction=attempt.correction,
            slack_user_id=attempt.slack_user_id,
            os_user=attempt.os_user,
        )
        handle = self._client.get_workflow_handle_for(
            TicketWorkflow.run, workflow_id_for(request.ticket_id)
        )
        try:
            with unavailable_as_error():
                return await handle.execute_update(TicketWorkflow.decide, decision)
        except WorkflowUpdateFailedError as exc:
            raise await refuse(_reason(exc)) from exc

    async def audit_slack_stranger(self, approval_id: uuid.UUID, who: str, reason: str) -> None:
        """Audit a Slack click by someone who is not an approver (nothing was decided)."""
        found = await self._store.get(approval_id)
        await self._store.record_refused_decision(
            approval_id=approval_id,
            ticket_id=found[0].ticket_id if found else None,
            who=who,
            channel=DecisionChannel.SLACK.value,
            verdict="unknown",
            reason=reason,
        )

    async def request_rollback(
        self,
        *,
        ticket_id: uuid.UUID,
        run_id: uuid.UUID,
        actor: str,
        reason: str = "",
        channel: DecisionChannel | None = None,
        os_user: str | None = None,
    ) -> uuid.UUID:
        """Ask the ticket's workflow to roll a run back; returns the approval to decide, once
        it is stored (at most STORED_WITHIN_S).

        Only people in the approvers directory may ask, and whoever asks may not approve it
        (the workflow's validator checks both against the plan's directory snapshot).
        """
        reason = replace_unstorable(reason)
        approver = directory_member(self._approvers, actor)
        handle = self._client.get_workflow_handle_for(
            TicketWorkflow.run, workflow_id_for(ticket_id)
        )
        request = RollbackRequest(
            run_id=run_id,
            actor=str(approver.email),
            reason=reason,
            channel=channel,
            os_user=os_user,
        )
        try:
            with unavailable_as_error():
                approval_id = await handle.execute_update(TicketWorkflow.request_rollback, request)
        except WorkflowUpdateFailedError as exc:
            raise DecisionRefusedError(_reason(exc)) from exc
        # The approval is stored by an activity after the update answered; the decider finds
        # approvals in the database, so the id handed back is decidable only once it is there
        # (pasted straight into `approvals decide`, it was "unknown approval").
        if await until_found(lambda: self._store.get(approval_id), within=STORED_WITHIN_S) is None:
            log.warning("approval %s is not stored yet; it is listed once it is", approval_id)
        return approval_id


def _reason(exc: WorkflowUpdateFailedError) -> str:
    cause = exc.cause
    if isinstance(cause, ApplicationError):
        return cause.message
    return str(cause or exc)


def os_user() -> str:
    """The operating-system user running this process, recorded next to an ``--as`` identity.

    The passwd entry of the real uid first: ``getpass`` trusts $USER and $LOGNAME, which the
    caller sets at will.
    """
    uid = os.getuid()
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:  # a uid without a passwd entry (containers)
        try:
            name = getpass.getuser()
        except (KeyError, OSError):
            name = "unknown"
    return f"{name} (uid {uid})"
