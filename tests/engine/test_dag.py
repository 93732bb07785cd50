"""The runner respects the DAG: chains, fan-out/fan-in, diamonds; branches overlap; timeouts."""

from __future__ import annotations

import re

import pytest

from obfleet.engine import Flow
from obfleet.engine.reads import subtask_log
from obfleet.store.db import Database
from tests.engine.conftest import StartEngine, status_is, submit_flow, subtask, wait_for
from tests.engine.subtasks import (
    A,
    B,
    C,
    D,
    Journal,
    MeetOtherBranches,
    ReadContext,
    Slow,
    WriteContext,
)

HEADER = re.compile(
    r"^############\{EXECUTE\}\{\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d\}"
    r"############$"
)


def started_after(view: dict, later: dict, earlier: dict) -> bool:
    return later["startTime"] >= earlier["finishTime"]


def executed(journal: Journal) -> list[tuple[str, int]]:
    return [(name, branch) for what, name, branch in journal.events if what == "execute"]


async def test_a_chain_runs_in_order(
    database: Database, start_engine: StartEngine, journal: Journal
) -> None:
    await start_engine()
    flow = Flow("chain")
    flow.chain(A, B, C)
    view = await wait_for(database, submit_flow(database, flow), status_is("SUCCESSFUL"))
    assert executed(journal) == [("A", -1), ("B", -1), ("C", -1)]
    a, b, c = (subtask(view, n) for n in "ABC")
    assert (a["downstreams"], b["upstreams"], b["downstreams"], c["upstreams"]) == (
        [b["id"]],
        [a["id"]],
        [c["id"]],
        [b["id"]],
    )
    assert started_after(view, b, a) and started_after(view, c, b)
    assert all(s["runTime"] == 1 and s["operation"] == "EXECUTE" for s in view["subtasks"])
    assert view["finishTime"] is not None and view["executor"] == "127.0.0.1"


async def test_fan_out_per_item_then_fan_in(
    database: Database, start_engine: StartEngine, journal: Journal
) -> None:
    await start_engine()
    flow = Flow("fan out")
    flow.set_list("hosts", ["h0", "h1", "h2"])
    first = flow.add(A)
    branches = flow.parallel([B, C], over="hosts", after=first)
    flow.add(D, after=branches)
    view = await wait_for(database, submit_flow(database, flow), status_is("SUCCESSFUL"))

    order = executed(journal)
    assert order[0] == ("A", -1) and order[-1] == ("D", -1)
    assert sorted(order[1:-1]) == [("B", i) for i in range(3)] + [("C", i) for i in range(3)]
    for i in range(3):
        assert order.index(("B", i)) < order.index(("C", i))
        assert started_after(view, subtask(view, "C", i), subtask(view, "B", i))
    d = subtask(view, "D")
    assert sorted(d["upstreams"]) == sorted(subtask(view, "C", i)["id"] for i in range(3))
    assert all(started_after(view, d, subtask(view, "C", i)) for i in range(3))
    assert subtask(view, "B", 1)["context"]["parallel"] is True


async def test_a_diamond_joins_both_sides(
    database: Database, start_engine: StartEngine, journal: Journal
) -> None:
    await start_engine()
    flow = Flow("diamond")
    top = flow.add(A)
    left, right = flow.add(B, after=top), flow.add(C, after=top)
    flow.add(D, after=[left, right])
    view = await wait_for(database, submit_flow(database, flow), status_is("SUCCESSFUL"))
    order = executed(journal)
    assert order[0] == ("A", -1) and order[-1] == ("D", -1)
    d = subtask(view, "D")
    assert started_after(view, d, subtask(view, "B")) and started_after(view, d, subtask(view, "C"))


async def test_parallel_branches_really_overlap(
    database: Database, start_engine: StartEngine, journal: Journal
) -> None:
    # Each branch waits (up to its 10 s timeout) until all have started: only concurrent
    # branches can all succeed.
    await start_engine()
    flow = Flow("overlap")
    flow.set_list("hosts", ["h0", "h1", "h2", "h3"])
    flow.parallel([MeetOtherBranches], over="hosts")
    await wait_for(database, submit_flow(database, flow), status_is("SUCCESSFUL"))
    assert sorted(executed(journal)) == [("Meet other branches", i) for i in range(4)]


async def test_a_subtask_past_its_timeout_fails(
    database: Database, start_engine: StartEngine, journal: Journal
) -> None:
    await start_engine()
    flow = Flow("timeout")
    flow.chain(Slow, A)
    task_id = submit_flow(database, flow)
    view = await wait_for(database, task_id, status_is("FAILED"))
    slow = subtask(view, "Slow")
    assert slow["status"] == "FAILED" and subtask(view, "A")["status"] == "PENDING"
    assert ("stopped", "Slow", -1) in journal.events
    with database.session() as session:
        log = subtask_log(session, task_id, slow["id"])
    assert "The subtask timed out after 1 s." in log


async def test_a_failure_stops_its_branch_only(
    database: Database, start_engine: StartEngine, journal: Journal
) -> None:
    await start_engine()
    journal.fail_once.add("B")
    flow = Flow("partial")
    flow.chain(B, C)
    flow.chain(A, D)
    view = await wait_for(database, submit_flow(database, flow), status_is("FAILED"))
    states = {s["name"]: s["status"] for s in view["subtasks"]}
    assert states == {"B": "FAILED", "C": "PENDING", "A": "SUCCESSFUL", "D": "SUCCESSFUL"}


async def test_a_failed_subtasks_log_shows_the_message_and_the_server_log_the_traceback(
    database: Database,
    start_engine: StartEngine,
    journal: Journal,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await start_engine()
    journal.fail_once.add("B")
    flow = Flow("failing")
    flow.chain(B)
    task_id = submit_flow(database, flow)
    view = await wait_for(database, task_id, status_is("FAILED"))
    with database.session() as session:
        log = subtask_log(session, task_id, view["subtasks"][0]["id"])
    assert "The subtask failed: B failed on purpose" in log
    assert "Traceback" not in log and ".py" not in log
    failed = f"of task {task_id} failed: B failed on purpose"  # the reason, in the server log too
    (record,) = [r for r in caplog.records if r.getMessage().endswith(failed)]
    assert record.exc_info and "B failed on purpose" in str(record.exc_info[1])


async def test_context_flows_from_branches_to_the_join(
    database: Database, start_engine: StartEngine
) -> None:
    await start_engine()
    flow = Flow("context")
    flow.set("cluster", "c1")
    flow.set_list("hosts", ["h0", "h1"])
    flow.add(ReadContext, after=flow.parallel([WriteContext], over="hosts"))
    view = await wait_for(database, submit_flow(database, flow), status_is("SUCCESSFUL"))
    strings = view["context"]["stringMap"]
    assert strings["all_dirs"] == "/home/admin/h0,/home/admin/h1"
    assert strings["cluster"] == "c1" and view["context"]["listMap"]["hosts"] == ["h0", "h1"]


async def test_logs_have_a_header_per_execution_and_hide_secrets(
    database: Database, start_engine: StartEngine
) -> None:
    await start_engine()
    flow = Flow("logs")
    flow.set_list("hosts", ["h0"])
    flow.parallel([WriteContext], over="hosts")
    task_id = submit_flow(database, flow)
    view = await wait_for(database, task_id, status_is("SUCCESSFUL"))
    with database.session() as session:
        lines = subtask_log(session, task_id, view["subtasks"][0]["id"]).splitlines()
    assert HEADER.match(lines[0]), lines[0]
    assert "connecting with password=****** and token ******" in lines[1]
    assert "s3cret" not in "\n".join(lines)
    assert lines[-1].endswith("current state: RUNNING, new state: SUCCESSFUL")
