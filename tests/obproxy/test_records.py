"""The obproxy rows' status rules shared by every operation's steps."""

from __future__ import annotations

import pytest

from obfleet.records import obproxy as records
from obfleet.store.models.obproxy import ObproxyServer


def row(status: str, task_id: int | None = None) -> ObproxyServer:
    operate = "NORMAL" if status in records.SETTLED else "OPERATING"
    return ObproxyServer(id=7, status=status, operate_status=operate, task_id=task_id)


@pytest.mark.parametrize("before", ["RUNNING", "UNAVAILABLE", "RESTARTING"])
def test_a_rollback_takes_back_a_settled_row_or_its_own(before: str) -> None:
    taken = row(before)
    records.take_back(taken, "RESTARTING", 5)
    assert (taken.status, taken.operate_status, taken.task_id) == ("RESTARTING", "OPERATING", 5)


@pytest.mark.parametrize("other", ["DELETING", "UPGRADING", "TAKINGOVER", "CREATING"])
def test_a_rollback_never_takes_a_row_from_another_operation(other: str) -> None:
    held = row(other, task_id=3)
    with pytest.raises(records.HeldElsewhere, match=f"obproxy 7 is {other}: another operation"):
        records.take_back(held, "RESTARTING", 5)
    assert (held.status, held.operate_status, held.task_id) == (other, "OPERATING", 3)


def test_an_operations_status_is_held_by_its_task_and_a_settled_one_by_none() -> None:
    held = row("RUNNING")
    records.set_status(held, "DELETING", 9)
    assert (held.status, held.operate_status, held.task_id) == ("DELETING", "OPERATING", 9)
    records.set_status(held, "UNAVAILABLE", 9)
    assert (held.status, held.operate_status, held.task_id) == ("UNAVAILABLE", "NORMAL", None)
