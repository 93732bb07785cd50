"""The obproxy rows' status rules shared by every operation's steps."""

from __future__ import annotations

import pytest

from obfleet.services import obproxy_records as records
from obfleet.store.models.obproxy import ObproxyServer


def row(status: str) -> ObproxyServer:
    operate = "NORMAL" if status in records.SETTLED else "OPERATING"
    return ObproxyServer(id=7, status=status, operate_status=operate)


@pytest.mark.parametrize("before", ["RUNNING", "UNAVAILABLE", "RESTARTING"])
def test_a_rollback_takes_back_a_settled_row_or_its_own(before: str) -> None:
    taken = row(before)
    records.take_back(taken, "RESTARTING")
    assert (taken.status, taken.operate_status) == ("RESTARTING", "OPERATING")


@pytest.mark.parametrize("other", ["DELETING", "UPGRADING", "TAKINGOVER", "CREATING"])
def test_a_rollback_never_takes_a_row_from_another_operation(other: str) -> None:
    held = row(other)
    with pytest.raises(records.HeldElsewhere, match=f"obproxy 7 is {other}: another operation"):
        records.take_back(held, "RESTARTING")
    assert (held.status, held.operate_status) == (other, "OPERATING")
