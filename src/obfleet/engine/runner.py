"""The runner: an asyncio loop in the service process that claims READY subtasks and runs them.

One "pump" coroutine does all the runner's writes in one transaction per turn: it records the
runs that finished (which makes their downstreams READY), appends buffered log lines, and
claims as many READY subtasks as there are free slots, so a downstream usually starts in the
very transaction that finished its upstream. A new task's first subtasks are usually claimed
for a local engine by the transaction that submits the task, and handed to it once that
commits (engine/local.py). A second coroutine renews leases and reclaims the subtasks of
nodes that stopped renewing theirs. All database work runs on one thread of the engine's
own, off the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import IO, Any, TypeVar

from sqlalchemy.engine import make_url

from obfleet.engine import local, signals
from obfleet.engine.clock import DbClock
from obfleet.engine.context import SubtaskContext, TaskContextData
from obfleet.engine.definition import resolve
from obfleet.engine.observer import EngineObserver
from obfleet.engine.states import Action, Operation, TaskStatus
from obfleet.engine.store import Claim, EngineStore, LogLine, Outcome, StepResult, TaskEnd
from obfleet.logs import bound
from obfleet.store.db import Database

log = logging.getLogger("obfleet.engine")

T = TypeVar("T")

CLOCK_SYNC_EVERY = 20  # heartbeats
CONTENDED_RETRY = 0.005  # seconds


class EngineAlreadyRunning(RuntimeError):
    pass


@dataclass
class Run:
    """A claimed subtask being executed by this node."""

    claim: Claim
    ctx: SubtaskContext
    task: asyncio.Task[None] | None = None
    cancel_requested: bool = False
    abandoned: bool = False  # lease lost or engine stopping: its result must not be written
    finished: bool = field(default=False)
    started: float = field(default_factory=time.monotonic)


class SqliteOwnership:
    """On SQLite one process owns the engine: an OS lock on a file beside the database.

    The kernel drops the lock when the process dies, however it dies, so a restarted service
    takes over at once, while a second live one is refused.
    """

    def __init__(self, db: Database) -> None:
        database = make_url(str(db.engine.url)).database or ""
        self.path = Path(f"{database}.engine.lock")
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise EngineAlreadyRunning(
                f"the task engine on this SQLite database is already run by {holder} "
                f"(lock {self.path}); SQLite allows one obfleet process: stop it, or use "
                "PostgreSQL or MySQL (OBFLEET_DATABASE_URL) to run several replicas"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


class TaskEngine:
    """Runs the subtasks of every task in the metadb, shared with any other replicas."""

    def __init__(
        self,
        db: Database,
        *,
        node_address: str,
        resources: Any = None,
        concurrency: int = 16,
        lease_seconds: float = 30.0,
        poll_interval: float = 0.5,
        stop_grace: float = 10.0,
        observer: EngineObserver | None = None,
    ) -> None:
        self.db = db
        self.observer = observer or EngineObserver()
        self.node_address = node_address
        self.node_id = f"{node_address}/{os.getpid()}/{uuid.uuid4().hex[:8]}"
        self.resources = resources
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.stop_grace = stop_grace
        self.heartbeat_interval = lease_seconds / 3
        self.clock = DbClock(db)
        self.store = EngineStore(
            db,
            node_id=self.node_id,
            address=node_address,
            lease=timedelta(seconds=lease_seconds),
            clock=self.clock,
        )
        self._ownership = SqliteOwnership(db) if db.dialect == "sqlite" else None
        self._runs: dict[int, Run] = {}
        self._outcomes: list[Outcome] = []
        self._logs: list[LogLine] = []
        self._wake = asyncio.Event()
        self._check_cancels = False
        self._stopping = False
        # Slots beside `_runs`, counted under `_slots` because submitting transactions take
        # theirs from other threads (engine/local.py): those reserved by a transaction not yet
        # ended, and the pump's step's change to `_runs` not applied yet (while it runs: all it
        # may claim less the runs it ends; then what it claimed less what it ended). A step's
        # ended runs free their slots once it commits, not once the loop has applied it.
        self._slots = threading.Lock()
        self._reserved = 0
        self._unapplied = 0
        self._adopting = False  # whether committed reservations' runs start here
        self._loops: list[asyncio.Task[None]] = []
        self._thread: ThreadPoolExecutor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        if self._ownership is not None:
            self._ownership.acquire()
        self._loop = asyncio.get_running_loop()
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="obfleet-engine-db")
        await self._db(self.clock.sync)
        await self._db(self.store.register)
        # On SQLite this process holds the lock, so any other owner died: take its work now.
        changed = await self._sweep(self._ownership is not None)
        signals.publish(changed, work=bool(changed))
        signals.subscribe(self._on_signal)
        self._adopting = True
        local.attach(self.db.engine.url, self)
        self._loops = [
            asyncio.create_task(self._pump(), name="obfleet-engine-pump"),
            asyncio.create_task(self._keep_leases(), name="obfleet-engine-leases"),
        ]
        log.info("task engine %s started (concurrency %d)", self.node_id, self.concurrency)

    async def stop(self) -> None:
        """Let running subtasks finish for up to `stop_grace` s, then hand the rest back."""
        if self._loop is None:
            return
        with self._slots:
            self._stopping = True  # no more reservations
        signals.unsubscribe(self._on_signal)
        local.detach(self.db.engine.url, self)
        await self._await_reservations()
        self._adopting = False
        pending = [run.task for run in self._runs.values() if run.task is not None]
        if pending:
            await asyncio.wait(pending, timeout=self.stop_grace)
        unfinished = [run for run in self._runs.values() if not run.finished]
        for run in unfinished:
            self._abandon(run)
        await asyncio.gather(*(r.task for r in unfinished if r.task), return_exceptions=True)
        self._wake.set()
        await asyncio.gather(self._loops[0], return_exceptions=True)
        self._loops[1].cancel()
        await asyncio.gather(self._loops[1], return_exceptions=True)
        with contextlib.suppress(Exception):
            changed = await self._db(self.store.release, [r.claim for r in unfinished])
            signals.publish(changed, work=bool(changed))
        with contextlib.suppress(Exception):
            await self._db(self.store.unregister)
        await self._db(self.store.close)
        assert self._thread is not None
        self._thread.shutdown(wait=True)
        if self._ownership is not None:
            self._ownership.release()
        self._loop = None
        log.info("task engine %s stopped", self.node_id)

    def wake(self) -> None:
        """Look for READY subtasks now (thread-safe)."""
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closing
                self._loop.call_soon_threadsafe(self._wake.set)

    def _on_signal(self, changed: frozenset[int], work: bool) -> None:
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._note_change, changed, work)

    def _note_change(self, changed: frozenset[int], work: bool) -> None:
        # A local operator's cancel: look at it now rather than at the next poll.
        if any(run.claim.task_id in changed for run in self._runs.values()):
            self._check_cancels = True
            work = True
        if work:
            self._wake.set()

    # --- runs claimed by the transactions that submit their tasks (engine/local.py) ------

    def reserve(self, wanted: int) -> local.Reservation | None:
        """Up to `wanted` free slots for runs a submitting transaction claims (any thread)."""
        with self._slots:
            free = self.concurrency - len(self._runs) - self._reserved - self._unapplied
            count = min(wanted, free)
            if self._stopping or self._loop is None or count <= 0:
                return None
            self._reserved += count
        lease_until = self.clock.now() + self.store.lease
        return local.Reservation(self, count, self.node_id, self.node_address, lease_until)

    def adopt(self, reservation: local.Reservation) -> None:
        """Start the runs a committed transaction claimed for this node (any thread).

        Once this engine's loop is gone nothing starts them: their leases run out and they
        are reclaimed like any run of a node that stopped.
        """
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closing
                self._loop.call_soon_threadsafe(self._adopt, reservation)

    def unreserve(self, reservation: local.Reservation) -> None:
        with self._slots:
            self._reserved -= reservation.slots

    def _adopt(self, reservation: local.Reservation) -> None:
        # Committed after stop() gave up waiting: nothing starts them, their leases run out.
        claims = reservation.claims if self._adopting else []
        for claim in claims:
            self._start_run(claim)
        self.unreserve(reservation)  # after the runs took their slots in `_runs`
        self.observer.claimed(len(claims), 0.0)
        self.observer.running(len(self._runs))

    async def _await_reservations(self) -> None:
        """Let the transactions that reserved slots end (for up to `stop_grace` s), so the runs
        they claimed start here and stop like any other."""
        deadline = time.monotonic() + self.stop_grace
        while self._reserved and time.monotonic() < deadline:
            await asyncio.sleep(0.005)

    async def _db(self, fn: Any, *args: Any) -> Any:
        assert self._loop is not None
        return await self._loop.run_in_executor(self._thread, fn, *args)

    # --- the pump ----------------------------------------------------------------------

    async def _pump(self) -> None:
        while True:
            polled = await self._wait_for_work()
            if self._stopping and not (self._outcomes or self._logs or self._live_runs()):
                return
            outcomes, self._outcomes = self._outcomes, []
            logs, self._logs = self._logs, []
            with self._slots:
                free = self.concurrency - len(self._runs) + len(outcomes) - self._reserved
                free = 0 if self._stopping else max(free, 0)
                self._unapplied = free - len(outcomes)
            check_cancels = (polled or self._check_cancels) and bool(self._runs)
            self._check_cancels = False
            began = time.perf_counter()
            try:
                result = await self._db(self._step, outcomes, logs, free, check_cancels)
            except Exception as exc:
                self._failed("task engine step failed; retrying", exc)
                self._outcomes[:0], self._logs[:0] = outcomes, logs
                await asyncio.sleep(self.poll_interval)
                continue
            if free > 0:
                self.observer.claimed(len(result.claims), time.perf_counter() - began)
            self._apply(result, outcomes, free)

    def _step(
        self, outcomes: list[Outcome], logs: list[LogLine], free: int, check_cancels: bool
    ) -> StepResult:
        """The pump's step, on the database thread, which counts its slots as soon as it has
        committed: a submit right after it gets those it did not fill and those it freed."""
        try:
            result = self.store.step(outcomes, logs, free, check_cancels)
        except Exception:
            with self._slots:
                self._unapplied = 0  # the outcomes' runs stay in `_runs` for the next step
            raise
        with self._slots:
            self._unapplied = len(result.claims) - len(outcomes)
        return result

    async def _wait_for_work(self) -> bool:
        """Wait for a wake-up or the poll interval; True when the poll interval ran out."""
        try:
            async with asyncio.timeout(self.poll_interval):
                await self._wake.wait()
            polled = False
        except TimeoutError:
            polled = True
        self._wake.clear()
        return polled

    def _live_runs(self) -> bool:
        return any(not run.finished for run in self._runs.values())

    def _apply(self, result: StepResult, outcomes: list[Outcome], free: int) -> None:
        with self._slots:  # `_runs` and the step's unapplied change move together
            for outcome in outcomes:
                self._runs.pop(outcome.claim.subtask_id, None)
            for claim in result.claims:
                self._start_run(claim)
            self._unapplied = 0
        for outcome in result.fenced_out:
            log.warning(
                "subtask %s attempt %s lost its lease; its result was not recorded",
                outcome.claim.subtask_id,
                outcome.claim.attempt,
            )
        for end in result.ended:
            self._task_ended(end)
        self.observer.running(len(self._runs))
        for subtask_id in result.canceling:
            run = self._runs.get(subtask_id)
            if run is not None and not run.finished:
                self._cancel(run)
        if result.claims and len(result.claims) == free:
            self._wake.set()  # slots were the limit: more may be READY
        elif result.contended and self._loop is not None:
            # Another node's transaction held some READY subtasks' tasks: look again once it
            # has likely committed, rather than at the next poll.
            self._loop.call_later(CONTENDED_RETRY, self._wake.set)
        if result.changed_tasks:
            signals.publish(result.changed_tasks, work=False)

    def _task_ended(self, end: TaskEnd) -> None:
        rolled_back = end.operation == Operation.ROLLBACK
        with bound(taskId=end.task_id):
            if end.status == TaskStatus.SUCCESSFUL:
                verb = "rolled back" if rolled_back else "finished"
                log.info("task %s (%s) %s", end.task_id, end.name, verb)
            else:
                log.warning(
                    "task %s (%s) failed (%s): it waits for an operator to retry, skip or roll "
                    "back",
                    end.task_id,
                    end.name,
                    "rollback" if rolled_back else "run",
                )
        self.observer.task_finished(end.name, end.status, end.operation, end.seconds)

    # --- running one subtask ------------------------------------------------------------

    def _start_run(self, claim: Claim) -> None:
        ctx = SubtaskContext(
            task_id=claim.task_id,
            subtask_id=claim.subtask_id,
            run_time=claim.run_time,
            parallel_idx=claim.parallel_idx,
            context=TaskContextData.from_json(claim.context),
            resources=self.resources,
            emit_log=lambda line: self._logs.append(LogLine(claim.subtask_id, claim.attempt, line)),
        )
        run = Run(claim, ctx)
        self._runs[claim.subtask_id] = run
        run.task = asyncio.create_task(self._execute(run), name=f"subtask-{claim.subtask_id}")

    async def _execute(self, run: Run) -> None:
        with bound(taskId=run.claim.task_id, subtaskId=run.claim.subtask_id):
            self._log_start(run.claim)
            verdict = await self._run(run)
        if verdict is not None:
            self.observer.subtask_finished(
                run.claim.name, run.claim.action, verdict, time.monotonic() - run.started
            )

    def _log_start(self, claim: Claim) -> None:
        if claim.series_id == 0 and claim.run_time == 1 and claim.action == Action.EXECUTE:
            log.info("task %s started", claim.task_id)
        again = f" (run {claim.run_time})" if claim.run_time > 1 else ""
        log.info(
            "subtask %s (%s) of task %s started: %s%s",
            claim.subtask_id,
            claim.name,
            claim.task_id,
            claim.action,
            again,
        )

    async def _run(self, run: Run) -> str | None:
        """Run the claimed subtask; its outcome (None when abandoned), logged."""
        claim, ctx = run.claim, run.ctx
        outcome = Outcome(claim, succeeded=False, changes=ctx.changes)
        verdict = "FAILED"
        try:
            subtask = resolve(claim.class_name)()
            method = subtask.rollback if claim.action == Action.ROLLBACK else subtask.execute
            deadline = asyncio.timeout(claim.timeout)
            try:
                async with deadline:
                    await method(ctx)
                outcome.succeeded = True
                verdict = "SUCCESSFUL"
                log.info("subtask %s of task %s succeeded", claim.subtask_id, claim.task_id)
            except TimeoutError:
                if not deadline.expired():
                    raise
                ctx.log(f"The subtask timed out after {claim.timeout} s.")
                verdict = "TIMEOUT"
                log.warning(
                    "subtask %s of task %s failed: timed out after %s s",
                    claim.subtask_id,
                    claim.task_id,
                    claim.timeout,
                )
        except asyncio.CancelledError:
            if not run.cancel_requested:
                run.finished = True
                raise  # abandoned: the lease was lost, or the engine is stopping
            ctx.log("The subtask was cancelled by an operator.")
            outcome.cancelled = True
            verdict = "CANCELLED"
            log.warning("subtask %s of task %s cancelled", claim.subtask_id, claim.task_id)
        except Exception as exc:
            # The operator reads the subtask log for what went wrong; the traceback (server
            # paths, code lines) is for whoever debugs the server, in its log.
            reason = str(exc) or type(exc).__name__
            ctx.log(f"The subtask failed: {reason}")
            log.warning(
                "subtask %s of task %s failed: %s",
                claim.subtask_id,
                claim.task_id,
                reason,
                exc_info=True,
            )
        run.finished = True
        if run.abandoned:
            return None
        self._outcomes.append(outcome)
        self._wake.set()
        return verdict

    def _cancel(self, run: Run) -> None:
        run.cancel_requested = True
        run.ctx.cancelled.set()
        if run.task is not None:
            run.task.cancel()

    def _abandon(self, run: Run) -> None:
        run.abandoned = True
        if run.task is not None:
            run.task.cancel()

    def _failed(self, what: str, exc: Exception) -> None:
        """Log a failed round with its traceback, unless the metadb is unreachable: that is
        logged once per outage (store/outage.py), not every poll interval until it is back."""
        if not self.db.outage.noted(exc):
            log.error(what, exc_info=exc)

    # --- leases -------------------------------------------------------------------------

    async def _keep_leases(self) -> None:
        beats = 0
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            beats += 1
            try:
                if beats % CLOCK_SYNC_EVERY == 0:
                    await self._db(self.clock.sync)
                held = {
                    sid: run.claim.attempt for sid, run in self._runs.items() if not run.finished
                }
                lost = await self._db(self.store.heartbeat, held)
                for subtask_id in lost:
                    run = self._runs.pop(subtask_id, None)
                    if run is not None and not run.finished:
                        log.warning("lost the lease on subtask %s; abandoning its run", subtask_id)
                        self._abandon(run)
                changed = await self._sweep()
                if changed:
                    signals.publish(changed, work=True)
            except Exception as exc:
                self._failed("task engine lease upkeep failed; retrying", exc)

    async def _sweep(self, foreign_owners_are_dead: bool = False) -> set[int]:
        before = self.store.taken_over
        changed: set[int] = await self._db(self.store.sweep, foreign_owners_are_dead)
        if self.store.taken_over > before:
            self.observer.taken_over(self.store.taken_over - before)
        return changed
