"""A task's subtasks laid out as a graph for SVG: rows by depth, per-host branches side by side.

A subtask's row is the longest path to it from a subtask with no upstream. A subtask that runs
once per host (`context.parallelIdx` >= 0) sits in that host's column, so each host's chain
reads top to bottom; the others are centred in their row. Edges go from each upstream.

Each column is headed by what its branch acts on, as the task's flow named it (`branchLabel`,
a host's address), else by its parallelIdx; a one-column graph whose subtasks all name one
thing (a one-host task) is headed by it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from obfleet.web.messages import text

NODE_W, NODE_H = 168, 44
GAP_X, GAP_Y = 16, 28
MARGIN = 8
HEAD_H = 22  # the row of column heads, when there is one
HEAD_BASELINE = MARGIN + 14
LABEL_CHARS = 24  # of a node's or a head's text, at the console's font size


def _fitted(text: str) -> str:
    """`text` cut to what a node's width shows."""
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"


@dataclass(frozen=True)
class Node:
    id: int
    name: str
    status: str
    x: int
    y: int
    run_time: int

    @property
    def label(self) -> str:
        return _fitted(self.name)


@dataclass(frozen=True)
class Head:
    """A column's head: `x` is the column's centre, `y` the text's baseline."""

    x: int
    y: int
    text: str

    @property
    def label(self) -> str:
        return _fitted(self.text)


@dataclass(frozen=True)
class Edge:
    x1: int
    y1: int
    x2: int
    y2: int


@dataclass(frozen=True)
class Graph:
    nodes: list[Node]
    edges: list[Edge]
    width: int
    height: int
    heads: list[Head]
    node_w: int = NODE_W
    node_h: int = NODE_H


def _rows(subtasks: Sequence[Mapping[str, Any]]) -> dict[int, int]:
    """The depth of every subtask: 0 without upstreams, else one more than its deepest."""
    by_id = {s["id"]: s for s in subtasks}
    depth: dict[int, int] = {}
    for start in by_id:
        stack = [start]
        while stack:
            sid = stack[-1]
            ups = [u for u in by_id[sid]["upstreams"] if u in by_id and u not in depth]
            if ups and not any(u in stack for u in ups):
                stack.extend(ups)
                continue
            known = [depth[u] for u in by_id[sid]["upstreams"] if u in depth]
            depth[sid] = max(known, default=-1) + 1
            stack.pop()
    return depth


def _branch(subtask: Mapping[str, Any]) -> int:
    context = subtask.get("context") or {}
    return int(context.get("parallelIdx", -1))


def _label(subtask: Mapping[str, Any]) -> str | None:
    return subtask.get("branchLabel") or None


def _heads(
    subtasks: Sequence[Mapping[str, Any]], branches: list[int], step_x: int, centre: float
) -> list[Head]:
    """One head per branch column (its flow's label, else "branch <parallelIdx>"); for a single
    column, the one label its subtasks share, if they share one."""
    if len(branches) >= 2:
        named = {_branch(s): _label(s) for s in subtasks if _branch(s) >= 0 and _label(s)}
        return [
            Head(
                MARGIN + i * step_x + NODE_W // 2,
                HEAD_BASELINE,
                named.get(b) or text("task.branch").format(b),
            )
            for i, b in enumerate(branches)
        ]
    labels = {label for s in subtasks if (label := _label(s))}
    return [Head(int(centre), HEAD_BASELINE, labels.pop())] if len(labels) == 1 else []


def layout(subtasks: Sequence[Mapping[str, Any]]) -> Graph:
    rows = _rows(subtasks)
    branches = sorted({_branch(s) for s in subtasks if _branch(s) >= 0})
    column_of = {b: i for i, b in enumerate(branches)}
    by_row: dict[int, list[Mapping[str, Any]]] = {}
    for sub in sorted(subtasks, key=lambda s: s["id"]):
        by_row.setdefault(rows[sub["id"]], []).append(sub)
    widest = max([len(branches)] + [len(r) for r in by_row.values()] + [1])
    step_x, step_y = NODE_W + GAP_X, NODE_H + GAP_Y
    centre = MARGIN + (widest * step_x - GAP_X) / 2
    heads = _heads(subtasks, branches, step_x, centre)
    top = MARGIN + (HEAD_H if heads else 0)
    positions: dict[int, tuple[int, int]] = {}
    for row, subs in by_row.items():
        y = top + row * step_y
        shared = [s for s in subs if _branch(s) < 0 or len(branches) < 2]
        start = centre - (len(shared) * step_x - GAP_X) / 2
        for i, sub in enumerate(shared):
            positions[sub["id"]] = (int(start + i * step_x), y)
        for sub in subs:
            if sub["id"] not in positions:
                positions[sub["id"]] = (MARGIN + column_of[_branch(sub)] * step_x, y)
    nodes = [
        Node(s["id"], s["name"], s["status"], *positions[s["id"]], int(s.get("runTime") or 0))
        for s in subtasks
    ]
    edges = [
        Edge(
            positions[u][0] + NODE_W // 2,
            positions[u][1] + NODE_H,
            positions[s["id"]][0] + NODE_W // 2,
            positions[s["id"]][1],
        )
        for s in subtasks
        for u in s["upstreams"]
        if u in positions
    ]
    height = top + MARGIN + (max(rows.values(), default=0) + 1) * step_y - GAP_Y
    return Graph(nodes, edges, int(MARGIN * 2 + widest * step_x - GAP_X), height, heads)
