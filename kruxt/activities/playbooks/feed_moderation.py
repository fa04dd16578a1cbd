"""feed_moderation: restore a post that was hidden automatically (hide it again as before).

Only the requester's own posts, and only those hidden by the automatic moderator: a post a
human moderator hid is a policy decision for staff, not for a playbook. Blocks between users
are the users' own and are never changed; no action here can touch them.
"""

from __future__ import annotations

from typing import Any

from kruxt.activities.playbooks import base as pb
from kruxt.adapters.app_db import KruxtApp
from kruxt.models.enums import Category
from kruxt.models.playbooks import ApproverRole, Touches

AUTOMATIC_MODERATOR = "automod"


async def diagnose(app: KruxtApp, account_id: str) -> pb.Diagnosis:
    """The account's hidden posts, each with its reports, moderation history and blocks."""
    hidden = await app.user_hidden_posts(user_id=account_id)
    posts = [
        await app.diagnose_feed_moderation(user_id=account_id, post_id=p["id"])
        for p in hidden["posts"]
    ]
    return {"user_id": account_id, "posts": posts}


def hidden_automatically(post: dict[str, Any]) -> bool:
    """True when the latest hide of the post was the automatic moderator's."""
    hides = [m for m in post.get("moderation_history") or [] if m["action"] == "hide"]
    if hides:
        return bool(hides[-1]["actor"] == AUTOMATIC_MODERATOR)
    reason = post["post"].get("hidden_reason") or ""
    return str(reason).startswith("auto-hidden")


def _post(d: pb.Diagnosis, post_id: str) -> dict[str, Any]:
    for p in d.get("posts") or []:
        if p["post"]["id"] == post_id:
            found: dict[str, Any] = p
            return found
    return {"post": {"id": post_id}, "reports": []}


def propose(d: pb.Diagnosis) -> list[pb.Proposal]:
    """Restore each of the requester's own posts the automatic moderator hid."""
    proposals = []
    for p in d["posts"]:
        post = p["post"]
        if post["visibility"] != "hidden" or not p["requester_is_author"]:
            continue
        if not hidden_automatically(p):
            continue
        reasons = sorted({r["reason"] for r in p["reports"]})
        reported = (
            f" after {pb.plural(len(p['reports']), 'report')} ({', '.join(reasons)})"
            if reasons
            else ""
        )
        proposals.append(
            pb.Proposal(
                action="restore_post_visibility",
                target={"user_id": d["user_id"], "post_id": post["id"]},
                problem=(
                    f"post {post['id']} was hidden automatically{reported}: "
                    f"“{post['hidden_reason']}”"
                ),
                before={
                    "post": {
                        "id": post["id"],
                        "user_id": post["author_id"],
                        "visibility": "hidden",
                        "hidden_reason": post["hidden_reason"],
                        "updated_at": post["updated_at"],
                    }
                },
                after={
                    "post": {
                        "id": post["id"],
                        "user_id": post["author_id"],
                        "visibility": "visible",
                        "hidden_reason": None,
                        "updated_at": pb.RUN_TIME,
                    },
                    "moderation_action": {
                        "id": pb.RUN_TIME,
                        "post_id": post["id"],
                        "action": "restore",
                        "actor": "kruxt_support",
                    },
                },
            )
        )
    return proposals


def no_steps(d: pb.Diagnosis) -> str:
    """Why nothing is proposed: no hidden posts, or hidden by a person."""
    by_people = [p["post"]["id"] for p in d.get("posts") or [] if not hidden_automatically(p)]
    if by_people:
        return (
            f"{', '.join(by_people)} hidden by a moderator: a policy decision for staff, not a "
            "playbook"
        )
    return "the account has no hidden posts"


RESTORE = pb.Action(
    name="restore_post_visibility",
    args=("post_id",),
    describe=lambda t, d: (
        f"make post {t['post_id']} of {t['user_id']} visible in the feed again and note the "
        "restore in its moderation history"
    ),
    tell_customer=lambda t, d: (
        "your post is visible in the feed again: it had been hidden automatically by mistake"
    ),
    compensation="hide_post_again",
    undo="hide the post again as it was and withdraw the restore from its moderation history",
    rollback_note="The post is hidden again with its original reason and timestamp.",
    touches=(Touches.DATA,),
    approver_role=ApproverRole.MODERATOR,
    requires=("post_still_hidden",),
)


@pb.check("post {post_id} is still hidden")
async def post_still_hidden(app: KruxtApp, t: pb.Target) -> str | None:
    d = await app.diagnose_feed_moderation(user_id=t["user_id"], post_id=t["post_id"])
    if d["post"]["visibility"] == "hidden":
        return None
    return f"post {t['post_id']} is {d['post']['visibility']} now, no longer hidden"


DECLARATION = pb.PlaybookDeclaration(
    category=Category.FEED_MODERATION,
    touches=(Touches.DATA,),
    approver_role=ApproverRole.MODERATOR,
    title="Post hidden from the feed",
    diagnose=diagnose,
    propose=propose,
    customer_update=pb.letter("Thanks for your patience."),
    actions=(RESTORE,),
    checks=(post_still_hidden,),
    never_changes="blocks between users (they are the users' own) and the reports themselves.",
    no_steps=no_steps,
)
