"""auth_login: unlock a locked account (re-lock as before), resend the verification email.

``revoke_sessions`` is declared and registered (admin only, no compensation: the user signs in
again) but never proposed from the diagnosis: nothing in the app's data tells a forgotten
password from a stolen one, and signing someone out of every device is a security decision a
person makes.
"""

from __future__ import annotations

from kruxt.activities.playbooks import base as pb
from kruxt.adapters.app_db import KruxtApp
from kruxt.models.enums import Category
from kruxt.models.playbooks import ApproverRole, Touches


def propose(d: pb.Diagnosis) -> list[pb.Proposal]:
    """Unlock a locked account; resend the verification mail of an unverified address."""
    user_id = d["user_id"]
    target = {"user_id": user_id}
    proposals: list[pb.Proposal] = []
    if d["locked"]:
        proposals.append(
            pb.Proposal(
                action="unlock_account",
                target=target,
                problem=(
                    f"the account is locked until {pb.when(d['locked_until'])} after "
                    f"{pb.plural(d['failed_logins'], 'failed sign-in')}"
                ),
                before={
                    "user_id": user_id,
                    "locked_until": d["locked_until"],
                    "failed_logins": d["failed_logins"],
                },
                after={"user_id": user_id, "locked_until": None, "failed_logins": 0},
            )
        )
    if not d["email_verified"]:
        proposals.append(
            pb.Proposal(
                action="resend_verification",
                target=target,
                problem=(
                    f"the email address {d['email']} was never verified ("
                    f"{pb.plural(d['verification_emails_sent'], 'verification email')} sent so far)"
                ),
                before={"user_id": user_id, "email_verified": False},
                after={
                    "user_id": user_id,
                    "email_verified": False,
                    "outbox_email": {
                        "user_id": user_id,
                        "to_email": d["email"],
                        "template": "verify_email",
                    },
                },
            )
        )
    return proposals


# -- actions and compensations ------------------------------------------------------------------


def _describe_unlock(t: pb.Target, d: pb.Diagnosis) -> str:
    failed = d.get("failed_logins", 0)
    return (
        f"unlock the account {t['user_id']} now and reset its failed sign-in count "
        f"from {failed} to 0"
    )


def _describe_resend(t: pb.Target, d: pb.Diagnosis) -> str:
    email = d.get("email", "the address on file")
    return f"send a new verification email to {email} ({t['user_id']})"


def _describe_revoke(t: pb.Target, d: pb.Diagnosis) -> str:
    sessions = len(d.get("active_sessions") or [])
    revoked = pb.plural(sessions, "active session")
    return f"sign {t['user_id']} out of every device ({revoked} revoked)"


UNLOCK = pb.Action(
    name="unlock_account",
    args=("user_id",),
    describe=_describe_unlock,
    tell_customer=lambda t, d: "we unlocked your account: you can sign in again now",
    compensation="relock_account",
    undo="lock the account again exactly as before (same expiry, same failed sign-ins)",
    rollback_note=(
        "The lock comes back with its original expiry; once that has passed, the account "
        "is unlocked anyway."
    ),
    touches=(Touches.PERMISSIONS,),
    requires=("account_still_locked",),
)

RESEND_VERIFICATION = pb.Action(
    name="resend_verification",
    args=("user_id",),
    describe=_describe_resend,
    tell_customer=lambda t, d: (
        f"we sent a new verification email to {d.get('email', 'your address')}: open the "
        "link in it to confirm your address"
    ),
    compensation=None,
    rollback_note=(
        "Nothing to undo: the email only asks the user to confirm their address, and an "
        "unused link expires on its own."
    ),
    touches=(Touches.DATA,),
    requires=("email_still_unverified",),
)

REVOKE_SESSIONS = pb.Action(
    name="revoke_sessions",
    args=("user_id",),
    describe=_describe_revoke,
    tell_customer=lambda t, d: (
        "we signed your account out of every device: sign in again with your password"
    ),
    compensation=None,
    rollback_note=(
        "Cannot be undone: a revoked session cannot be revived; the user signs in again on "
        "each device."
    ),
    touches=(Touches.PERMISSIONS,),
    approver_role=ApproverRole.ADMIN,
)


# -- preconditions --------------------------------------------------------------------------------


@pb.check("the account {user_id} is still locked")
async def account_still_locked(app: KruxtApp, t: pb.Target) -> str | None:
    d = await app.diagnose_auth_login(user_id=t["user_id"])
    if d["locked"]:
        return None
    return f"the account {t['user_id']} is no longer locked (unlocked meanwhile, or it expired)"


@pb.check("the email address of {user_id} is still unverified")
async def email_still_unverified(app: KruxtApp, t: pb.Target) -> str | None:
    d = await app.diagnose_auth_login(user_id=t["user_id"])
    if not d["email_verified"]:
        return None
    return f"the email address of {t['user_id']} has been verified meanwhile"


DECLARATION = pb.PlaybookDeclaration(
    category=Category.AUTH_LOGIN,
    touches=(Touches.PERMISSIONS, Touches.DATA),
    approver_role=ApproverRole.APPROVER,
    title="Sign-in problem",
    diagnose=lambda app, account_id: app.diagnose_auth_login(user_id=account_id),
    propose=propose,
    customer_update=pb.letter(
        "If you still cannot get in, reply here and we will take another look."
    ),
    actions=(UNLOCK, RESEND_VERIFICATION, REVOKE_SESSIONS),
    checks=(account_still_locked, email_still_unverified),
)
