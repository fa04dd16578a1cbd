"""integration_sync: reset a stuck sync cursor and requeue (restore the cursor); mark re-auth.

Per connection of the account (Apple Health, Garmin):

- access token expired and not flagged yet: mark re-auth required, so the app asks the user
  to sign in to the provider again (clear the flag to undo). Resetting the cursor would not
  help: every sync fails on the token.
- otherwise a sync error and no sync queued or running: reset the cursor and queue a sync
  (restore the cursor and withdraw the queued job to undo). A sync already on its way is left
  to finish first.

A disconnected connection gets nothing: the user has to connect it again.
"""

from __future__ import annotations

from typing import Any

from kruxt.activities.playbooks import base as pb
from kruxt.adapters.app_db import AppEntityNotFound, KruxtApp
from kruxt.models.enums import Category
from kruxt.models.playbooks import ApproverRole, Touches

PROVIDERS = {"apple_health": "Apple Health", "garmin": "Garmin"}


def provider_name(provider: str) -> str:
    """``garmin`` -> ``Garmin``."""
    return PROVIDERS.get(provider, provider)


async def diagnose(app: KruxtApp, account_id: str) -> pb.Diagnosis:
    """Each of the account's connections: token expiry, last sync and error, cursor, queue."""
    account = await app.account_context(user_id=account_id)
    if account is None:
        raise AppEntityNotFound(f"user {account_id} not found", entity="users")
    connections = [
        await app.diagnose_integration_sync(user_id=account_id, provider=i["provider"])
        for i in account["integrations"]
    ]
    return {"user_id": account_id, "connections": connections}


def _needs_reauth(c: dict[str, Any]) -> bool:
    conn = c["connection"]
    return bool(
        conn["status"] != "disconnected" and conn["token_expired"] and not conn["reauth_required"]
    )


def _needs_reset(c: dict[str, Any]) -> bool:
    conn = c["connection"]
    return bool(
        conn["status"] == "connected"
        and not conn["token_expired"]
        and not conn["reauth_required"]
        and "sync_error" in c["findings"]
        and not c["pending_sync_jobs"]
    )


def propose(d: pb.Diagnosis) -> list[pb.Proposal]:
    """Mark re-auth on an expired token; else reset the cursor of a connection in error."""
    proposals = []
    for c in d["connections"]:
        conn = c["connection"]
        if conn is None:
            continue
        target = {"user_id": d["user_id"], "provider": c["provider"], "connection_id": conn["id"]}
        name = provider_name(c["provider"])
        if _needs_reauth(c):
            proposals.append(
                pb.Proposal(
                    action="mark_reauth_required",
                    target=target,
                    problem=(
                        f"the {name} access token expired {pb.when(conn['token_expires_at'])} and "
                        f"every sync since fails: {conn['last_error'] or 'no error recorded'}"
                    ),
                    before={
                        "connection": {
                            "id": conn["id"],
                            "status": conn["status"],
                            "reauth_required": False,
                        }
                    },
                    after={
                        "connection": {
                            "id": conn["id"],
                            "status": "reauth_required",
                            "reauth_required": True,
                        }
                    },
                )
            )
        elif _needs_reset(c):
            proposals.append(
                pb.Proposal(
                    action="reset_sync_cursor",
                    target=target,
                    problem=(
                        f"{name} has not synced since {pb.when(conn['last_sync_at'])}: "
                        f"{conn['last_error']}"
                    ),
                    before={"connection": {"id": conn["id"], "sync_cursor": conn["sync_cursor"]}},
                    after={
                        "connection": {"id": conn["id"], "sync_cursor": None},
                        "sync_job": {
                            "id": pb.RUN_TIME,
                            "connection_id": conn["id"],
                            "status": "queued",
                        },
                    },
                )
            )
    return proposals


def no_steps(d: pb.Diagnosis) -> str:
    """Why nothing is proposed."""
    if not d.get("connections"):
        return "the account has no Apple Health or Garmin connection"
    off = [
        c["provider"]
        for c in d["connections"]
        if (c["connection"] or {}).get("status") == "disconnected"
    ]
    if off:
        names = ", ".join(map(provider_name, off))
        return f"{names} is disconnected: the user has to connect it again"
    return "every connection is syncing"


RESET_CURSOR = pb.Action(
    name="reset_sync_cursor",
    args=("connection_id",),
    describe=lambda t, d: (
        f"reset the {provider_name(t['provider'])} sync cursor of {t['user_id']} "
        f"({t['connection_id']}) and queue a fresh sync"
    ),
    tell_customer=lambda t, d: (
        f"we restarted your {provider_name(t['provider'])} sync: your data should appear in "
        "KRUXT within the hour"
    ),
    compensation="restore_sync_cursor",
    undo="put the previous sync cursor back and withdraw the queued sync",
    rollback_note="The queued sync is withdrawn only while it has not started yet.",
    touches=(Touches.INTEGRATIONS,),
    requires=("connection_still_in_error",),
)

MARK_REAUTH = pb.Action(
    name="mark_reauth_required",
    args=("connection_id",),
    describe=lambda t, d: (
        f"flag the {provider_name(t['provider'])} connection of {t['user_id']} "
        f"({t['connection_id']}) so the app asks them to sign in to "
        f"{provider_name(t['provider'])} again"
    ),
    tell_customer=lambda t, d: (
        f"your {provider_name(t['provider'])} sign-in has expired: KRUXT will ask you to "
        f"sign in to {provider_name(t['provider'])} again, and syncing resumes once you do"
    ),
    compensation="clear_reauth_required",
    undo="clear the re-auth flag and restore the connection's previous status",
    rollback_note="The connection's flag and status go back to what they were.",
    touches=(Touches.INTEGRATIONS,),
    requires=("token_still_expired",),
)


async def _connection(app: KruxtApp, t: pb.Target) -> tuple[dict[str, Any] | None, str | None]:
    c = await app.diagnose_integration_sync(user_id=t["user_id"], provider=t["provider"])
    conn = c["connection"]
    if conn is None or conn["id"] != t["connection_id"]:
        return None, f"{t['connection_id']} is no longer the account's {t['provider']} connection"
    return c, None


@pb.check("connection {connection_id} is still connected and in sync error, with no sync queued")
async def connection_still_in_error(app: KruxtApp, t: pb.Target) -> str | None:
    c, gone = await _connection(app, t)
    if c is None:
        return gone
    if _needs_reset(c):
        return None
    if c["pending_sync_jobs"]:
        return f"a sync of connection {t['connection_id']} is already queued or running"
    findings = ", ".join(c["findings"]) or "none"
    return (
        f"{provider_name(t['provider'])} connection {t['connection_id']} is no longer in sync "
        f"error (status {c['connection']['status']}, findings: {findings})"
    )


@pb.check("the token of connection {connection_id} is still expired and not yet flagged")
async def token_still_expired(app: KruxtApp, t: pb.Target) -> str | None:
    c, gone = await _connection(app, t)
    if c is None:
        return gone
    if _needs_reauth(c):
        return None
    return (
        f"{provider_name(t['provider'])} connection {t['connection_id']} no longer needs the "
        "flag (token renewed, already flagged, or disconnected)"
    )


DECLARATION = pb.PlaybookDeclaration(
    category=Category.INTEGRATION_SYNC,
    touches=(Touches.INTEGRATIONS,),
    approver_role=ApproverRole.APPROVER,
    title="Health data not syncing",
    diagnose=diagnose,
    propose=propose,
    customer_update=pb.letter("If anything is still missing tomorrow, reply here."),
    actions=(RESET_CURSOR, MARK_REAUTH),
    checks=(connection_still_in_error, token_still_expired),
    no_steps=no_steps,
)
