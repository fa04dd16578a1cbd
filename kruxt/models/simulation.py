"""Stored tickets as a simulation reads them: what arrived, what the live system did with it,
and what a person said the triage should have been."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from kruxt.models.approvals import TriageCorrection
from kruxt.models.enums import Category, Channel, Priority
from kruxt.models.routing import Route
from kruxt.models.triage import TriageInput

__all__ = ["Happened", "StoredTicket"]


class Happened(BaseModel):
    """What the live system did with a ticket: its first triage and where that sent it."""

    category: Category
    severity: Priority
    playbook: str | None = None
    triaged_by: str = Field(description="The model of the triage run: 'rules' or an LLM")
    prompt_version: str
    route: Route = Field(
        description="auto_reply when an automatic reply was sent, playbook when a playbook "
        "diagnosed the ticket (a plan for an approver, or none found), human otherwise"
    )
    auto_replies: int = Field(ge=0, description="Automatic replies sent on the ticket")
    incident_id: uuid.UUID | None = None
    opened_incident: bool = Field(description="The ticket opened its incident (not joined it)")


class StoredTicket(BaseModel):
    """One stored ticket: its first message, what happened, and a person's correction."""

    ticket_id: uuid.UUID
    created_at: datetime
    channel: Channel
    account_id: str | None = None
    subject: str
    body: str
    happened: Happened | None = Field(
        default=None, description="None when the ticket was never triaged"
    )
    correction: TriageCorrection | None = Field(
        default=None, description="The latest 'triage wrong' of an approver, if any"
    )

    def to_input(self) -> TriageInput:
        """What a triager reads for this ticket (without the live account context)."""
        return TriageInput(
            ticket_id=self.ticket_id,
            channel=self.channel,
            account_id=self.account_id,
            subject=self.subject,
            body=self.body,
        )
