"""Subtasks the engine tests run, importable by the test worker processes as well."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from obfleet.engine import Subtask, SubtaskContext


@dataclass
class Journal:
    """What in-process subtasks report back to the test (passed as the engine's resources)."""

    events: list[tuple[str, str, int]] = field(default_factory=list)  # (what, name, branch)
    branches_started: int = 0
    all_branches_started: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    fail_once: set[str] = field(default_factory=set)

    def record(self, what: str, ctx: SubtaskContext, name: str) -> None:
        self.events.append((what, name, ctx.parallel_idx))


class Step(Subtask):
    """Records its execution and rollback; fails once if the test listed its name."""

    async def execute(self, ctx: SubtaskContext) -> None:
        journal: Journal = ctx.resources
        journal.record("execute", ctx, self.name)
        ctx.log(f"{self.name} ran on branch {ctx.parallel_idx}")
        if self.name in journal.fail_once:
            journal.fail_once.discard(self.name)
            raise RuntimeError(f"{self.name} failed on purpose")

    async def rollback(self, ctx: SubtaskContext) -> None:
        ctx.resources.record("rollback", ctx, self.name)


class A(Step):
    pass


class B(Step):
    pass


class C(Step):
    pass


class D(Step):
    pass


class E(Step):
    pass


class Undoable(Step):
    prohibit_rollback = True


class MeetOtherBranches(Subtask):
    """Proves branches run at once: each waits until every branch has started."""

    name = "Meet other branches"
    timeout = 10

    async def execute(self, ctx: SubtaskContext) -> None:
        journal: Journal = ctx.resources
        journal.branches_started += 1
        if journal.branches_started == len(ctx.get_list("hosts")):
            journal.all_branches_started.set()
        await journal.all_branches_started.wait()
        journal.record("execute", ctx, self.name)


class Slow(Subtask):
    """Runs until the test releases it (or it times out / is cancelled)."""

    timeout = 1

    async def execute(self, ctx: SubtaskContext) -> None:
        journal: Journal = ctx.resources
        journal.record("execute", ctx, self.name)
        ctx.log("waiting for the test")
        try:
            await journal.release.wait()
        finally:
            journal.record("stopped", ctx, self.name)


class Patient(Slow):
    timeout = 60


class WriteContext(Subtask):
    async def execute(self, ctx: SubtaskContext) -> None:
        host = ctx.item("hosts")
        ctx.set(f"dir_{host}", f"/home/admin/{host}")
        ctx.log(f"connecting with password={ctx.secret('s3cret!')} and token s3cret!")


class ReadContext(Subtask):
    async def execute(self, ctx: SubtaskContext) -> None:
        dirs = sorted(ctx.require(f"dir_{host}") for host in ctx.get_list("hosts"))
        ctx.set("all_dirs", ",".join(dirs))


# --- for worker processes: effects go to files named in the task context ---------------


class AppendLine(Subtask):
    """Appends '<subtask id> <runTime>' to the file named by the context's `out`."""

    timeout = 30

    async def execute(self, ctx: SubtaskContext) -> None:
        line = f"{ctx.subtask_id} {ctx.run_time}\n".encode()
        fd = os.open(ctx.require("out"), os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
        await asyncio.sleep(float(ctx.get("pause", "0") or 0))


class WaitForRelease(Subtask):
    """Marks that it started, then waits until the file named by `release` exists."""

    timeout = 60

    async def execute(self, ctx: SubtaskContext) -> None:
        Path(ctx.require("started")).write_text(f"{ctx.run_time}\n")
        deadline = time.monotonic() + 50
        while not Path(ctx.require("release")).exists():
            if time.monotonic() > deadline:
                raise TimeoutError("never released")
            await asyncio.sleep(0.05)
        ctx.log("released")
