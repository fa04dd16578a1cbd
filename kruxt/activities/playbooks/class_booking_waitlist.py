"""class_booking_waitlist: repair a class's waitlist and fill its free seats (restore it as before).

Proposed for the upcoming classes the requester is waitlisted in whose waitlist is broken
(duplicate or missing positions, waitlisted bookings without one, stale positions) or that
have free seats while people wait. The repair is the app's: the longest-waiting fill the free
seats, the rest are numbered 1..n by sign-up time. The preview below computes the same thing
from the diagnosis, and the plan is refused if the class's bookings changed since.
"""

from __future__ import annotations

from typing import Any

from kruxt.activities.playbooks import base as pb
from kruxt.adapters.app_db import KruxtApp
from kruxt.models.enums import Category
from kruxt.models.playbooks import ApproverRole, Touches

REPAIRABLE = frozenset(
    {
        "duplicate_waitlist_positions",
        "waitlist_gaps",
        "waitlisted_without_position",
        "free_capacity_with_waitlist",
        "stale_positions_outside_waitlist",
    }
)

BOOKING_FIELDS = ("id", "user_id", "status", "waitlist_position")


async def diagnose(app: KruxtApp, account_id: str) -> pb.Diagnosis:
    """The account's upcoming bookings, and each of their classes' waitlist diagnosis."""
    mine = await app.user_class_bookings(user_id=account_id)
    class_ids = list(dict.fromkeys(b["class_id"] for b in mine["bookings"]))
    classes = [
        await app.diagnose_class_booking_waitlist(user_id=account_id, class_id=c) for c in class_ids
    ]
    return {"user_id": account_id, "bookings": mine["bookings"], "classes": classes}


def _bookings(c: dict[str, Any]) -> list[dict[str, Any]]:
    return [{k: b[k] for k in BOOKING_FIELDS} for b in c["bookings"]]


def repaired(c: dict[str, Any]) -> list[dict[str, Any]]:
    """The class's bookings as ``repair_waitlist`` will leave them (a pure dry run).

    The diagnosis lists bookings by sign-up time (created_at, id), the order the app ranks
    the waitlist in.
    """
    booked = sum(1 for b in c["bookings"] if b["status"] == "booked")
    free = max(c["class"]["capacity"] - booked, 0)
    rank = 0
    out = []
    for b in _bookings(c):
        if b["status"] == "waitlisted":
            rank += 1
            if rank <= free:
                b = {**b, "status": "booked", "waitlist_position": None}
            else:
                b = {**b, "waitlist_position": rank - free}
        else:
            b = {**b, "waitlist_position": None}
        out.append(b)
    return out


def bookings_fingerprint(c: dict[str, Any]) -> str:
    """What the preview was computed from: every booking's id, status and position."""
    return pb.fingerprint(_bookings(c))


def _class(d: pb.Diagnosis, class_id: str) -> dict[str, Any]:
    for c in d.get("classes") or []:
        if c["class"]["id"] == class_id:
            found: dict[str, Any] = c
            return found
    raise KeyError(f"class {class_id} is not in the diagnosis")


def _needs_repair(c: dict[str, Any]) -> bool:
    return bool(REPAIRABLE & set(c["findings"]))


def _problem(c: dict[str, Any]) -> str:
    cls = c["class"]
    parts = [
        f"{cls['title']} ({cls['id']}, {pb.when(cls['starts_at'])}) has "
        f"{c['booked']} of {cls['capacity']} seats booked and {c['waitlisted']} waiting"
    ]
    if c["free_seats"] and c["waitlisted"]:
        parts.append(f"{pb.plural(c['free_seats'], 'seat')} free while people wait")
    if c["duplicate_positions"]:
        parts.append(f"duplicate waitlist positions {c['duplicate_positions']}")
    if c["missing_positions"]:
        parts.append(f"missing positions {c['missing_positions']}")
    return "; ".join(parts)


def propose(d: pb.Diagnosis) -> list[pb.Proposal]:
    """A repair for each broken class the requester is waitlisted in."""
    proposals = []
    for c in d["classes"]:
        mine = c.get("requester_booking") or {}
        if mine.get("status") != "waitlisted" or not _needs_repair(c):
            continue
        class_id = c["class"]["id"]
        proposals.append(
            pb.Proposal(
                action="repair_waitlist",
                target={
                    "user_id": d["user_id"],
                    "class_id": class_id,
                    "bookings_fingerprint": bookings_fingerprint(c),
                },
                problem=_problem(c),
                before={
                    "class_id": class_id,
                    "capacity": c["class"]["capacity"],
                    "bookings": _bookings(c),
                },
                after={
                    "class_id": class_id,
                    "capacity": c["class"]["capacity"],
                    "bookings": repaired(c),
                },
            )
        )
    return proposals


def no_steps(d: pb.Diagnosis) -> str:
    """Why nothing is proposed."""
    if not d.get("classes"):
        return "the account is not booked or waitlisted in any upcoming class"
    return "the account is not waitlisted in an upcoming class with a broken waitlist"


def _describe(t: pb.Target, d: pb.Diagnosis) -> str:
    c = _class(d, t["class_id"])
    before = {b["id"]: b for b in _bookings(c)}
    after = repaired(c)
    promoted = [b["user_id"] for b in after if before[b["id"]]["status"] != b["status"]]
    waiting = [b for b in after if b["status"] == "waitlisted"]
    text = f"repair the waitlist of {c['class']['title']} ({t['class_id']})"
    if promoted:
        text += (
            f": give the {pb.plural(len(promoted), 'free seat')} to the longest-waiting "
            f"({', '.join(promoted)})"
        )
    if waiting:
        joint = " and" if promoted else ":"
        text += f"{joint} renumber the {len(waiting)} still waiting 1 to {len(waiting)}"
    return text


def _tell(t: pb.Target, d: pb.Diagnosis) -> str:
    c = _class(d, t["class_id"])
    mine = c.get("requester_booking") or {}
    title = c["class"]["title"]
    starts = pb.when(c["class"]["starts_at"])
    for b in repaired(c):
        if b["id"] == mine.get("id"):
            if b["status"] == "booked":
                return f"you now have a seat in {title} on {starts}"
            position = b["waitlist_position"]
            return f"your place on the waitlist of {title} on {starts} is now number {position}"
    return f"the waitlist of {title} on {starts} is in order again"


REPAIR = pb.Action(
    name="repair_waitlist",
    args=("class_id",),
    describe=_describe,
    tell_customer=_tell,
    compensation="restore_waitlist",
    undo="put every booking of the class back to its previous status and waitlist position",
    rollback_note="Every booking of the class gets back its previous status and position.",
    touches=(Touches.DATA,),
    requires=("waitlist_still_broken", "bookings_unchanged_since_plan"),
)


@pb.check(
    "class {class_id} still has duplicate or missing waitlist positions, or free seats with a "
    "waitlist"
)
async def waitlist_still_broken(app: KruxtApp, t: pb.Target) -> str | None:
    c = await app.diagnose_class_booking_waitlist(user_id=t["user_id"], class_id=t["class_id"])
    if _needs_repair(c):
        return None
    return f"the waitlist of class {t['class_id']} is in order now: nothing left to repair"


@pb.check("the bookings of class {class_id} are still those previewed")
async def bookings_unchanged_since_plan(app: KruxtApp, t: pb.Target) -> str | None:
    c = await app.diagnose_class_booking_waitlist(user_id=t["user_id"], class_id=t["class_id"])
    if bookings_fingerprint(c) == t["bookings_fingerprint"]:
        return None
    return (
        f"the bookings of class {t['class_id']} changed since the plan was made: the approved "
        "preview no longer says what the repair would do"
    )


DECLARATION = pb.PlaybookDeclaration(
    category=Category.CLASS_BOOKING_WAITLIST,
    touches=(Touches.DATA,),
    approver_role=ApproverRole.APPROVER,
    title="Class waitlist out of order",
    diagnose=diagnose,
    propose=propose,
    customer_update=pb.letter("Sorry for the mix-up with the waitlist."),
    actions=(REPAIR,),
    checks=(waitlist_still_broken, bookings_unchanged_since_plan),
    no_steps=no_steps,
)
