"""The custom search attributes an operator filters tickets by in the Temporal Web UI."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

TICKET_STATUS = SearchAttributeKey.for_keyword("TicketStatus")
TICKET_PRIORITY = SearchAttributeKey.for_keyword("TicketPriority")
PLAYBOOK = SearchAttributeKey.for_keyword("Playbook")
CHANNEL = SearchAttributeKey.for_keyword("Channel")
SLA_BREACHED = SearchAttributeKey.for_bool("SlaBreached")
SLA_AT_RISK = SearchAttributeKey.for_bool("SlaAtRisk")

ALL: tuple[SearchAttributeKey[str] | SearchAttributeKey[bool], ...] = (
    TICKET_STATUS,
    TICKET_PRIORITY,
    PLAYBOOK,
    CHANNEL,
    SLA_BREACHED,
    SLA_AT_RISK,
)
