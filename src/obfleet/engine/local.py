"""A new task's first subtasks claimed by the transaction that submits it, for an engine of
this process with free slots.

Left to the engine, the first subtask starts after the commit wakes the pump, a hop to the
engine's database thread, a step of its own (a transaction that finds, claims and logs it)
and a hop back: most of a create's time to its first RUNNING subtask on an idle engine. The
submitting transaction can instead insert those subtasks RUNNING, owned and leased by a local
engine, and hand them over once it commits. The claim stays exclusive (no other transaction
sees rows before they are committed, and they are never READY); if this process dies before
running them, their lease runs out like any run's and another runner takes them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sqlalchemy import URL, event
from sqlalchemy.orm import Session, SessionTransaction

from obfleet.engine.states import Operation
from obfleet.engine.store import APPEND_LOG, Claim, run_header


class Runner(Protocol):
    """An engine of this process that takes runs claimed by submitting transactions."""

    def reserve(self, wanted: int) -> Reservation | None:
        """Up to `wanted` of its free slots, held until `adopt` or `unreserve` (any thread);
        None when it has none."""

    def adopt(self, reservation: Reservation) -> None:
        """Start the reservation's claims, committed (any thread); frees its unused slots."""

    def unreserve(self, reservation: Reservation) -> None:
        """Free the slots: the submitting transaction rolled back (any thread)."""


@dataclass
class Reservation:
    """Slots of a local engine held by one transaction, the runs it claimed in them, and what
    such a run is stamped with."""

    runner: Runner
    slots: int
    owner: str  # the engine's node id
    executor: str  # its address
    lease_until: datetime
    claims: list[Claim] = field(default_factory=list)

    @property
    def free(self) -> int:
        return self.slots - len(self.claims)


_runners: dict[URL, list[Runner]] = {}
_lock = threading.Lock()
# session.info: the (transaction, reservation) of the session's transaction, if it has one.
_HELD = "obfleet.engine.reservation"


def attach(url: URL, runner: Runner) -> None:
    """Offer `runner`'s free slots to transactions on the metadb at `url`."""
    with _lock:
        _runners.setdefault(url, []).append(runner)


def detach(url: URL, runner: Runner) -> None:
    with _lock:
        runners = _runners.get(url, [])
        if runner in runners:
            runners.remove(runner)
        if not runners:
            _runners.pop(url, None)


def reserve(session: Session, wanted: int) -> Reservation | None:
    """Free slots for up to `wanted` more subtasks that `session`'s transaction inserts, from
    a local engine on its metadb: the transaction's reservation, whose `free` slots are
    those; None when no engine has a free slot.

    A transaction has one reservation, whatever it submits, handed to its engine in one
    piece when it commits (so its runs start together), or given back when it rolls back.
    Not inside a savepoint: releasing one is not the commit that makes the rows visible.
    """
    root = session.get_transaction()
    if wanted <= 0 or not _runners or root is None or session.in_nested_transaction():
        return None
    held: tuple[SessionTransaction, Reservation] | None = session.info.get(_HELD)
    if held is not None and held[0] is root:
        more = held[1].runner.reserve(wanted)
        if more is not None:
            held[1].slots += more.slots
            held[1].lease_until = more.lease_until
        return held[1]
    with _lock:
        runners = list(_runners.get(session.get_bind().engine.url, ()))
    for runner in runners:
        reservation = runner.reserve(wanted)
        if reservation is not None:
            session.info[_HELD] = (root, reservation)
            _hand_over_at_end(session, root, reservation)
            return reservation
    return None


def record_claims(
    session: Session, reservation: Reservation, claims: list[Claim], started: datetime
) -> None:
    """Runs the transaction claimed in `reservation`'s free slots (their rows inserted RUNNING
    at `started`), with the log header an engine's claim writes for each."""
    reservation.claims.extend(claims)
    if claims:
        header = run_header(Operation.EXECUTE, started)
        session.execute(
            APPEND_LOG,
            [{"subtask_id": c.subtask_id, "attempt": c.attempt, "line": header} for c in claims],
        )


def _hand_over_at_end(session: Session, root: SessionTransaction, reservation: Reservation) -> None:
    """Give the reservation to its engine when `root` commits, or back when it ends without."""
    done = False

    def on_commit(_session: Session) -> None:
        nonlocal done
        # A savepoint's release fires this too, while the transaction goes on.
        if not done and not session.in_nested_transaction():
            done = True
            session.info.pop(_HELD, None)
            reservation.runner.adopt(reservation)

    def on_end(_session: Session, transaction: SessionTransaction) -> None:
        nonlocal done
        if transaction is root and not done:
            done = True
            session.info.pop(_HELD, None)
            reservation.runner.unreserve(reservation)

    event.listen(session, "after_commit", on_commit)
    event.listen(session, "after_transaction_end", on_end)
