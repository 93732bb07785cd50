"""Watching a task run: its DAG drawn live in a terminal (per-host branches side by side, each
subtask's status and duration, a spinner while it runs, the tail of the running or failed
subtask's log), or one plain line per change when the output is not a terminal.

The view is fed by the task's event stream (GET /api/v2/tasks/instances/{id}/events), merged
into the task's last full view; when the stream is not available (an older obfleet, OCP itself)
or breaks, the task is polled instead.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from obfleet.client.api import Api, ApiFailure

POLL_SECONDS = 1.0
LOG_TAIL_LINES = 15
SETTLED = ("SUCCESSFUL", "FAILED")
ACTIVE = ("READY", "RUNNING", "CANCELING")
STYLES = {
    "SUCCESSFUL": "green",
    "FAILED": "bold red",
    "RUNNING": "cyan",
    "CANCELING": "yellow",
    "READY": "cyan",
    "PENDING": "dim",
}
MARKS = {"SUCCESSFUL": "✔", "FAILED": "✘", "PENDING": "·", "READY": ">", "CANCELING": "…"}


def finished(task: dict[str, Any]) -> bool:
    return task["status"] in SETTLED and not any(s["status"] in ACTIVE for s in task["subtasks"])


def merged(task: dict[str, Any], event_name: str, data: dict[str, Any]) -> dict[str, Any]:
    """The task's view after one event of its stream."""
    if event_name == "task":
        return {**task, **data} if "subtasks" not in data else data
    if event_name == "subtask":
        subtasks = [data if s["id"] == data["id"] else s for s in task["subtasks"]]
        return {**task, "subtasks": subtasks}
    return task


def views(api: Api, task_id: int) -> Iterator[dict[str, Any]]:
    """The task's view after each change, until it is finished: from its event stream, and by
    polling once the stream is unavailable or broken."""
    task: dict[str, Any] | None = None
    try:
        for event in api.events(task_id):
            if event.name == "end":
                break
            task = merged(task, event.name, event.data) if task else event.data
            yield task
    except ApiFailure as exc:
        if exc.status == 404 and exc.code in (4001, "4001"):
            raise  # no such task: polling would not find it either
    except Exception:  # a broken stream (connection, proxy); polling carries on
        pass
    while True:
        task = api.get(f"/api/v2/tasks/instances/{task_id}")
        yield task
        if finished(task):
            return
        time.sleep(POLL_SECONDS)


def parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def duration(subtask: dict[str, Any], now: datetime) -> str:
    start = parse_time(subtask.get("startTime"))
    if start is None:
        return ""
    end = parse_time(subtask.get("finishTime")) if subtask["status"] in SETTLED else None
    seconds = max(0.0, ((end or now) - start).total_seconds())
    return f"{seconds:.1f}s" if seconds < 60 else f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


def focus(task: dict[str, Any]) -> dict[str, Any] | None:
    """The subtask whose log is worth showing: the first failed one, else the first running."""
    for status in ("FAILED", "RUNNING", "CANCELING"):
        for sub in task["subtasks"]:
            if sub["status"] == status:
                return sub
    return None


def log_tail(api: Api, task_id: int, subtask_id: int, lines: int = LOG_TAIL_LINES) -> str:
    try:
        log = api.get(f"/api/v2/tasks/instances/{task_id}/subtasks/{subtask_id}/log")["log"]
    except ApiFailure as exc:
        return f"(log not available: {exc})"
    return "\n".join((log or "").rstrip("\n").splitlines()[-lines:])


def segments(subtasks: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The subtasks in series order, cut into runs: a shared step alone, or the consecutive
    per-branch steps (parallelIdx >= 0) that run side by side."""
    runs: list[list[dict[str, Any]]] = []
    for sub in sorted(subtasks, key=lambda s: s["seriesId"]):
        parallel = sub["parallelIdx"] >= 0
        if runs and parallel and runs[-1][0]["parallelIdx"] >= 0:
            runs[-1].append(sub)
        else:
            runs.append([sub])
    return runs


def _cell(sub: dict[str, Any], now: datetime) -> RenderableType:
    status = sub["status"]
    skipped = " (skipped)" if sub.get("operation") == "SKIP" and status == "SUCCESSFUL" else ""
    label = Text.assemble(
        (sub["name"], STYLES.get(status, "")), f"{skipped} ", (duration(sub, now), "dim")
    )
    if status == "RUNNING":
        return Spinner("dots", text=label, style="cyan")
    return Text.assemble((MARKS.get(status, "?") + " ", STYLES.get(status, "")), label)


def _branches(run: list[dict[str, Any]], now: datetime) -> Table:
    by_branch: dict[int, list[dict[str, Any]]] = {}
    for sub in run:
        by_branch.setdefault(sub["parallelIdx"], []).append(sub)
    table = Table(box=None, pad_edge=False, show_edge=False, padding=(0, 3, 0, 0))
    for idx in sorted(by_branch):
        table.add_column(f"branch {idx}", header_style="bold dim")
    depth = max(len(chain) for chain in by_branch.values())
    for row in range(depth):
        table.add_row(
            *(
                _cell(chain[row], now) if row < len(chain) else ""
                for _, chain in sorted(by_branch.items())
            )
        )
    return table


def render(task: dict[str, Any], tail: str, now: datetime) -> RenderableType:
    """The whole live view: header, the DAG's runs top to bottom, the focused log's tail."""
    header = Text.assemble(
        (f"Task {task['id']} ", "bold"),
        (task["name"], "bold"),
        "  ",
        (task["status"], STYLES.get(task["status"], "")),
        f"  {task.get('operation', '')}",
    )
    parts: list[RenderableType] = [header]
    for run in segments(task["subtasks"]):
        parts.append(_branches(run, now) if run[0]["parallelIdx"] >= 0 else _cell(run[0], now))
    sub = focus(task)
    if sub is not None and tail:
        parts.append(Text(f"── log of {sub['name']} (#{sub['id']}) ──", style="dim"))
        parts.append(Text(tail, style="red" if sub["status"] == "FAILED" else "dim"))
    return Group(*parts)


def plain_lines(before: dict[str, Any] | None, after: dict[str, Any]) -> list[str]:
    """One line per subtask whose status changed, and one when the task's status does."""
    old = {s["id"]: s["status"] for s in (before or {"subtasks": []})["subtasks"]}
    lines = []
    now = datetime.now(UTC)
    for sub in sorted(after["subtasks"], key=lambda s: s["seriesId"]):
        if old.get(sub["id"]) != sub["status"] and (before or sub["status"] != "PENDING"):
            branch = f"[{sub['parallelIdx']}] " if sub["parallelIdx"] >= 0 else ""
            took = duration(sub, now)
            lines.append(f"{branch}{sub['name']}: {sub['status']}" + (f" ({took})" if took else ""))
    if before is None or before["status"] != after["status"]:
        lines.append(f"task {after['id']} {after['name']}: {after['status']}")
    return lines


class Watcher:
    """Follows one task to its end and says how it ended."""

    def __init__(self, api: Api, console: Console) -> None:
        self.api = api
        self.console = console

    def watch(self, task_id: int) -> dict[str, Any]:
        task = self._live(task_id) if self.console.is_terminal else self._plain(task_id)
        if task["status"] == "FAILED":
            self.report_failure(task)
        return task

    def report_failure(self, task: dict[str, Any]) -> None:
        for sub in task["subtasks"]:
            if sub["status"] == "FAILED":
                self.console.print(
                    f"[bold red]failed:[/bold red] {sub['name']} (subtask {sub['id']}), "
                    "its log ends with:"
                )
                self.console.print(log_tail(self.api, task["id"], sub["id"]), markup=False)

    def _plain(self, task_id: int) -> dict[str, Any]:
        before: dict[str, Any] | None = None
        for task in views(self.api, task_id):
            for line in plain_lines(before, task):
                self.console.print(line, markup=False, highlight=False)
            before = task
        assert before is not None
        return before

    def _live(self, task_id: int) -> dict[str, Any]:
        feed = _Feed(self.api, task_id)
        feed.start()
        tail, tail_of, tail_at = "", None, 0.0
        with Live(console=self.console, refresh_per_second=8, transient=False) as live:
            while True:
                task = feed.latest
                if task is not None:
                    sub = focus(task)
                    key = (sub["id"], sub["status"]) if sub else None
                    if sub and (key != tail_of or time.monotonic() - tail_at > 2):
                        tail, tail_of, tail_at = (
                            log_tail(self.api, task_id, sub["id"]),
                            key,
                            time.monotonic(),
                        )
                    live.update(render(task, tail, datetime.now(UTC)))
                if feed.done.wait(0.25):
                    break
        if feed.error is not None:
            raise feed.error
        assert feed.latest is not None
        return feed.latest


class _Feed(threading.Thread):
    """Reads the task's views in the background; the live view shows the latest."""

    def __init__(self, api: Api, task_id: int) -> None:
        super().__init__(daemon=True)
        self.api = api
        self.task_id = task_id
        self.latest: dict[str, Any] | None = None
        self.error: Exception | None = None
        self.done = threading.Event()

    def run(self) -> None:
        try:
            for task in views(self.api, self.task_id):
                self.latest = task
        except Exception as exc:  # handed to the watching thread, which raises it
            self.error = exc
        finally:
            self.done.set()
