"""The root@proxysys client against the stand-in OBProxy's SQL port (real MySQL protocol)."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest

from obfleet.obproxy.admin import AdminError, ProxysysClient, preferred_tls
from tests.obproxy.test_health import PASSWORD, StandinSql


def test_logins_share_one_tls_context(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """PyMySQL would build a TLS context, loading every CA certificate of the system, for each
    login; obfleet's client builds none per login, and still logs in (the stand-in offers no
    TLS, so the preferred mode goes on in plain text)."""
    sql = StandinSql(tmp_path, PASSWORD)
    made: list[object] = []
    real = ssl.create_default_context

    def counting(*args: object, **kwargs: object) -> ssl.SSLContext:
        made.append(args)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ssl, "create_default_context", counting)
    try:
        client = ProxysysClient("127.0.0.1", sql.port, PASSWORD)
        for _ in range(3):
            client.login()
        assert asyncio.run(client.show_proxyconfig("syslog_level")) == {"syslog_level": "INFO"}
        with pytest.raises(AdminError, match="cannot log in"):
            ProxysysClient("127.0.0.1", sql.port, "wrong").login()
        assert made == []
    finally:
        sql.close()
    shared = preferred_tls()
    assert preferred_tls() is shared
    assert (shared.verify_mode, shared.check_hostname) == (ssl.CERT_NONE, False)
