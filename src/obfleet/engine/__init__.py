"""The durable DAG task engine, with OCP's task model (status and operation, subtasks, context).

Writing a flow
--------------
A flow is plain Python: subclass `Subtask` for each step, then place the steps in a `Flow`
and `submit` it inside the transaction of the service call that asked for it::

    class InstallPackage(Subtask):
        name = "Install obproxy package"
        timeout = 600                        # seconds; the run fails past it

        async def execute(self, ctx: SubtaskContext) -> None:
            host = ctx.item("host_ids")      # this branch's host
            ctx.log(f"installing on host {host}")
            ctx.set(f"installed_{host}", "true")

        async def rollback(self, ctx: SubtaskContext) -> None:
            ...                              # remove what execute left, if anything

    flow = Flow("Install obproxy")
    flow.set("cluster_id", "3")
    flow.set_list("host_ids", ["10", "11"])
    check = flow.add(CheckHosts)
    installed = flow.parallel([InstallPackage, StartObproxy], over="host_ids", after=check)
    flow.add(RegisterCluster, after=installed)            # fan-in
    task_id = submit(session, flow, creator=principal.username)

`add(step, after=...)` places one subtask after the given nodes (none: it starts at once),
`chain(a, b, c, after=...)` places a sequence and returns its last node, `parallel(steps,
over=key, after=...)` places one branch per element of the context list `key` (parallelIdx
0..n-1) and returns the branches' last nodes, so any DAG (chains, fan-out/fan-in, diamonds)
reads top to bottom. `name_branches(["10.0.0.1", ...])` (or `name_branch(i, label)`) says what
each branch acts on: stored on its subtasks (`branch_label`), it heads the branch's column
where the task is drawn (never read by the engine, never by a subtask).

The rules for subtask authors
-----------------------------
* Idempotent, always. A subtask whose node died mid-run is run again (`runTime` counts the
  executions), and nothing can stop remote work a lost node had started. So check before
  you act: is the package already unpacked, the file already identical, the process already
  listening? Write files to a temporary name and rename; leave markers on the host when the
  check is otherwise expensive.
* The context: `ctx.get/require/set` read and write the task's `stringMap`, `ctx.get_list/
  set_list` its `listMap`, `ctx.item(key)` is this branch's element of `key`. Reads see the
  context as committed when the run started; writes are applied to the task only when the
  run ends SUCCESSFUL (atomically with that), so a failed or repeated run leaves no half
  state behind. Parallel branches should write distinct keys (the last writer wins).
* Logs: `ctx.log(line)` appends to this execution's log (`GET …/subtasks/{id}/log`), under a
  `############{EXECUTE}{time}############` header per execution. Say what you run and what
  came back. `ctx.secret(value)` masks `value` in every later line; `password=…`-style
  assignments are masked anyway.
* Resources: `ctx.resources` is what the app passed to `TaskEngine(resources=…)` (the SSH
  pool, settings, …); the engine knows nothing of them.
* Cancellation is cooperative: when an operator cancels the subtask (RUNNING → CANCELING),
  `ctx.cancelled` is set and the coroutine gets `asyncio.CancelledError` at its next await;
  clean up in `finally` (stop the remote command) and let it propagate. The subtask then
  ends FAILED with operation CANCEL. The timeout works the same way and ends it FAILED.
* Rollback: an operator may roll back a FAILED task unless it or a subtask that ran has
  `prohibit_rollback`. Every subtask that ran (succeeded or failed) gets its `rollback`
  called, downstreams before upstreams, in parallel where the DAG allows. `rollback` must
  tolerate a partial or absent execution; the default does nothing.
* A failed subtask stops its own branch; the task turns FAILED once nothing else can run,
  and waits for an operator: retry the task or one subtask, skip one, or roll back.

Running the engine
------------------
The service creates one `TaskEngine(db, node_address=..., resources=...)`, awaits `start()`
in its lifespan and `stop()` on shutdown. Replicas on PostgreSQL or MySQL share the work
through the metadb; on SQLite one process owns the engine and a second one is refused.
"""

from obfleet.engine.context import SubtaskContext
from obfleet.engine.definition import Subtask
from obfleet.engine.flow import Flow, Node, TaskSubject, submit
from obfleet.engine.runner import EngineAlreadyRunning, TaskEngine
from obfleet.engine.states import Operation, SubtaskStatus, TaskStatus, TaskType

__all__ = [
    "EngineAlreadyRunning",
    "Flow",
    "Node",
    "Operation",
    "Subtask",
    "SubtaskContext",
    "SubtaskStatus",
    "TaskEngine",
    "TaskStatus",
    "TaskSubject",
    "TaskType",
    "submit",
]
