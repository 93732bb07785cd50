"""Subtasks the observability tests run inside a real app's engine."""

from __future__ import annotations

from pathlib import Path

from obfleet.engine import Subtask, SubtaskContext


class Passes(Subtask):
    name = "Observed step"

    async def execute(self, ctx: SubtaskContext) -> None:
        ctx.log("nothing to do")


class FailsWhileMarked(Subtask):
    """Fails while the file named by the context's `marker` exists (the test removes it to let
    a retry pass)."""

    name = "Observed fragile step"

    async def execute(self, ctx: SubtaskContext) -> None:
        if Path(ctx.require("marker")).exists():
            raise RuntimeError("the marker file is still there")
