"""Task priority by severity: a P1's activities leave a backlog's queue first.

Temporal dispatches the tasks of one queue by ``priority_key`` (1 first; unset is the middle,
3). A ticket's activities after triage carry the ticket's severity as their key; the
workflow says which (``task_priority``) and :class:`TaskPriorityInterceptor` puts it on every
activity it schedules that names none itself, so no call site has to remember it. The patch
gate is the workflow's own (it marks the history), so a replay without the interceptor
still finds its markers.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from temporalio import workflow
from temporalio.common import Priority as TaskPriority
from temporalio.worker import (
    Interceptor,
    StartActivityInput,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)

from kruxt.models.enums import Priority

# workflow.patched: activities scheduled after triage carry the ticket's severity as their
# task priority (before, every task had the default).
PRIORITY_BY_SEVERITY = "priority-by-severity"

_KEYS = {Priority.P1: 1, Priority.P2: 2, Priority.P3: 3, Priority.P4: 4}


def task_priority(severity: Priority | None) -> TaskPriority | None:
    """The task priority of a ticket of ``severity`` (None: not triaged, the default)."""
    return None if severity is None else TaskPriority(priority_key=_KEYS[severity])


class TaskPriorityInterceptor(Interceptor):
    """Gives each activity a workflow schedules the priority its ``task_priority()`` method
    chooses (workflows without one schedule theirs as they are)."""

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor]:
        return _Inbound


class _Inbound(WorkflowInboundInterceptor):
    def init(self, outbound: WorkflowOutboundInterceptor) -> None:
        super().init(_Outbound(outbound))


class _Outbound(WorkflowOutboundInterceptor):
    def start_activity(self, input: StartActivityInput) -> workflow.ActivityHandle[Any]:
        chooser = getattr(workflow.instance(), "task_priority", None)
        if chooser is not None and input.priority == TaskPriority.default:
            chosen = chooser()
            if chosen is not None:
                input = dataclasses.replace(input, priority=chosen)
        return super().start_activity(input)
