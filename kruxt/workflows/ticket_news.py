"""An incident's resolution as a ticket tells it: only what holds for that ticket.

"Good news: the problem behind your ticket has been fixed" goes to a ticket that is still open
and whose own fix stands. A ticket already resolved is not told again; a ticket whose approved
fix was rolled back goes to a person instead, who knows what the customer was told. Only the
note marked for customers (``ResolveIncident.customer_note``) is pasted in, as a sentence; the
team's note never leaves the team.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from kruxt.models.enums import TicketStatus
    from kruxt.models.incidents import IncidentResolved
    from kruxt.models.playbooks import RunStatus
    from kruxt.models.records import MessageKind
    from kruxt.models.text import sentence
    from kruxt.models.tickets import TicketWorkflowState
    from kruxt.workflows.ticket_steps import TicketSteps

__all__ = ["INCIDENT_NEWS_AS_IT_IS", "incident_news_text", "tell_incident_news"]

# workflow.patched: incident news only where it is true, with the customer note alone (before,
# every attached ticket was told, with the team's note glued in).
INCIDENT_NEWS_AS_IT_IS = "incident-news-only-where-true"
# workflow.patched: an incident's resolution heard twice (its telling retried a batch) is
# told to the customer once.
ONE_NEWS_PER_INCIDENT = "incident-news-once"


def incident_news_text(news: IncidentResolved) -> str:
    """The customer's message: the news, the customer note as a sentence, what to do next."""
    parts = [
        "Good news: the problem behind your ticket has been fixed.",
        sentence(news.customer_note),
        "If anything still looks wrong, reply here and we will pick it up.",
    ]
    return " ".join(part for part in parts if part)


async def tell_incident_news(
    news: IncidentResolved, state: TicketWorkflowState, steps: TicketSteps
) -> None:
    """Tell the customer, or hand the ticket to a person when the news would not be true."""
    resolved = f"incident {news.incident_id} resolved by {news.by}"
    if state.status is TicketStatus.RESOLVED:
        return  # settled on its own: the customer has heard the end of it
    if state.runs and state.runs[-1].status is RunStatus.ROLLED_BACK:
        await steps.set_status(
            TicketStatus.AWAITING_HUMAN,
            f"{resolved}; not told to the customer: this ticket's fix was rolled back",
            actor=news.by,
        )
        return
    await steps.send_text(MessageKind.INCIDENT_UPDATE, incident_news_text(news))
    await steps.set_status(TicketStatus.AWAITING_CUSTOMER, resolved, actor=news.by)
