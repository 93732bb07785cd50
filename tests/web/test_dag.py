"""The task graph's layout: rows by depth, one column per host branch, edges from upstreams."""

from __future__ import annotations

from typing import Any

from obfleet.web.dag import MARGIN, NODE_H, NODE_W, layout

CHAIN = 8  # subtasks per host, as in "Install obproxy"


def install_like(hosts: int) -> list[dict[str, Any]]:
    """A start subtask, a chain of CHAIN subtasks per host, and a finish after every chain."""
    subs: list[dict[str, Any]] = [
        {"id": 1, "name": "start", "status": "SUCCESSFUL", "upstreams": []}
    ]
    lasts = []
    for host in range(hosts):
        previous = 1
        for step in range(CHAIN):
            sid = len(subs) + 1
            subs.append(
                {
                    "id": sid,
                    "name": f"step {step}",
                    "status": "PENDING",
                    "upstreams": [previous],
                    "context": {"parallelIdx": host},
                }
            )
            previous = sid
        lasts.append(previous)
    subs.append({"id": len(subs) + 1, "name": "finish", "status": "PENDING", "upstreams": lasts})
    return subs


def test_sixteen_host_branches_stand_side_by_side_without_overlap() -> None:
    graph = layout(install_like(16))
    by_id = {n.id: n for n in graph.nodes}
    assert len(graph.nodes) == 16 * CHAIN + 2
    columns = {n.x for n in graph.nodes if n.name.startswith("step")}
    assert len(columns) == 16
    places = [(n.x, n.y) for n in graph.nodes]
    assert len(set(places)) == len(places)
    for a in graph.nodes:  # no two boxes overlap
        for b in graph.nodes:
            if a.id < b.id:
                assert abs(a.x - b.x) >= NODE_W or abs(a.y - b.y) >= NODE_H
    # Each host's chain is one column, top to bottom; start above all, finish below all.
    chain = [by_id[i] for i in range(2, 2 + CHAIN)]
    assert len({n.x for n in chain}) == 1
    assert [n.y for n in chain] == sorted(n.y for n in chain)
    assert by_id[1].y < chain[0].y < chain[-1].y < by_id[len(graph.nodes)].y
    assert max(n.x + NODE_W for n in graph.nodes) <= graph.width
    assert max(n.y + NODE_H for n in graph.nodes) <= graph.height


def test_every_upstream_is_an_edge_into_the_top_of_its_subtask() -> None:
    subs = install_like(2)
    graph = layout(subs)
    by_id = {n.id: n for n in graph.nodes}
    assert len(graph.edges) == sum(len(s["upstreams"]) for s in subs)
    tops = {(n.x + NODE_W // 2, n.y) for n in by_id.values()}
    assert {(e.x2, e.y2) for e in graph.edges} <= tops


def test_a_graph_without_host_branches_centres_each_row() -> None:
    subs = [
        {"id": 1, "name": "a", "status": "SUCCESSFUL", "upstreams": []},
        {"id": 2, "name": "b", "status": "FAILED", "upstreams": [1]},
        {"id": 3, "name": "c", "status": "FAILED", "upstreams": [1]},
    ]
    graph = layout(subs)
    a, b, c = sorted(graph.nodes, key=lambda n: n.id)
    assert b.y == c.y > a.y and b.x != c.x
    assert a.x + NODE_W // 2 == (b.x + c.x + NODE_W) // 2


def labelled(subs: list[dict[str, Any]], labels: dict[int, str]) -> list[dict[str, Any]]:
    """`subs` with each branch's label (by parallelIdx; -1: the subtasks outside branches)."""
    return [
        {**s, "branchLabel": labels.get((s.get("context") or {}).get("parallelIdx", -1))}
        for s in subs
    ]


def test_each_branch_column_is_headed_by_its_label_above_its_chain() -> None:
    graph = layout(labelled(install_like(3), {0: "10.0.0.1", 1: "10.0.0.2", 2: "10.0.0.3"}))
    assert [h.text for h in graph.heads] == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    by_id = {n.id: n for n in graph.nodes}
    first_chain = [by_id[i] for i in range(2, 2 + CHAIN)]
    assert graph.heads[0].x == first_chain[0].x + NODE_W // 2
    assert all(h.y < min(n.y for n in graph.nodes) for h in graph.heads)
    assert max(n.y + NODE_H for n in graph.nodes) <= graph.height


def test_unlabelled_branches_are_headed_by_their_index() -> None:
    assert [h.text for h in layout(install_like(2)).heads] == ["branch 0", "branch 1"]


def test_a_one_host_task_is_headed_by_its_host_and_an_unnamed_one_not_at_all() -> None:
    chain = [
        {"id": 1, "name": "a", "status": "SUCCESSFUL", "upstreams": []},
        {"id": 2, "name": "b", "status": "RUNNING", "upstreams": [1]},
    ]
    assert [h.text for h in layout(labelled(chain, {-1: "10.0.0.9"})).heads] == ["10.0.0.9"]
    plain = layout(chain)
    assert plain.heads == [] and min(n.y for n in plain.nodes) == MARGIN
