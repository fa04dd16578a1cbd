"""The ticket repository: tickets, messages, triage runs, each write with its audit and KPIs.

Every write method is one transaction and takes an ``idempotency_key`` (the calling
activity's identity), so an activity that is retried after its transaction committed finds
the work done and changes nothing.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

import asyncpg

from kruxt.adapters.postgres import audit, kpi
from kruxt.adapters.postgres.automation_runs import INSERT_RUN, recorded_run
from kruxt.adapters.postgres.pool import Conn
from kruxt.models.approvals import DecisionChannel
from kruxt.models.context import RecentTicket
from kruxt.models.enums import Channel, MessageDirection, TicketStatus
from kruxt.models.records import MessageKind, OutboundMessageResult, ThreadMessage
from kruxt.models.tickets import (
    Requester,
    TicketIntake,
    TicketMessage,
    TicketSummary,
    TicketView,
    TriageRecord,
    inbound_message_id_for,
)
from kruxt.models.triage import TriageOutcome

SYSTEM_ACTOR = "autopilot"
FIRST_MESSAGE_KEY = "initial"


class TicketNotFoundError(LookupError):
    """No ticket has this id."""


class TicketStore:
    """Reads and writes of the support schema's ticket tables."""

    def __init__(self, pool: asyncpg.Pool[Any]) -> None:
        self._pool = pool

    async def persist_ticket(
        self, *, intake: TicketIntake, workflow_id: str, idempotency_key: str
    ) -> bool:
        """Store a new ticket with its first message; False when it was stored before."""
        async with self._pool.acquire() as conn, conn.transaction():
            inserted = await conn.fetchval(
                """
                INSERT INTO support_tickets (id, channel, external_id, workflow_id, requester_id,
                    requester_email, requester_name, account_id, subject, created_at, updated_at,
                    previous_ticket_id)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11)
                ON CONFLICT DO NOTHING
                RETURNING id
                """,
                intake.ticket_id,
                intake.channel.value,
                intake.external_id,
                workflow_id,
                intake.requester.id,
                str(intake.requester.email),
                intake.requester.name,
                intake.account_id,
                intake.subject,
                intake.received_at,
                intake.previous_ticket_id,
            )
            if inserted is None:
                return False
            await conn.execute(
                """
                INSERT INTO support_ticket_messages (id, ticket_id, direction, kind, author, body,
                                                     created_at)
                VALUES ($1, $2, 'inbound', $3, $4, $5, $6)
                """,
                inbound_message_id_for(intake.ticket_id, FIRST_MESSAGE_KEY),
                intake.ticket_id,
                MessageKind.CUSTOMER.value,
                str(intake.requester.email),
                intake.body,
                intake.received_at,
            )
            await audit.append(
                conn,
                actor=SYSTEM_ACTOR,
                action="ticket.received",
                ticket_id=intake.ticket_id,
                details={
                    "channel": intake.channel.value,
                    "external_id": intake.external_id,
                    "requester": str(intake.requester.email),
                    "subject": intake.subject,
                    "workflow_id": workflow_id,
                },
                idempotency_key=idempotency_key,
            )
            await kpi.emit(
                conn,
                event="ticket_opened",
                ticket_id=intake.ticket_id,
                idempotency_key=f"{idempotency_key}:ticket_opened",
                details={"channel": intake.channel.value},
            )
            return True

    async def record_triage(
        self, *, ticket_id: uuid.UUID, outcome: TriageOutcome, idempotency_key: str
    ) -> uuid.UUID:
        """Record a triage run and apply its verdict to the ticket; return the run's id."""
        result = outcome.result
        async with self._pool.acquire() as conn, conn.transaction():
            run_id = await conn.fetchval(
                INSERT_RUN,
                ticket_id,
                outcome.agent,
                outcome.model,
                outcome.prompt_version,
                outcome.input_digest,
                result.model_dump(mode="json"),
                result.confidence,
                outcome.tokens_in,
                outcome.tokens_out,
                outcome.latency_ms,
                outcome.fallback_reason,
                idempotency_key,
            )
            if run_id is None:
                return await recorded_run(conn, idempotency_key)
            status = await conn.fetchval(
                """
                UPDATE support_tickets
                SET priority = $2, category = $3, playbook = $4, updated_at = now(),
                    status = CASE WHEN status = 'new' THEN 'triaged' ELSE status END
                WHERE id = $1
                RETURNING status
                """,
                ticket_id,
                result.severity.value,
                result.category.value,
                result.playbook,
            )
            if status is None:
                raise TicketNotFoundError(str(ticket_id))
            await audit.append(
                conn,
                actor=f"agent:{outcome.agent}",
                action="ticket.triaged",
                ticket_id=ticket_id,
                details={
                    "run_id": str(run_id),
                    "model": outcome.model,
                    "prompt_version": outcome.prompt_version,
                    "fallback_reason": outcome.fallback_reason,
                    **result.model_dump(mode="json"),
                },
                idempotency_key=idempotency_key,
            )
            await kpi.emit(
                conn,
                event="triaged",
                ticket_id=ticket_id,
                idempotency_key=f"{idempotency_key}:triaged",
                priority=result.severity.value,
                category=result.category.value,
                details={
                    "confidence": result.confidence,
                    "model": outcome.model,
                    "fallback": outcome.fallback_reason is not None,
                },
            )
            return uuid.UUID(str(run_id))

    async def record_inbound_message(
        self,
        *,
        ticket_id: uuid.UUID,
        message_id: uuid.UUID,
        author: str,
        body: str,
        idempotency_key: str,
    ) -> bool:
        """Store a customer's follow-up once; False when it was stored before."""
        async with self._pool.acquire() as conn, conn.transaction():
            message = ThreadMessage(
                ticket_id=ticket_id,
                message_id=message_id,
                kind=MessageKind.CUSTOMER,
                body=body,
                author=author,
            )
            inserted = await _insert_thread_message(conn, message, MessageDirection.INBOUND)
            if inserted is None:
                return False
            await conn.execute(
                "UPDATE support_tickets SET updated_at = now() WHERE id = $1", ticket_id
            )
            await audit.append(
                conn,
                actor=author,
                action="message.received",
                ticket_id=ticket_id,
                details={"message_id": str(message_id), "chars": len(body)},
                idempotency_key=idempotency_key,
            )
            await kpi.emit(
                conn,
                event="customer_replied",
                ticket_id=ticket_id,
                idempotency_key=f"{idempotency_key}:customer_replied",
            )
            return True

    async def record_outbound_message(
        self, message: ThreadMessage, *, idempotency_key: str
    ) -> OutboundMessageResult:
        """Store a message to the customer; the first one sets ``first_response_at``."""
        ticket_id, message_id, kind = message.ticket_id, message.message_id, message.kind
        async with self._pool.acquire() as conn, conn.transaction():
            created_at = await _insert_thread_message(conn, message, MessageDirection.OUTBOUND)
            if created_at is None:
                row = await conn.fetchrow(
                    "SELECT m.created_at, t.first_response_at FROM support_ticket_messages m "
                    "JOIN support_tickets t ON t.id = m.ticket_id WHERE m.id = $1",
                    message_id,
                )
                assert row is not None
                return OutboundMessageResult(
                    sent_at=row["created_at"],
                    first_response=row["first_response_at"] == row["created_at"],
                )
            # An acknowledgement or a holding note does not answer the problem, so it
            # does not stop the first-response clock.
            counts = kind not in (MessageKind.ACKNOWLEDGEMENT, MessageKind.HOLDING)
            ticket = await conn.fetchrow(
                """
                UPDATE support_tickets
                SET first_response_at = CASE WHEN $3 THEN coalesce(first_response_at, $2)
                                             ELSE first_response_at END,
                    updated_at = now()
                WHERE id = $1
                RETURNING first_response_at, created_at, priority, category
                """,
                ticket_id,
                created_at,
                counts,
            )
            if ticket is None:
                raise TicketNotFoundError(str(ticket_id))
            first = ticket["first_response_at"] == created_at
            await audit.append(
                conn,
                actor=message.author,
                action="message.sent",
                ticket_id=ticket_id,
                details={**_audited(message), "first_response": first},
                idempotency_key=idempotency_key,
            )
            if first:
                await kpi.emit(
                    conn,
                    event="first_response",
                    ticket_id=ticket_id,
                    idempotency_key=f"{idempotency_key}:first_response",
                    priority=ticket["priority"],
                    category=ticket["category"],
                    value_seconds=(created_at - ticket["created_at"]).total_seconds(),
                    details={"kind": kind.value},
                )
            return OutboundMessageResult(sent_at=created_at, first_response=first)

    async def change_priority(
        self,
        *,
        ticket_id: uuid.UUID,
        priority: str,
        actor: str,
        reason: str,
        idempotency_key: str,
        via: DecisionChannel | None = None,
    ) -> None:
        """A staff member's new priority, with its audit entry and KPI event (``via``: where
        they acted, audited as the ``channel``)."""
        async with self._pool.acquire() as conn, conn.transaction():
            done, before = await _set_by_staff(
                conn,
                ticket_id,
                "priority",
                priority,
                actor=actor,
                action="ticket.priority_changed",
                reason=reason,
                via=via,
                idempotency_key=idempotency_key,
            )
            if not done:
                return
            await kpi.emit(
                conn,
                event="priority_changed",
                ticket_id=ticket_id,
                idempotency_key=f"{idempotency_key}:priority",
                priority=priority,
                details={"from": before, "by": actor},
            )

    async def assign(
        self,
        *,
        ticket_id: uuid.UUID,
        assignee: str,
        actor: str,
        idempotency_key: str,
        via: DecisionChannel | None = None,
    ) -> None:
        """Give the ticket to a member of the support team, with its audit entry."""
        async with self._pool.acquire() as conn, conn.transaction():
            await _set_by_staff(
                conn,
                ticket_id,
                "assignee",
                assignee,
                actor=actor,
                action="ticket.assigned",
                via=via,
                idempotency_key=idempotency_key,
            )

    async def record_internal_note(
        self,
        message: ThreadMessage,
        *,
        idempotency_key: str,
        action: str = "note.attached",
        details: dict[str, object] | None = None,
    ) -> bool:
        """Store a note only staff see (e.g. a drafted reply); False when stored before.

        ``action`` and ``details`` name the audit entry (a refused delivery is its own).
        """
        async with self._pool.acquire() as conn, conn.transaction():
            inserted = await _insert_thread_message(conn, message, MessageDirection.INTERNAL)
            if inserted is None:
                return False
            await audit.append(
                conn,
                actor=message.author,
                action=action,
                ticket_id=message.ticket_id,
                details={**_audited(message), **(details or {})},
                idempotency_key=idempotency_key,
            )
            return True

    async def change_status(
        self,
        *,
        ticket_id: uuid.UUID,
        status: TicketStatus,
        actor: str,
        reason: str,
        idempotency_key: str,
        via: DecisionChannel | None = None,
    ) -> datetime:
        """Move a ticket to a status, with its audit entry and KPI events; return when."""
        async with self._pool.acquire() as conn, conn.transaction():
            before = await conn.fetchrow(
                "SELECT status, created_at, priority, category FROM support_tickets "
                "WHERE id = $1 FOR UPDATE",
                ticket_id,
            )
            if before is None:
                raise TicketNotFoundError(str(ticket_id))
            change = {"from": before["status"], "to": status.value}
            done = await audit.append(
                conn,
                actor=actor,
                action="ticket.status_changed",
                ticket_id=ticket_id,
                details={**change, "reason": reason, **_via(via)},
                idempotency_key=idempotency_key,
            )
            if not done:  # a retry of a change that committed
                changed: datetime = await conn.fetchval(
                    "SELECT occurred_at FROM support_audit_log WHERE idempotency_key = $1",
                    idempotency_key,
                )
                return changed
            resolved = status is TicketStatus.RESOLVED
            now: datetime = await conn.fetchval(
                """
                UPDATE support_tickets
                SET status = $2, updated_at = now(),
                    resolved_at = CASE WHEN $3 THEN now() ELSE NULL END,
                    resolved_by = CASE WHEN $3 THEN $4 ELSE NULL END
                WHERE id = $1
                RETURNING updated_at
                """,
                ticket_id,
                status.value,
                resolved,
                actor,
            )
            await kpi.emit(
                conn,
                event="resolved" if resolved else "status_changed",
                ticket_id=ticket_id,
                idempotency_key=f"{idempotency_key}:status",
                priority=before["priority"],
                category=before["category"],
                value_seconds=(now - before["created_at"]).total_seconds() if resolved else None,
                details=change,
            )
            return now

    async def recent_activity(
        self, *, exclude: uuid.UUID, limit: int = 5
    ) -> tuple[list[RecentTicket], dict[str, int]]:
        """Open P1/P2 tickets of the last 7 days, and ticket counts per category in 24 h."""
        async with self._pool.acquire() as conn:
            urgent = await conn.fetch(
                """
                SELECT id AS ticket_id, priority, category, subject, created_at
                FROM support_tickets
                WHERE priority IN ('P1', 'P2') AND status <> 'resolved' AND id <> $1
                  AND created_at > now() - interval '7 days'
                ORDER BY priority, created_at DESC LIMIT $2
                """,
                exclude,
                limit,
            )
            counts = await conn.fetch(
                """
                SELECT category, count(*) AS n FROM support_tickets
                WHERE category IS NOT NULL AND id <> $1 AND created_at > now() - interval '24 hours'
                GROUP BY category
                """,
                exclude,
            )
        return (
            [RecentTicket.model_validate(dict(r)) for r in urgent],
            {r["category"]: r["n"] for r in counts},
        )

    async def channel_of(self, ticket_id: uuid.UUID) -> Channel | None:
        """The channel a ticket came in by (where its answers go), or None if it is unknown."""
        async with self._pool.acquire() as conn:
            value = await conn.fetchval(
                "SELECT channel FROM support_tickets WHERE id = $1", ticket_id
            )
        return Channel(value) if value is not None else None

    async def get(self, ticket_id: uuid.UUID) -> TicketView | None:
        """A ticket with its messages and latest triage, or None."""
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow("SELECT * FROM support_tickets WHERE id = $1", ticket_id)
            return await _view(conn, row) if row is not None else None

    async def list(
        self, *, status: TicketStatus | None = None, limit: int = 50
    ) -> list[TicketSummary]:
        """The newest tickets, optionally of one status."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                """
                SELECT id AS ticket_id, subject, requester_email, status, priority, category,
                    created_at
                FROM support_tickets
                WHERE $1::text IS NULL OR status = $1
                ORDER BY created_at DESC LIMIT $2
                """,
                status.value if status else None,
                limit,
            )
        return [TicketSummary.model_validate(dict(r)) for r in rows]


async def _view(conn: Conn, row: asyncpg.Record) -> TicketView:
    """A ``support_tickets`` row with its thread and latest triage, as the API shows it."""
    messages = await conn.fetch(
        "SELECT id, direction, kind, author, body, created_at "
        "FROM support_ticket_messages WHERE ticket_id = $1 ORDER BY created_at, id",
        row["id"],
    )
    run = await conn.fetchrow(
        "SELECT id, agent, model, prompt_version, output AS result, fallback_reason, "
        "latency_ms, created_at FROM support_automation_runs "
        "WHERE ticket_id = $1 AND agent = 'triage' ORDER BY created_at DESC LIMIT 1",
        row["id"],
    )
    # The row's columns are the view's fields, but for the id and the requester.
    return TicketView.model_validate(
        {
            **dict(row),
            "ticket_id": row["id"],
            "requester": Requester(
                id=row["requester_id"], email=row["requester_email"], name=row["requester_name"]
            ),
            "messages": [TicketMessage.model_validate(dict(m)) for m in messages],
            "triage": TriageRecord.model_validate(dict(run)) if run else None,
        }
    )


async def _set_by_staff(
    conn: Conn,
    ticket_id: uuid.UUID,
    column: Literal["priority", "assignee"],
    value: str,
    *,
    actor: str,
    action: str,
    idempotency_key: str,
    reason: str | None = None,
    via: DecisionChannel | None = None,
) -> tuple[bool, Any]:
    """Set a column staff own, audited with its value before and after (and the ``reason``
    and where the staff member acted, ``via``).

    Returns whether it was set (False: done before under ``idempotency_key``) and the value
    before.
    """
    before = await conn.fetchval(
        f"SELECT {column} FROM support_tickets WHERE id = $1 FOR UPDATE", ticket_id
    )
    details: dict[str, object] = {"from": before, "to": value}
    if reason is not None:
        details["reason"] = reason
    details.update(_via(via))
    done = await audit.append(
        conn,
        actor=actor,
        action=action,
        ticket_id=ticket_id,
        details=details,
        idempotency_key=idempotency_key,
    )
    if done:
        await conn.execute(
            f"UPDATE support_tickets SET {column} = $2, updated_at = now() WHERE id = $1",
            ticket_id,
            value,
        )
    return done, before


def _audited(message: ThreadMessage) -> dict[str, object]:
    """What the audit log keeps of a thread message: its id, kind and articles, not its text."""
    return {
        "message_id": str(message.message_id),
        "kind": message.kind.value,
        "article_ids": message.article_ids,
        **_via(message.via),
    }


def _via(via: DecisionChannel | None) -> dict[str, str]:
    """Where a staff member acted, as the audit entry's ``channel`` (nothing when unsaid, so
    entries written without it read as they always did)."""
    return {"channel": via.value} if via is not None else {}


async def _insert_thread_message(
    conn: Conn, message: ThreadMessage, direction: MessageDirection
) -> datetime | None:
    """Insert a thread message once; its ``created_at``, or None if it was there before."""
    created_at: datetime | None = await conn.fetchval(
        """
        INSERT INTO support_ticket_messages (id, ticket_id, direction, kind, author, body,
                                             article_ids)
        VALUES ($1, $2, $3, $4, $5, $6, $7)
        ON CONFLICT (id) DO NOTHING
        RETURNING created_at
        """,
        message.message_id,
        message.ticket_id,
        direction.value,
        message.kind.value,
        message.author,
        message.body,
        message.article_ids,
    )
    return created_at
