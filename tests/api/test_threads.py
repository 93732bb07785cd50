"""The API's worker threads (obfleet.api.threads): how many run handlers, by metadb or setting,
and a write session's ending, which never queues behind the handlers it would free."""

from __future__ import annotations

import dataclasses
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from anyio import to_thread
from fastapi.testclient import TestClient
from sqlalchemy import event

from obfleet.api.app import create_app
from obfleet.config import Settings
from obfleet.services import users
from tests.conftest import ADMIN, LOOPBACK

CLUSTER = {
    "obClusterId": 1,
    "proxyroPassword": "Threads_proxyro_1",
    "rootServers": [{"address": "198.18.0.2:2882", "role": "LEADER", "sqlPort": 2881}],
}


def handler_tokens(client: TestClient) -> float:
    return client.portal.call(lambda: to_thread.current_default_thread_limiter().total_tokens)


def test_handlers_run_in_a_few_threads_chosen_by_the_metadb(settings: Settings) -> None:
    with TestClient(create_app(settings, run_engine=False), client=LOOPBACK) as client:
        dialect = client.app.state.ctx.db.dialect  # type: ignore[attr-defined]
        assert handler_tokens(client) == (2 if dialect == "sqlite" else 4)


def test_the_handler_threads_can_be_set(settings: Settings) -> None:
    mine = dataclasses.replace(settings, request_threads=7)
    with TestClient(create_app(mine, run_engine=False), client=LOOPBACK) as client:
        assert handler_tokens(client) == 7


def test_settings_read_the_handler_threads_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OBFLEET_DATA_DIR", str(tmp_path))
    assert Settings.from_env().request_threads is None
    monkeypatch.setenv("OBFLEET_REQUEST_THREADS", "3")
    assert Settings.from_env().request_threads == 3
    monkeypatch.setenv("OBFLEET_REQUEST_THREADS", "0")
    with pytest.raises(ValueError, match="OBFLEET_REQUEST_THREADS"):
        Settings.from_env()


def test_a_write_ends_while_the_only_handler_thread_waits_for_its_turn(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One handler thread. The first import holds SQLite's write turn from its INSERT until its
    session ends, after the handler returned; the second import's handler takes the thread
    meanwhile and waits for that turn. The first session's ending must not need that thread."""
    if not settings.effective_database_url.startswith("sqlite"):
        pytest.skip("the write turn is SQLite's (store.db)")
    monkeypatch.setattr(users, "LOGIN_RECHECK_S", 600.0)  # both logins from the cache: no hop
    app = create_app(dataclasses.replace(settings, request_threads=1), run_engine=False)
    with TestClient(app, raise_server_exceptions=False, client=LOOPBACK) as client:
        assert client.get("/api/v2/ob/clusters", headers=ADMIN).status_code == 200
        limiter = client.portal.call(to_thread.current_default_thread_limiter)
        first_insert = threading.Event()

        def hold_first(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            if statement.startswith("INSERT INTO ob_cluster") and not first_insert.is_set():
                first_insert.set()
                # Keep the first handler (and its write turn) until the second waits for the
                # thread, so that the thread goes to it when the first handler returns.
                give_up = time.monotonic() + 10
                while not limiter.statistics().tasks_waiting and time.monotonic() < give_up:
                    time.sleep(0.001)

        engine = app.state.ctx.db.engine
        event.listen(engine, "before_cursor_execute", hold_first)
        try:
            with ThreadPoolExecutor(2) as pool:
                first = pool.submit(
                    client.post,
                    "/api/v2/ob/clusters/import",
                    json=CLUSTER | {"name": "first"},
                    headers=ADMIN,
                )
                assert first_insert.wait(10)
                second = pool.submit(
                    client.post,
                    "/api/v2/ob/clusters/import",
                    json=CLUSTER | {"name": "second", "obClusterId": 2},
                    headers=ADMIN,
                )
                answers = [first.result(timeout=60), second.result(timeout=60)]
        finally:
            event.remove(engine, "before_cursor_execute", hold_first)
        assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
