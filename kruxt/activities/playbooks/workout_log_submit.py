"""workout_log_submit: replay a failed workout submission (delete the replayed workout).

Only submissions the app marks replayable are proposed: failed on a server-side error, with a
payload that parses and no workout yet. A payload the app rejected (a bad timestamp ...)
cannot be replayed as it is; the customer has to log that workout again.
"""

from __future__ import annotations

from typing import Any

from kruxt.activities.playbooks import base as pb
from kruxt.adapters.app_db import KruxtApp
from kruxt.models.enums import Category
from kruxt.models.playbooks import ApproverRole, Touches


def _title(s: dict[str, Any]) -> str:
    # As the app names a replayed workout: the payload's title, or "Workout".
    title = str(s.get("title") or "").strip()
    return title or "Workout"


def _submission(d: pb.Diagnosis, submission_id: str) -> dict[str, Any]:
    return pb.find(d.get("failed_submissions"), submission_id, {"id": submission_id})


def propose(d: pb.Diagnosis) -> list[pb.Proposal]:
    """One replay per replayable failed submission, oldest first."""
    user_id = d["user_id"]
    proposals = []
    for s in reversed(d["failed_submissions"]):  # the diagnosis lists newest first
        if not s["replayable"]:
            continue
        proposals.append(
            pb.Proposal(
                action="replay_submission",
                target={"user_id": user_id, "submission_id": s["id"]},
                problem=(
                    f"the workout “{_title(s)}” ({s['id']}) sent {pb.when(s['submitted_at'])} was "
                    f"not saved: {s['error']}"
                ),
                before={
                    "submission": {
                        "id": s["id"],
                        "user_id": user_id,
                        "status": "failed",
                        "error": s["error"],
                        "workout_id": None,
                    }
                },
                after={
                    "submission": {
                        "id": s["id"],
                        "user_id": user_id,
                        "status": "accepted",
                        "error": None,
                        "workout_id": pb.RUN_TIME,
                    },
                    "workout": {
                        "id": pb.RUN_TIME,
                        "user_id": user_id,
                        "submission_id": s["id"],
                        "title": _title(s),
                    },
                },
            )
        )
    return proposals


def no_steps(d: pb.Diagnosis) -> str:
    """Why nothing is proposed: no failures, or only ones that cannot be replayed."""
    stuck = [s for s in d.get("failed_submissions") or [] if not s["replayable"]]
    if not stuck:
        return "no failed workout submissions in the last 30 days"
    listed = "; ".join(f"{s['id']} ({s['error']})" for s in stuck)
    return f"the failed submissions cannot be replayed as they are: {listed}"


def _describe_replay(t: pb.Target, d: pb.Diagnosis) -> str:
    s = _submission(d, t["submission_id"])
    return (
        f"save the workout “{_title(s)}” of {t['user_id']} from its failed submission "
        f"{t['submission_id']} and mark the submission accepted"
    )


REPLAY = pb.Action(
    name="replay_submission",
    args=("submission_id",),
    describe=_describe_replay,
    tell_customer=lambda t, d: (
        f"your workout “{_title(_submission(d, t['submission_id']))}” is now saved in your log"
    ),
    compensation="delete_replayed_workout",
    undo="delete the replayed workout and put the submission back as it was",
    rollback_note="The submission goes back to failed with its original error.",
    touches=(Touches.DATA,),
    requires=("submission_still_failed",),
)


@pb.check("workout submission {submission_id} still failed and has no workout")
async def submission_still_failed(app: KruxtApp, t: pb.Target) -> str | None:
    d = await app.diagnose_workout_log_submit(user_id=t["user_id"])
    s = _submission(d, t["submission_id"])
    if "replayable" not in s:
        return (
            f"workout submission {t['submission_id']} is no longer a failed submission of "
            f"{t['user_id']} (accepted meanwhile, or older than 30 days)"
        )
    if not s["replayable"]:
        return f"workout submission {t['submission_id']} has a workout now or cannot be replayed"
    return None


DECLARATION = pb.PlaybookDeclaration(
    category=Category.WORKOUT_LOG_SUBMIT,
    touches=(Touches.DATA,),
    approver_role=ApproverRole.APPROVER,
    title="Workouts that failed to save",
    diagnose=lambda app, account_id: app.diagnose_workout_log_submit(user_id=account_id),
    propose=propose,
    customer_update=pb.letter(
        "Sorry about that: the failure was on our side. If a workout is still missing, reply here."
    ),
    actions=(REPLAY,),
    checks=(submission_still_failed,),
    no_steps=no_steps,
)
