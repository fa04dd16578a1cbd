"""The in-app routes take requests through the channel port, as every channel's routes do.

The API is built with a recording in-app channel and an intake that records what it is
handed: what the route passes on is what the channel's ``parse`` made of the request.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from kruxt.adapters.channels import InAppChannel
from kruxt.models.channels import ChannelRequest, FollowUp, NewTicket, Parsed
from kruxt.models.tickets import TicketAccepted
from kruxt.starter.api.app import ApiDeps, create_app
from kruxt.starter.intake import FollowUpAccepted
from tests.test_channels import NEW_TICKET, TOKEN


class RecordingInApp(InAppChannel):
    """The in-app channel, remembering every request it parsed."""

    def __init__(self) -> None:
        super().__init__(store=None, intake_token=TOKEN)  # type: ignore[arg-type]
        self.parsed: list[Parsed] = []

    def parse(self, request: ChannelRequest) -> Parsed:
        parsed = super().parse(request)
        self.parsed.append(parsed)
        return parsed


class RecordingIntake:
    """Takes what the routes hand it; starts nothing."""

    def __init__(self) -> None:
        self.handed: list[NewTicket | FollowUp] = []

    async def open_parsed(self, parsed: NewTicket) -> TicketAccepted:
        self.handed.append(parsed)
        return TicketAccepted(ticket_id=uuid.uuid4(), workflow_id="ticket-x")

    async def follow_up(self, parsed: FollowUp) -> FollowUpAccepted:
        self.handed.append(parsed)
        return FollowUpAccepted(parsed.ticket_id, uuid.uuid4())


async def test_new_tickets_and_follow_ups_are_what_the_channel_parsed() -> None:
    intake = RecordingIntake()
    deps = ApiDeps(
        intake=intake,  # type: ignore[arg-type]
        tickets=None,  # type: ignore[arg-type]
        intake_token=TOKEN,
        health_checks={},
    )
    channel = RecordingInApp()
    deps.in_app = channel
    transport = httpx.ASGITransport(app=create_app(deps))
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://t", headers=headers) as c:
        opened = await c.post("/v1/tickets", json=NEW_TICKET)
        ticket_id = uuid.uuid4()
        follow_up = {"external_id": "m-1", "body": "Still locked."}
        added = await c.post(f"/v1/tickets/{ticket_id}/messages", json=follow_up)
        refused = await c.post("/v1/tickets", json={**NEW_TICKET, "subject": ""})

    assert (opened.status_code, added.status_code) == (202, 202)
    assert intake.handed == channel.parsed[:2]
    new, more = channel.parsed[:2]
    assert isinstance(new, NewTicket) and new.ticket.external_id == "app-123"
    assert isinstance(more, FollowUp) and more.ticket_id == ticket_id
    assert more.message.body == "Still locked."
    # A body the channel refuses is the API's 422 naming the field, and reaches no intake.
    assert refused.status_code == 422
    fields: list[dict[str, Any]] = refused.json()["fields"]
    assert [f["field"] for f in fields] == ["subject"]
    assert len(intake.handed) == 2
