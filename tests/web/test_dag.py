"""The task graph's layout: rows by depth, one column per host branch, edges from upstreams."""

from __future__ import annotations

from typing import Any

from obfleet.web.dag import NODE_H, NODE_W, layout

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
