"""Acknowledging and resolving incidents: shared by the CLI and the Slack button."""

from __future__ import annotations

import uuid
from typing import Protocol, TypeVar

from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.workflow import UpdateMethodMultiParam

from kruxt.adapters.approvers import ApproverDirectory
from kruxt.adapters.postgres.incidents import IncidentStore
from kruxt.adapters.temporal_client import unavailable_as_error
from kruxt.models.approvals import DecisionChannel
from kruxt.models.incidents import (
    Acknowledge,
    Acknowledged,
    EscalationPolicy,
    IncidentState,
    IncidentStatus,
    ResolveIncident,
    incident_workflow_id,
)
from kruxt.workflows.incident import IncidentWorkflow

Request = TypeVar("Request", Acknowledge, ResolveIncident)
Answer = TypeVar("Answer")


class IncidentRefusedError(Exception):
    """The workflow refused the acknowledgement or resolution; the message says why."""


class NotAResponderError(IncidentRefusedError):
    """Whoever asked is neither on the escalation policy nor a configured approver."""


class UnknownIncidentError(LookupError):
    """No incident (or no running incident workflow) has this id."""


class Acknowledger(Protocol):
    """Takes an incident for someone: ``IncidentService`` in production, a fake in tests.

    The Slack button and the e-mailed links depend on this and translate the errors it raises.
    """

    async def acknowledge(
        self, incident_id: uuid.UUID, *, by: str, channel: DecisionChannel
    ) -> Acknowledged:
        """Take the incident; escalation stops.

        Raises:
            IncidentRefusedError: already acknowledged or resolved, or not a responder.
            UnknownIncidentError: no such incident.
        """
        ...


class IncidentService:
    """Acknowledge and resolve incidents through their workflows' updates."""

    def __init__(
        self,
        client: Client,
        *,
        store: IncidentStore | None = None,
        responders: frozenset[str] | None = None,
    ) -> None:
        """``responders``: the e-mails that may acknowledge and resolve (None: anyone)."""
        self._client = client
        self._store = store
        self._responders = responders

    async def acknowledge(
        self, incident_id: uuid.UUID, *, by: str, channel: DecisionChannel
    ) -> Acknowledged:
        """Take the incident; escalation stops.

        Raises:
            IncidentRefusedError: already acknowledged or resolved (the message says by whom).
            UnknownIncidentError: no such incident.
        """
        return await self._update(
            incident_id, IncidentWorkflow.acknowledge, Acknowledge(by=by, channel=channel)
        )

    async def resolve(
        self,
        incident_id: uuid.UUID,
        *,
        by: str,
        note: str = "",
        customer_note: str = "",
        defect: bool = False,
        prevention: str = "",
        channel: DecisionChannel | None = None,
    ) -> IncidentState:
        """Resolve the incident; returns once its tickets are told and the timeline posted.

        ``note`` stays with the team; ``customer_note`` is added to what customers are told.
        ``defect``: the cause is a product defect, filed as a GitHub issue with ``prevention``.
        ``channel``: where it was resolved, for the audit log.

        Raises:
            IncidentRefusedError: already resolved.
            UnknownIncidentError: no such incident.
        """
        return await self._update(
            incident_id,
            IncidentWorkflow.resolve,
            ResolveIncident(
                by=by,
                note=note,
                customer_note=customer_note,
                defect=defect,
                prevention=prevention,
                channel=channel,
            ),
        )

    def _check_responder(self, who: str) -> None:
        if self._responders is not None and who.strip().lower() not in self._responders:
            raise NotAResponderError(
                f"{who} is neither on the escalation policy nor a configured approver"
            )

    async def _update(
        self,
        incident_id: uuid.UUID,
        update: UpdateMethodMultiParam[[IncidentWorkflow, Request], Answer],
        request: Request,
    ) -> Answer:
        """Send the incident's workflow an update from a responder (``request.by``); its
        refusal and a missing incident become this module's errors."""
        self._check_responder(request.by)
        handle = self._client.get_workflow_handle_for(
            IncidentWorkflow.run, incident_workflow_id(incident_id)
        )
        try:
            with unavailable_as_error():
                return await handle.execute_update(update, request)
        except WorkflowUpdateFailedError as exc:
            raise IncidentRefusedError(_reason(exc)) from exc
        except RPCError as exc:
            raise await self._closed_or_unknown(incident_id, exc) from exc

    async def _closed_or_unknown(self, incident_id: uuid.UUID, exc: RPCError) -> Exception:
        if exc.status is not RPCStatusCode.NOT_FOUND:
            return exc
        record = await self._store.get(incident_id) if self._store is not None else None
        if record is not None and record.status is IncidentStatus.RESOLVED:
            return IncidentRefusedError(
                f"incident {incident_id} is already resolved by {record.resolved_by}"
            )
        return UnknownIncidentError(f"no incident {incident_id}")


def _reason(exc: WorkflowUpdateFailedError) -> str:
    cause = exc.cause
    if isinstance(cause, ApplicationError):
        return cause.message
    return str(cause or exc)


def responders_of(policy: EscalationPolicy, approvers: ApproverDirectory) -> frozenset[str]:
    """Everyone who may take an incident: the escalation policy's people and the approvers."""
    emails = {e.lower() for level in policy.levels for e in level.emails}
    emails |= {str(a.email).lower() for a in approvers.approvers}
    return frozenset(emails)
