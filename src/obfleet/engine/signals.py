"""In-process notifications, so a local engine and local watchers react at once to a commit.

Other replicas learn of changes by polling the metadb; these signals only shorten the wait
inside one process. Listeners may live on any thread or event loop: they get called from the
thread that committed, and must hand the news over thread-safely.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from sqlalchemy import event
from sqlalchemy.orm import Session

# (task ids that changed, whether some subtask may have become READY)
Listener = Callable[[frozenset[int], bool], None]

_listeners: set[Listener] = set()
_lock = threading.Lock()


def subscribe(listener: Listener) -> None:
    with _lock:
        _listeners.add(listener)


def unsubscribe(listener: Listener) -> None:
    with _lock:
        _listeners.discard(listener)


def publish(task_ids: Iterable[int], work: bool) -> None:
    changed = frozenset(task_ids)
    with _lock:
        listeners = list(_listeners)
    for listener in listeners:
        listener(changed, work)


def publish_after_commit(session: Session, task_ids: Iterable[int], work: bool) -> None:
    """Publish once `session` commits (nothing is published if it rolls back)."""
    changed = frozenset(task_ids)

    def _committed(_session: Session) -> None:
        publish(changed, work)

    event.listen(session, "after_commit", _committed, once=True)
