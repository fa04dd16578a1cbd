"""Putting approval requests in front of approvers (Slack, e-mail) and closing them after."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from temporalio import activity

from kruxt.activities._keys import activity_key
from kruxt.activities._notify import notify_failure
from kruxt.adapters.approvers import Approver, ApproverDirectory
from kruxt.adapters.email import Mailer, approval_link
from kruxt.adapters.email_texts import render_approval_email
from kruxt.adapters.email_tokens import ApprovalTokens
from kruxt.adapters.notifier import ApprovalNotifier, MessageRef, NotifyError
from kruxt.adapters.postgres.approvals import ApprovalStore
from kruxt.adapters.postgres.email_tokens import EmailTokenStore
from kruxt.models.approvals import (
    CloseApproval,
    DirectoryEntry,
    DirectoryInput,
    DirectorySnapshot,
    NotifyApprovers,
    NotifyResult,
    Verdict,
)

log = logging.getLogger(__name__)


@dataclass
class EmailApprovals:
    """What e-mailed approvals need: a mailer, the link signer and where links point."""

    mailer: Mailer
    tokens: ApprovalTokens
    token_store: EmailTokenStore
    public_url: str


class NotificationActivities:
    """Snapshot who may decide; send approval requests, reminders and escalations; replace
    Slack buttons after.

    A retried activity does not send again what an earlier attempt sent: each send is keyed
    by the activity's identity and recorded (in the audit log) once it went out. ``chat`` is
    the chat channel approvers watch (Slack today), ``email`` the mailed links.
    """

    def __init__(
        self,
        *,
        approvals: ApprovalStore,
        approvers: ApproverDirectory,
        chat: ApprovalNotifier | None,
        email: EmailApprovals | None,
    ) -> None:
        self._approvals = approvals
        self._approvers = approvers
        self._chat = chat
        self._email = email

    def _recipients(self, notify: NotifyApprovers) -> list[Approver]:
        role = notify.request.required_role
        at_level = self._approvers.for_role(role, level=notify.level)
        # No one configured at that level: everyone who may approve is better than no one.
        return at_level or self._approvers.for_role(role)

    @activity.defn
    async def resolve_directory(self, inp: DirectoryInput) -> DirectorySnapshot:
        """The approvers directory as it stands, for an approval the workflow is creating."""
        del inp  # the same directory for every approval; the input leaves room to grow
        return DirectorySnapshot(
            entries=[
                DirectoryEntry(
                    email=str(a.email),
                    name=a.name,
                    slack_user_id=a.slack_user_id,
                    roles=list(a.roles),
                )
                for a in self._approvers.approvers
            ]
        )

    @activity.defn
    async def notify_approvers(self, notify: NotifyApprovers) -> NotifyResult:
        """Slack post (or threaded reminder) plus one e-mail per approver of the level."""
        request = notify.request
        # Neither the ticket's requester nor whoever asked for a rollback may approve it.
        barred = {_email_key(request.requester_email), _email_key(request.requested_by or "")}
        people = [a for a in self._recipients(notify) if _email_key(str(a.email)) not in barred]
        result = NotifyResult()
        try:
            if self._chat is not None:
                await self._post_to_chat(notify, people)
                result.slack_posted = True
            if self._email is not None:
                result.emailed = await self._send_mail(notify, people)
        except NotifyError as exc:
            raise notify_failure(exc) from exc
        channels = (["slack"] if result.slack_posted else []) + (
            ["email"] if result.emailed else []
        )
        await self._approvals.record_sent(
            activity_key(),
            request=request,
            channel="+".join(channels) or "none",
            recipients=[str(a.email) for a in people],
            level=notify.level,
            action="approval.reminded" if notify.reminder else "approval.sent",
        )
        if not channels:
            log.warning(
                "approval %s: no Slack and no e-mail configured; decide with the CLI",
                request.approval_id,
            )
        return result

    async def _post_to_chat(self, notify: NotifyApprovers, people: list[Approver]) -> None:
        assert self._chat is not None
        request = notify.request
        posted = await self._approvals.slack_message(request.approval_id)
        if posted is None:
            # A retry after a post that landed must not post twice: the ref is stored first.
            ref = await self._chat.post_request(request)
            await self._approvals.set_slack_message(
                request.approval_id, channel=ref.channel, ts=ref.ts
            )
            if not notify.reminder:
                return
        else:
            ref = MessageRef(channel=posted[0], ts=posted[1])
        if notify.reminder or notify.level > 1:
            key = activity_key("slack-reminder")
            if await self._approvals.was_sent(key):
                return  # an earlier attempt of this activity posted it
            await self._chat.post_reminder(
                ref,
                request,
                escalation_level=notify.level,
                mention_user_ids=[a.slack_user_id for a in people if a.slack_user_id],
            )
            await self._approvals.record_sent(
                key, request=request, channel="slack", recipients=[], level=notify.level
            )

    async def _send_mail(self, notify: NotifyApprovers, people: list[Approver]) -> list[str]:
        assert self._email is not None
        email = self._email
        request = notify.request
        sent: list[str] = []
        for person in people:
            key = activity_key(f"mail:{_email_key(str(person.email))}")
            if await self._approvals.was_sent(key):
                # An earlier attempt mailed this person: no second mail, no new links.
                sent.append(str(person.email))
                continue
            links = {}
            claims = []
            for verdict in (Verdict.APPROVE, Verdict.REJECT):
                issued = email.tokens.issue(
                    approval_id=request.approval_id,
                    verdict=verdict,
                    approver_email=str(person.email),
                    expires_at=request.expires_at,
                )
                claims.append(issued.claims)
                links[verdict] = approval_link(email.public_url, issued.token)
            await email.mailer.send(
                render_approval_email(
                    request,
                    approver_email=str(person.email),
                    approver_name=person.name,
                    approve_url=links[Verdict.APPROVE],
                    reject_url=links[Verdict.REJECT],
                )
            )
            # The links work once recorded, with the send, in one transaction: a mail whose
            # recording failed is sent again with fresh links, and its own links stay dead.
            await email.token_store.record_mailed(
                claims, ticket_id=request.ticket_id, recipient=str(person.email), send_key=key
            )
            sent.append(str(person.email))
        return sent

    @activity.defn
    async def close_approval_messages(self, close: CloseApproval) -> None:
        """Replace the Slack request with the decision: who decided what, when; no buttons."""
        if self._chat is None:
            return
        posted = await self._approvals.slack_message(close.request.approval_id)
        if posted is None:
            return
        try:
            await self._chat.close(MessageRef(channel=posted[0], ts=posted[1]), close)
        except NotifyError as exc:
            raise notify_failure(exc) from exc


def _email_key(email: str) -> str:
    """How e-mail addresses compare: case-insensitively, surrounding blanks ignored."""
    return email.strip().lower()
