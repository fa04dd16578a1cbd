"""Playbook declarations, and the plan and approval texts rendered from them.

A playbook module declares what it may do (:class:`Action`, :class:`Compensation`,
:class:`Check`) and how it reads the app (``diagnose``) and proposes (``propose``). A plan is
built here from those declarations and the diagnosis alone, and so are its three approval
texts, its preconditions and its customer update: nothing is written by hand per plan, so
the texts cannot say anything the steps will not do.

Playbook modules import this module as ``pb``: the vocabulary every playbook is written in
(``pb.Action``, ``@pb.check``, ``pb.letter`` ...), named once rather than listed in each.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kruxt.adapters.app_db import ChangeResult, KruxtApp
from kruxt.agents.knowledge import sanitize_name
from kruxt.models.catalog import CATALOG
from kruxt.models.enums import Category, RiskTier
from kruxt.models.playbooks import (
    ApproverRole,
    PlannedStep,
    PlaybookPlan,
    Precondition,
    Touches,
    strongest,
)
from kruxt.models.text import sentence

__all__ = [
    "RUN_TIME",
    "Action",
    "Check",
    "Compensation",
    "Diagnosis",
    "PlaybookDeclaration",
    "Proposal",
    "Target",
    "build_plan",
    "check",
    "find",
    "findings",
    "fingerprint",
    "letter",
    "matches_preview",
    "plural",
    "render_customer_update",
    "render_plain",
    "render_rollback",
    "render_rollback_update",
    "render_technical",
    "when",
]

Target = dict[str, str]
Diagnosis = dict[str, Any]

# A preview value the dry run cannot know (a new row's id, a timestamp): any non-null value
# in the result matches it.
RUN_TIME = "(set when the step runs)"

DiagnoseCall = Callable[[KruxtApp, str], Awaitable[Diagnosis]]
CheckCall = Callable[[KruxtApp, Target], Awaitable[str | None]]
Describe = Callable[[Target, Diagnosis], str]


@dataclass(frozen=True)
class Action:
    """A registered step: one ``kruxt_admin`` function, and everything said about it.

    ``name`` is the action name plans refer to and the app function it calls; ``args`` are the
    target keys passed to that function. Both the call that runs (:meth:`call`) and the call
    the technical text shows are built from these two, so an approver reads what runs.
    ``describe`` says in plain words what the step will
    change; ``tell_customer`` what the customer is told once it ran. ``compensation`` names
    the app function that undoes it and ``undo`` says what that does, so the compensation is
    declared with the action it undoes (:attr:`compensating`). ``rollback_note`` says
    what undoing it means, or, for a step with no compensation, why there is none (a sentence
    that starts with "Nothing to undo:" or "Cannot be undone:").
    ``requires`` names the checks that must still hold when the approved plan runs.
    """

    name: str
    args: tuple[str, ...]
    describe: Describe
    tell_customer: Describe
    compensation: str | None
    rollback_note: str
    touches: tuple[Touches, ...]
    approver_role: ApproverRole = ApproverRole.APPROVER
    requires: tuple[str, ...] = ()
    undo: str = ""

    def arguments(self, target: Target) -> dict[str, str]:
        """The app function's arguments for ``target``: the declared ``args``, nothing else."""
        return {arg: target[arg] for arg in self.args}

    async def call(self, app: KruxtApp, key: str, target: Target) -> ChangeResult:
        """Run the step on ``target`` under the idempotency ``key``."""
        return await app.call(self.name, key, **self.arguments(target))

    @property
    def compensating(self) -> Compensation | None:
        """The compensation this action names, undoing it; None when it has none."""
        if self.compensation is None:
            return None
        return Compensation(name=self.compensation, undoes=self.name, describe=self.undo)


@dataclass(frozen=True)
class Compensation:
    """The undo of an action: the app function ``name`` restores the action's before image.

    Playbook modules declare one in the action it undoes (``compensation`` and ``undo``), so
    its name, what it does and the action it undoes are written once.

    The app makes it idempotent by its key, and a no-op (success) when nothing was applied
    under ``original_key`` or it was undone already.
    """

    name: str
    undoes: str
    describe: str

    async def call(self, app: KruxtApp, key: str, original_key: str) -> ChangeResult:
        """Undo what ran under ``original_key``, itself keyed by ``key``."""
        return await app.call(self.name, key, original_key=original_key)


@dataclass(frozen=True)
class Check:
    """A precondition: ``call`` returns None while it holds, else the reason it does not.

    Playbook modules declare one with :func:`check` on its ``call``.
    """

    name: str
    call: CheckCall
    describe: Callable[[Target], str]


def check(holds: str) -> Callable[[CheckCall], Check]:
    """Declare the decorated reader as the check of its own name.

    ``holds`` says what must still hold, a template over the target's keys
    (``"post {post_id} is still hidden"``).
    """

    def declare(call: CheckCall) -> Check:
        return Check(name=call.__name__, call=call, describe=lambda t: holds.format_map(t))

    return declare


@dataclass(frozen=True)
class Proposal:
    """One step ``propose`` wants, from the diagnosis: what is wrong and the dry-run preview.

    ``before`` and ``after`` are partial images in the shape of the app function's result;
    :func:`matches_preview` checks a result against them. ``preconditions`` adds checks to
    those the action always requires.
    """

    action: str
    target: Target
    problem: str
    before: Any
    after: Any
    preconditions: tuple[str, ...] = ()

    @property
    def preview(self) -> dict[str, Any]:
        """The dry run as the plan carries it."""
        return {"before": self.before, "after": self.after}


def _proposes_nothing(diagnosis: Diagnosis) -> list[Proposal]:
    return []


@dataclass(frozen=True)
class PlaybookDeclaration:
    """A playbook: who approves it, what it touches, how it diagnoses and what it may do.

    Its id and risk are the catalog's for its ``category`` (``CATALOG``, what the router
    reads), and its compensations are those its actions declare: neither is written twice.

    ``customer_update`` is a template with ``{name}`` and ``{changes}`` (one line per step,
    from each action's ``tell_customer``); :func:`letter` frames it. ``no_steps`` explains,
    from the diagnosis, why nothing is proposed when that needs more than "nothing to fix".
    ``never_changes`` names what the playbook leaves alone on purpose; the technical text
    repeats it. A read-only playbook only diagnoses: it keeps the defaults (no proposal, no
    customer update).
    """

    category: Category
    touches: tuple[Touches, ...]
    approver_role: ApproverRole
    title: str
    diagnose: DiagnoseCall
    propose: Callable[[Diagnosis], list[Proposal]] = _proposes_nothing
    customer_update: str = ""
    actions: tuple[Action, ...] = ()
    checks: tuple[Check, ...] = ()
    never_changes: str = ""
    no_steps: Callable[[Diagnosis], str] | None = None

    @property
    def id(self) -> str:
        """The playbook's id, as the catalog names it for the category."""
        return CATALOG[self.category].playbook

    @property
    def risk(self) -> RiskTier:
        """The catalog's risk tier for the category."""
        return CATALOG[self.category].risk

    @property
    def compensations(self) -> tuple[Compensation, ...]:
        """The compensations the actions declare, in the actions' order."""
        return tuple(c for a in self.actions if (c := a.compensating) is not None)

    def action(self, name: str) -> Action:
        """This playbook's action ``name`` (a playbook proposes only its own actions)."""
        for action in self.actions:
            if action.name == name:
                return action
        raise KeyError(f"playbook {self.id} declares no action {name!r}")

    def compensation(self, name: str) -> Compensation:
        """This playbook's compensation ``name``."""
        for comp in self.compensations:
            if comp.name == name:
                return comp
        raise KeyError(f"playbook {self.id} declares no compensation {name!r}")

    def check(self, name: str) -> Check:
        """This playbook's check ``name``."""
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(f"playbook {self.id} declares no check {name!r}")


# -- small helpers the playbook modules share ---------------------------------------------------


def when(value: str | None) -> str:
    """An app timestamp (ISO text from jsonb) as ``2025-06-01 14:32 UTC``; "never" for None."""
    if not value:
        return "never"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    if moment.utcoffset() is None:
        return value
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def letter(closing: str) -> str:
    """A ``customer_update`` template: the greeting, the changes, ``closing``, the signature."""
    return f"Hi {{name}},\n\n{{changes}}\n\n{closing}\n\nThe KRUXT team"


def find(items: Iterable[Any] | None, item_id: str, default: dict[str, Any]) -> dict[str, Any]:
    """The item of a diagnosis list whose ``id`` is ``item_id``, else ``default``."""
    found: dict[str, Any] = next((i for i in items or () if i["id"] == item_id), default)
    return found


def fingerprint(value: Any) -> str:
    """A short, stable digest of JSON data: "still the data the plan was made from"."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 seat``, ``2 seats``."""
    return f"{n} {word if n == 1 else (many or word + 's')}"


def matches_preview(preview: Any, actual: Any) -> bool:
    """True when ``actual`` (an app result image) is what ``preview`` said it would be.

    Dicts match when every previewed key matches (the result may carry more); lists match
    element by element and must have the same length; :data:`RUN_TIME` matches any non-null
    value; anything else must be equal.
    """
    if preview == RUN_TIME:
        return actual is not None
    if isinstance(preview, dict):
        return isinstance(actual, dict) and all(
            key in actual and matches_preview(value, actual[key]) for key, value in preview.items()
        )
    if isinstance(preview, list):
        return (
            isinstance(actual, list)
            and len(preview) == len(actual)
            and all(matches_preview(p, a) for p, a in zip(preview, actual, strict=True))
        )
    if isinstance(preview, bool) or isinstance(actual, bool):
        return preview is actual
    return bool(preview == actual)


def _compact(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(i for i in items if i))


def findings(diagnosis: Any) -> list[str]:
    """Every ``findings`` entry anywhere in a diagnosis, in order, without repeats."""
    found: list[str] = []
    if isinstance(diagnosis, dict):
        for key, value in diagnosis.items():
            if key == "findings" and isinstance(value, list):
                found.extend(str(v) for v in value)
            else:
                found.extend(findings(value))
    elif isinstance(diagnosis, list):
        for item in diagnosis:
            found.extend(findings(item))
    return _unique(found)


# -- the plan and its texts ----------------------------------------------------------------------


def build_plan(
    declaration: PlaybookDeclaration,
    *,
    ticket_id: uuid.UUID,
    plan_id: uuid.UUID,
    diagnosis: Diagnosis,
    proposals: list[Proposal],
    account: dict[str, Any],
    requester_name: str = "",
) -> PlaybookPlan:
    """The plan for ``proposals``: steps s1, s2 ..., preconditions and every text.

    ``account`` is the app's account context (its ``user_id`` and ``name`` name the
    account in the texts).
    """
    if not proposals:
        raise ValueError("a plan needs at least one step")
    steps: list[PlannedStep] = []
    preconditions: list[Precondition] = []
    seen: set[tuple[str, str]] = set()
    for number, proposal in enumerate(proposals, start=1):
        action = declaration.action(proposal.action)
        missing = [arg for arg in action.args if not proposal.target.get(arg)]
        if missing:
            raise ValueError(f"{action.name}: the target lacks {', '.join(missing)}")
        steps.append(
            PlannedStep(
                step_id=f"s{number}",
                action=action.name,
                target=dict(proposal.target),
                description=action.describe(proposal.target, diagnosis),
                preview=proposal.preview,
                compensation=action.compensation,
                rollback_note=action.rollback_note,
                touches=list(action.touches),
                approver_role=action.approver_role,
            )
        )
        for name in _unique([*action.requires, *proposal.preconditions]):
            check = declaration.check(name)
            key = (name, _compact(proposal.target))
            if key in seen:
                continue
            seen.add(key)
            preconditions.append(
                Precondition(
                    check=name,
                    target=dict(proposal.target),
                    description=check.describe(proposal.target),
                )
            )
    touches = [t for t in Touches if any(t in s.touches for s in steps)]
    approver = strongest([s.approver_role for s in steps])
    who = _who(account)
    # Names are untrusted: the customer update greets by the same sanitized first name the
    # knowledge agent's replies use, never by whatever the name field or the app profile holds.
    name = sanitize_name(requester_name.strip() or str(account.get("name") or ""))
    return PlaybookPlan(
        plan_id=plan_id,
        ticket_id=ticket_id,
        playbook=declaration.id,
        risk=declaration.risk,
        touches=touches,
        approver_role=approver,
        diagnosis=diagnosis,
        steps=steps,
        preconditions=preconditions,
        plain_explanation=render_plain(declaration, who, proposals, steps, approver),
        technical_explanation=render_technical(
            declaration,
            plan_id=plan_id,
            diagnosis=diagnosis,
            steps=steps,
            preconditions=preconditions,
            touches=touches,
            approver=approver,
        ),
        rollback_plan=render_rollback(declaration, plan_id=plan_id, steps=steps),
        customer_update=render_customer_update(declaration, name, proposals, diagnosis),
        rollback_update=render_rollback_update(declaration, name, proposals, diagnosis),
    )


def _who(account: dict[str, Any]) -> str:
    user_id = str(account.get("user_id") or "")
    name = str(account.get("name") or "").strip()
    return f"{name} ({user_id})" if name else user_id


def _undo_line(declaration: PlaybookDeclaration, step: PlannedStep) -> str:
    if step.compensation:
        return sentence(f"undo: {declaration.compensation(step.compensation).describe}")
    return sentence(step.rollback_note)


def render_plain(
    declaration: PlaybookDeclaration,
    who: str,
    proposals: list[Proposal],
    steps: list[PlannedStep],
    approver: ApproverRole,
) -> str:
    """For a founder on a phone: what is wrong, what will change, whether it can be undone."""
    problems = _unique(p.problem for p in proposals)
    lines = [f"{declaration.title}: {who}", ""]
    lines.append("What is wrong: " + " ".join(sentence(p) for p in problems))
    lines.append("")
    lines.append(f"If you approve, {plural(len(steps), 'change')}:")
    for number, step in enumerate(steps, start=1):
        lines.append(f"{number}. {sentence(step.description)} {_undo_line(declaration, step)}")
    lines.append("")
    lines.append(f"Needs approval from: {approver.value}.")
    return "\n".join(lines)


def _call(function: str, key: str, args: dict[str, str]) -> str:
    rendered = ", ".join([f"'{key}'", *(f"{k} => '{v}'" for k, v in args.items())])
    return f"kruxt_admin.{function}({rendered})"


def render_technical(
    declaration: PlaybookDeclaration,
    *,
    plan_id: uuid.UUID,
    diagnosis: Diagnosis,
    steps: list[PlannedStep],
    preconditions: list[Precondition],
    touches: list[Touches],
    approver: ApproverRole,
) -> str:
    """For an engineer: the exact calls, their arguments and keys, the dry-run preview."""
    lines = [
        f"Playbook {declaration.id} · risk {declaration.risk.value} · touches "
        f"{', '.join(t.value for t in touches)} · approver role {approver.value}",
        f"Diagnosis findings: {', '.join(findings(diagnosis)) or 'none'}",
        "",
        "Steps, in order (each an idempotent call keyed <plan_id>:<step_id>; a retry applies "
        "nothing twice):",
    ]
    for step in steps:
        action = declaration.action(step.action)
        key = f"{plan_id}:{step.step_id}"
        lines.append(f"{step.step_id}. {_call(action.name, key, action.arguments(step.target))}")
        lines.append(f"    before: {_compact(step.preview.get('before'))}")
        lines.append(f"    after:  {_compact(step.preview.get('after'))}")
        if step.compensation:
            undo = _call(step.compensation, key + ":undo", {"original_key": key})
            lines.append(f"    compensation: {undo}")
        else:
            lines.append("    compensation: none")
    lines.append("")
    lines.append(
        "Preconditions, re-checked right before the run (the run is refused if one fails):"
    )
    for pre in preconditions:
        listed = ", ".join(f"{k}={v}" for k, v in pre.target.items())
        lines.append(f"- {pre.check}({listed}): {pre.description}")
    if declaration.never_changes:
        lines.append("")
        lines.append(f"Never changed: {declaration.never_changes}")
    return "\n".join(lines)


def render_rollback(
    declaration: PlaybookDeclaration, *, plan_id: uuid.UUID, steps: list[PlannedStep]
) -> str:
    """Per step: its compensation, or the written rollback note when it has none."""
    lines = [
        "If a step fails, the steps before it are undone in reverse order; an approved rollback "
        "undoes every applied step the same way.",
    ]
    for step in reversed(steps):
        target = ", ".join(f"{k}={v}" for k, v in step.target.items())
        key = f"{plan_id}:{step.step_id}"
        if step.compensation:
            comp = declaration.compensation(step.compensation)
            lines.append(
                f"- {step.step_id} {step.action}({target}): "
                f"{_call(comp.name, key + ':undo', {'original_key': key})}: {comp.describe}. "
                f"{step.rollback_note}".rstrip()
            )
        else:
            lines.append(
                f"- {step.step_id} {step.action}({target}): no compensation. {step.rollback_note}"
            )
    return "\n".join(lines)


def render_customer_update(
    declaration: PlaybookDeclaration, name: str, proposals: list[Proposal], diagnosis: Diagnosis
) -> str:
    """What the customer is told when the run succeeded: one line per change."""
    changes = _unique(
        sentence(declaration.action(p.action).tell_customer(p.target, diagnosis)) for p in proposals
    )
    return declaration.customer_update.format(
        name=name, changes="\n".join(f"- {c}" for c in changes)
    )


# Said once an approved rollback undid a run: the customer was told the change was made.
_ROLLBACK_LEAD = "We have undone a change we made for you earlier, so this no longer holds:"
_ROLLBACK_CLOSING = "A member of the KRUXT team will follow up here with what happens next."


def render_rollback_update(
    declaration: PlaybookDeclaration, name: str, proposals: list[Proposal], diagnosis: Diagnosis
) -> str:
    """What the customer is told when an approved rollback undid the run: what they were
    told of each step a compensation undoes. Empty when no step can be undone."""
    undone = _unique(
        sentence(action.tell_customer(p.target, diagnosis))
        for p in proposals
        if (action := declaration.action(p.action)).compensation
    )
    if not undone:
        return ""
    changes = "\n".join([_ROLLBACK_LEAD, *(f"- {c}" for c in undone)])
    return letter(_ROLLBACK_CLOSING).format(name=name, changes=changes)
