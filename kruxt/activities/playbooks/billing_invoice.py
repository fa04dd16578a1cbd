"""billing_invoice: resend a bounced invoice (none needed); restore billing access (revoke again).

Admin approval for both. Restoring billing access is proposed only while the ``billing_live``
feature flag is on: until billing is live, the app refuses it, and so does this playbook.
"""

from __future__ import annotations

from typing import Any

from kruxt.activities.playbooks import base as pb
from kruxt.adapters.app_db import KruxtApp
from kruxt.models.enums import Category
from kruxt.models.playbooks import ApproverRole, Touches

RESENDABLE = frozenset({"open", "paid"})


def _amount(i: dict[str, Any]) -> str:
    return f"{i['amount_cents'] / 100:.2f} {i['currency']}"


def _invoice(d: pb.Diagnosis, invoice_id: str) -> dict[str, Any]:
    return pb.find(d.get("invoices"), invoice_id, {"id": invoice_id, "number": invoice_id})


def _access_revoked(d: pb.Diagnosis) -> bool:
    access = d.get("billing_access")
    return access is not None and not access["enabled"]


def propose(d: pb.Diagnosis) -> list[pb.Proposal]:
    """Resend each bounced issued invoice; restore revoked billing access once billing is live."""
    user_id = d["user_id"]
    proposals = []
    for i in d["invoices"]:
        if i["delivery_status"] != "bounced" or i["status"] not in RESENDABLE:
            continue
        image = {"id": i["id"], "number": i["number"], "delivery_status": "bounced"}
        proposals.append(
            pb.Proposal(
                action="resend_invoice",
                target={"user_id": user_id, "invoice_id": i["id"]},
                problem=(
                    f"invoice {i['number']} ({_amount(i)}, issued {pb.when(i['issued_at'])}) "
                    f"bounced and never reached {d['email']}"
                ),
                before={"invoice": image},
                after={
                    "invoice": image,
                    "delivery": {"id": pb.RUN_TIME, "invoice_id": i["id"]},
                },
            )
        )
    if _access_revoked(d) and d["billing_live"]:
        access = d["billing_access"]
        proposals.append(
            pb.Proposal(
                action="restore_billing_access",
                target={"user_id": user_id},
                problem=(
                    f"billing access of {user_id} ({d['plan']} plan) is off since "
                    f"{pb.when(access['updated_at'])}"
                ),
                before={
                    "user_id": user_id,
                    "billing_access": {
                        "user_id": user_id,
                        "enabled": False,
                        "updated_at": access["updated_at"],
                    },
                },
                after={
                    "user_id": user_id,
                    "billing_access": {
                        "user_id": user_id,
                        "enabled": True,
                        "updated_at": pb.RUN_TIME,
                    },
                },
            )
        )
    return proposals


def no_steps(d: pb.Diagnosis) -> str:
    """Why nothing is proposed: notably billing access while billing is not live."""
    if _access_revoked(d) and not d["billing_live"]:
        return (
            "billing access is off, but billing is not live yet (feature flag billing_live is "
            "off): restoring it is not automated until it is"
        )
    return "every issued invoice was delivered and billing access is not revoked"


RESEND = pb.Action(
    name="resend_invoice",
    args=("invoice_id",),
    describe=lambda t, d: (
        f"send invoice {_invoice(d, t['invoice_id'])['number']} ({t['invoice_id']}) again to "
        f"{d.get('email', t['user_id'])}"
    ),
    tell_customer=lambda t, d: (
        f"we sent invoice {_invoice(d, t['invoice_id'])['number']} to "
        f"{d.get('email', 'your email address')} again"
    ),
    compensation=None,
    rollback_note=(
        "Nothing to undo: it only sends another copy of an invoice already issued; the amount "
        "and status of the invoice do not change."
    ),
    touches=(Touches.DATA,),
    approver_role=ApproverRole.ADMIN,
    requires=("invoice_still_undelivered",),
)

RESTORE_ACCESS = pb.Action(
    name="restore_billing_access",
    args=("user_id",),
    describe=lambda t, d: f"turn billing access of {t['user_id']} back on",
    tell_customer=lambda t, d: "your billing access is restored",
    compensation="revoke_billing_access",
    undo="turn billing access off again exactly as it was",
    rollback_note="The billing access row goes back exactly as it was (off, same timestamp).",
    touches=(Touches.PERMISSIONS,),
    approver_role=ApproverRole.ADMIN,
    requires=("billing_live_and_access_disabled",),
)


@pb.check("invoice {invoice_id} is still issued and bounced")
async def invoice_still_undelivered(app: KruxtApp, t: pb.Target) -> str | None:
    d = await app.diagnose_billing_invoice(user_id=t["user_id"])
    i = _invoice(d, t["invoice_id"])
    if "status" not in i:
        return f"invoice {t['invoice_id']} is no longer an invoice of {t['user_id']}"
    if i["status"] not in RESENDABLE:
        return f"invoice {i['number']} is {i['status']} now: only issued invoices are resent"
    if i["delivery_status"] != "bounced":
        return f"invoice {i['number']} is {i['delivery_status']} now, no longer bounced"
    return None


@pb.check("the billing_live flag is on and billing access of {user_id} is still disabled")
async def billing_live_and_access_disabled(app: KruxtApp, t: pb.Target) -> str | None:
    d = await app.diagnose_billing_invoice(user_id=t["user_id"])
    if not d["billing_live"]:
        return "billing is not live (feature flag billing_live is off)"
    if not _access_revoked(d):
        return f"billing access of {t['user_id']} is no longer disabled"
    return None


DECLARATION = pb.PlaybookDeclaration(
    category=Category.BILLING_INVOICE,
    touches=(Touches.DATA, Touches.PERMISSIONS),
    approver_role=ApproverRole.ADMIN,
    title="Billing or invoice problem",
    diagnose=lambda app, account_id: app.diagnose_billing_invoice(user_id=account_id),
    propose=propose,
    customer_update=pb.letter("If something about your billing still looks wrong, reply here."),
    actions=(RESEND, RESTORE_ACCESS),
    checks=(invoice_still_undelivered, billing_live_and_access_disabled),
    no_steps=no_steps,
)
