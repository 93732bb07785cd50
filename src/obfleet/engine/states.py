"""OCP's task vocabulary: statuses and operations are separate axes (task-information appendix)."""

from __future__ import annotations

from enum import StrEnum


class TaskStatus(StrEnum):
    RUNNING = "RUNNING"
    FAILED = "FAILED"
    SUCCESSFUL = "SUCCESSFUL"


class SubtaskStatus(StrEnum):
    PENDING = "PENDING"  # waiting for its upstreams
    READY = "READY"  # may be claimed by any engine node
    RUNNING = "RUNNING"
    CANCELING = "CANCELING"  # cancel asked; the owner stops it and marks it FAILED
    FAILED = "FAILED"
    SUCCESSFUL = "SUCCESSFUL"


class Operation(StrEnum):
    """The last verb applied to a task or subtask (a skipped subtask is SUCCESSFUL + SKIP)."""

    EXECUTE = "EXECUTE"
    RETRY = "RETRY"
    ROLLBACK = "ROLLBACK"
    SKIP = "SKIP"
    CANCEL = "CANCEL"


class Action(StrEnum):
    """Which subtask method the engine runs when the subtask is next claimed."""

    EXECUTE = "EXECUTE"
    ROLLBACK = "ROLLBACK"


class TaskType(StrEnum):
    MANUAL = "MANUAL"
    SYS_ONECE = "SYS_ONECE"  # sic: OCP's documented spelling
    SCHEDULED = "SCHEDULED"
    SYS_SCHEDULED = "SYS_SCHEDULED"


# Statuses in which a subtask holds (or is about to hold) an engine node's attention.
ACTIVE = (SubtaskStatus.READY, SubtaskStatus.RUNNING, SubtaskStatus.CANCELING)
LEASED = (SubtaskStatus.RUNNING, SubtaskStatus.CANCELING)
