"""Building a task's DAG in plain Python, and submitting it inside the caller's transaction."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, bindparam, event, insert, select
from sqlalchemy.orm import Session

from obfleet.engine import local, signals
from obfleet.engine.context import TaskContextData
from obfleet.engine.dag import EDGES, SUBTASKS, TASKS
from obfleet.engine.definition import Subtask, class_name
from obfleet.engine.reads import SUB
from obfleet.engine.states import Action, Operation, SubtaskStatus, TaskStatus, TaskType
from obfleet.engine.store import Claim
from obfleet.engine.targets import Target, record_targets
from obfleet.logs import note
from obfleet.timefmt import utcnow

log = logging.getLogger("obfleet.engine")

BRANCH_LABEL_MAX = 255  # subtask_instance.branch_label
# A new task's subtask ids by place in its flow (seriesId), for its edges.
_SUBTASK_IDS = select(SUB.series_id, SUB.id).where(SUB.task_id == bindparam("task_id"))
# Every row of one executemany names the same columns: these are a claimed row's.
_UNCLAIMED: dict[str, Any] = {
    "owner": None,
    "executor": None,
    "attempt": 0,
    "run_time": 0,
    "lease_until": None,
    "start_time": None,
}


@dataclass(frozen=True)
class Node:
    """A subtask placed in a flow; pass nodes as `after=` to make them upstreams."""

    index: int
    subtask: type[Subtask]
    parallel_idx: int
    upstreams: tuple[int, ...]


Upstreams = Node | Sequence[Node]


def _indexes(after: Upstreams) -> tuple[int, ...]:
    nodes = [after] if isinstance(after, Node) else list(after)
    return tuple(dict.fromkeys(n.index for n in nodes))


@dataclass
class Flow:
    """A task under construction: its name, its shared context, and its subtasks in order.

    Nodes can only depend on nodes added before them, so the DAG has no cycles by construction
    and `seriesId` (the insertion order) is a topological order.
    """

    name: str
    prohibit_rollback: bool = False
    context: TaskContextData = field(default_factory=TaskContextData)
    nodes: list[Node] = field(default_factory=list)
    # What each branch is about, by parallelIdx (see `name_branch`).
    branch_labels: dict[int, str] = field(default_factory=dict)

    def add(self, subtask: type[Subtask], *, after: Upstreams = (), parallel_idx: int = -1) -> Node:
        node = Node(len(self.nodes), subtask, parallel_idx, _indexes(after))
        self.nodes.append(node)
        return node

    def chain(
        self, *subtasks: type[Subtask], after: Upstreams = (), parallel_idx: int = -1
    ) -> Node:
        """Add `subtasks` one after the other; returns the last one."""
        if not subtasks:
            raise ValueError("chain() needs at least one subtask")
        previous: Upstreams = after
        for subtask in subtasks:
            previous = self.add(subtask, after=previous, parallel_idx=parallel_idx)
        assert isinstance(previous, Node)
        return previous

    def parallel(
        self, subtasks: Sequence[type[Subtask]], *, over: str, after: Upstreams = ()
    ) -> list[Node]:
        """One branch (a chain of `subtasks`) per element of the context list `over`.

        Branch i runs with parallelIdx i and reads its element with `ctx.item(over)`. Returns
        the branches' last nodes: pass them as `after=` to fan back in.
        """
        items = self.context.list_map.get(over)
        if items is None:
            raise KeyError(f"set the context list '{over}' before fanning out over it")
        return [self.chain(*subtasks, after=after, parallel_idx=i) for i in range(len(items))]

    def name_branch(self, parallel_idx: int, label: object) -> None:
        """Name what branch `parallel_idx` acts on (a host's address), for whoever shows the
        task: stored on each of its subtasks (`branch_label`). -1 names the subtasks outside
        any branch, for a flow that acts on one thing throughout (one host's task)."""
        self.branch_labels[parallel_idx] = str(label)[:BRANCH_LABEL_MAX]

    def name_branches(self, labels: Sequence[object]) -> None:
        """Name branch i `labels[i]`, for a flow whose branches follow a list (its hosts)."""
        for index, label in enumerate(labels):
            self.name_branch(index, label)

    def set(self, key: str, value: str) -> None:
        self.context.string_map[key] = str(value)

    def set_list(self, key: str, values: Sequence[object]) -> None:
        self.context.list_map[key] = [str(v) for v in values]


@dataclass(frozen=True)
class TaskSubject:
    """What a task is about, shown in the task list and used by its filters."""

    cluster_id: int | None = None
    cluster_name: str | None = None
    tenant_id: int | None = None
    tenant_name: str | None = None
    host_id: int | None = None


def submit(
    session: Session,
    flow: Flow,
    *,
    creator: str,
    creator_id: int | None = None,
    task_type: TaskType = TaskType.MANUAL,
    subject: TaskSubject | None = None,
    targets: Iterable[Target] = (),
) -> int:
    """Persist `flow` as a RUNNING task in the caller's transaction; returns the task id.
    `targets` names what the task will act on (engine/targets.py).

    Nothing runs until the caller commits. A local engine with free slots has the first
    subtasks claimed for it by this transaction and starts them right after the commit
    (engine/local.py); what is left READY wakes it then, and other replicas find it at their
    next poll.
    """
    if not flow.nodes:
        raise ValueError(f"flow '{flow.name}' has no subtasks")
    subject = subject or TaskSubject()
    now = utcnow()
    context = flow.context.to_json()
    # Plain INSERTs, the subtasks in one executemany: the ORM's unit of work cost more than
    # the statements, inside the write transaction that every other writer waits for.
    inserted = session.execute(
        insert(TASKS).values(
            name=flow.name,
            type=task_type,
            status=TaskStatus.RUNNING,
            operation=Operation.EXECUTE,
            creator=creator,
            creator_id=creator_id,
            prohibit_rollback=flow.prohibit_rollback,
            context=context,
            cluster_id=subject.cluster_id,
            cluster_name=subject.cluster_name,
            tenant_id=subject.tenant_id,
            tenant_name=subject.tenant_name,
            host_id=subject.host_id,
            create_time=now,
            start_time=now,
        )
    )
    key = cast(CursorResult[Any], inserted).inserted_primary_key
    assert key is not None
    task_id: int = key[0]
    roots = [node.index for node in flow.nodes if not node.upstreams]
    reservation = local.reserve(session, len(roots))
    taken = roots[: reservation.free] if reservation is not None else []
    claimed = set(taken)
    labels = flow.branch_labels
    session.execute(
        insert(SUBTASKS),
        [
            _subtask_row(
                task_id,
                node,
                labels.get(node.parallel_idx),
                now,
                reservation if node.index in claimed else None,
            )
            for node in flow.nodes
        ],
    )
    ids: dict[int, int] = dict(session.execute(_SUBTASK_IDS, {"task_id": task_id}).all())
    edges = [
        {"upstream_id": ids[up], "downstream_id": ids[node.index], "task_id": task_id}
        for node in flow.nodes
        for up in node.upstreams
    ]
    if edges:
        session.execute(insert(EDGES), edges)
    record_targets(session, task_id, targets)
    if reservation is not None:
        claims = [_claim(task_id, ids[i], flow.nodes[i], context) for i in taken]
        local.record_claims(session, reservation, claims, now)
    # Wake the local engine only for what is left READY for it to claim.
    signals.publish_after_commit(session, [task_id], work=len(taken) < len(roots))
    _note_submitted(session, task_id, flow.name, creator)
    return task_id


def _note_submitted(session: Session, task_id: int, name: str, creator: str) -> None:
    """Tell the request that submitted the task which task it made (its log lines and audit
    record name it), and log the submission once it is committed."""
    note("taskIds", task_id)
    line = ("task %s (%s) submitted by %s", task_id, name, creator)

    def committed(_session: Session) -> None:
        log.info(*line)

    event.listen(session, "after_commit", committed, once=True)


def _subtask_row(
    task_id: int,
    node: Node,
    branch_label: str | None,
    now: datetime,
    claimed: local.Reservation | None,
) -> dict[str, Any]:
    """A subtask's row; `claimed`: inserted RUNNING, its first run claimed for a local engine."""
    subtask = node.subtask
    row = {
        "task_id": task_id,
        "series_id": node.index,
        "name": subtask.name,
        "description": subtask.description,
        "class_name": class_name(subtask),
        "timeout": subtask.timeout,
        "status": SubtaskStatus.PENDING if node.upstreams else SubtaskStatus.READY,
        "operation": Operation.EXECUTE,
        "action": Action.EXECUTE,
        "parallel_idx": node.parallel_idx,
        "branch_label": branch_label,
        "prohibit_rollback": subtask.prohibit_rollback,
        "create_time": now,
        **_UNCLAIMED,
    }
    if claimed is not None:
        row.update(
            status=SubtaskStatus.RUNNING,
            owner=claimed.owner,
            executor=claimed.executor,
            attempt=1,
            run_time=1,
            lease_until=claimed.lease_until,
            start_time=now,
        )
    return row


def _claim(task_id: int, subtask_id: int, node: Node, context: dict[str, Any]) -> Claim:
    """The first run of a subtask that `submit` inserted RUNNING, as an engine's claim has it."""
    subtask = node.subtask
    return Claim(
        subtask_id,
        task_id,
        attempt=1,
        run_time=1,
        action=Action.EXECUTE,
        class_name=class_name(subtask),
        timeout=subtask.timeout,
        parallel_idx=node.parallel_idx,
        context=context,
        name=subtask.name,
        series_id=node.index,
    )
