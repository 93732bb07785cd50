"""Password logins: failures counted and locked per (user, client address), and the password
check run outside any metadb session."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import event

from obfleet.security.throttle import LoginLocked, LoginThrottle
from obfleet.services.users import create_user
from tests.conftest import ADMIN, ADMIN_PASSWORD, basic
from tests.server import ServerProcess

URL = "/api/v2/ob/clusters"
WRONG = basic("admin", "Wrong_Pass_12")


def _error(r: httpx.Response) -> tuple[int, int, str]:
    return r.status_code, r.json()["error"]["code"], r.json()["error"]["message"]


def test_wrong_passwords_lock_admin_from_that_address_while_admin_works_from_another(
    tmp_path, database_url
):
    env = {"OBFLEET_ADMIN_PASSWORD": ADMIN_PASSWORD}
    with (
        ServerProcess(tmp_path / "data", database_url=database_url, env=env) as server,
        httpx.Client(base_url=server.url) as home,  # from 127.0.0.1
        httpx.Client(
            base_url=server.url, transport=httpx.HTTPTransport(local_address="127.0.0.2")
        ) as other,
    ):
        answers = [_error(other.get(URL, headers=WRONG)) for _ in range(5)]
        assert [a[:2] for a in answers] == [(401, 3004)] * 5
        assert [a[2].split("retry ")[1] for a in answers] == [
            f"{n} more times." for n in (4, 3, 2, 1, 0)
        ]
        locked = other.get(URL, headers=ADMIN)  # locked: even the right password
        status, code, message = _error(locked)
        assert (status, code) == (429, 3014) and "127.0.0.2" in message
        assert 0 < int(locked.headers["retry-after"]) <= 300
        assert not locked.json()["successful"] and ADMIN_PASSWORD not in locked.text

        assert home.get(URL, headers=ADMIN).status_code == 200  # admin from elsewhere
        assert "retry 4 more" in _error(home.get(URL, headers=WRONG))[2]
        assert home.get(URL, headers=ADMIN).status_code == 200  # a success clears the count
        assert "retry 4 more" in _error(home.get(URL, headers=WRONG))[2]
        # Another user from the locked address is counted on its own.
        assert "retry 4 more" in _error(other.get(URL, headers=basic("nobody", "x")))[2]
        assert other.get(URL, headers=ADMIN).status_code == 429


def test_the_password_check_holds_no_metadb_connection(client, monkeypatch):
    db = client.app.state.ctx.db
    checked_out = [0]
    event.listen(
        db.engine.pool, "checkout", lambda *_: checked_out.__setitem__(0, checked_out[0] + 1)
    )
    event.listen(
        db.engine.pool, "checkin", lambda *_: checked_out.__setitem__(0, checked_out[0] - 1)
    )
    seen: list[int] = []

    def verify(password_hash: str, password: str) -> bool:
        seen.append(checked_out[0])
        return False

    monkeypatch.setattr("obfleet.services.users.verify_password", verify)
    with db.transaction() as session:
        create_user(session, "ops", "Ops_Pass_12", ["ADMIN"])
    assert client.get(URL, headers=basic("ops", "Ops_Pass_12")).status_code == 401
    assert seen == [0]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_lock_lasts_its_time_and_then_the_count_starts_afresh():
    clock = Clock()
    throttle = LoginThrottle(max_failures=2, lock_seconds=60, clock=clock)
    pair = ("admin", "127.0.0.2")
    throttle.check(pair)
    assert [throttle.failed(pair), throttle.failed(pair)] == [1, 0]
    clock.now += 59.5
    with pytest.raises(LoginLocked) as locked:
        throttle.check(pair)
    assert locked.value.retry_after == 1
    clock.now += 0.5
    throttle.check(pair)
    assert throttle.failed(pair) == 1


def test_a_success_forgives_the_failures_before_it():
    throttle = LoginThrottle(max_failures=2, lock_seconds=60, clock=Clock())
    pair = ("admin", "127.0.0.2")
    throttle.failed(pair)
    throttle.succeeded(pair)
    assert throttle.failed(pair) == 1


def test_the_counts_kept_are_bounded_dropping_the_pair_touched_longest_ago():
    throttle = LoginThrottle(max_failures=1, lock_seconds=60, max_entries=3, clock=Clock())
    for user in ("a", "b", "c", "d"):
        throttle.failed((user, "127.0.0.2"))
    assert len(throttle) == 3
    throttle.check(("a", "127.0.0.2"))  # dropped, so no longer locked
    with pytest.raises(LoginLocked):
        throttle.check(("d", "127.0.0.2"))


def test_concurrent_first_logins_with_the_right_password_are_not_locked_out(client):
    """Before any of them is checked (and cached), none counts as a failure."""
    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(lambda _: client.get(URL, headers=ADMIN).status_code, range(12)))
    assert answers == [200] * 12
