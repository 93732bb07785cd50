"""AK/SK-signed bodies: read once through the signature's digest, never held whole in memory,
and handed on to the route unchanged."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

import httpx

from obfleet.api.signed_body import IN_MEMORY
from obfleet.security import aksk
from obfleet.services.users import create_access_key
from tests.conftest import ADMIN_PASSWORD
from tests.server import ServerProcess

UPLOAD = "/api/v2/software-packages"
MiB = 1024 * 1024
BOUNDARY = "obfleet-test-boundary"


def _multipart(size: int) -> Iterator[bytes]:
    """A multipart body of about `size` bytes, made as it is sent."""
    yield f"--{BOUNDARY}\r\n".encode()
    yield b'Content-Disposition: form-data; name="file"; filename="x.rpm"\r\n'
    yield b"Content-Type: application/octet-stream\r\n\r\n"
    chunk = b"\0" * MiB
    for _ in range(size // MiB):
        yield chunk
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


def _length(size: int) -> int:
    return sum(len(part) for part in _multipart(0)) + size // MiB * MiB


def _memory_kib(pid: int) -> dict[str, int]:
    status = Path(f"/proc/{pid}/status").read_text()
    return {
        key: int(value) for key, value in re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", status, re.M)
    }


def _headers(access_key: str, signature: str, length: int) -> dict[str, str]:
    return {
        "authorization": f"{aksk.SCHEME} {access_key}:{signature}",
        "date": format_datetime(datetime.now(UTC), usegmt=True),
        "content-type": f"multipart/form-data; boundary={BOUNDARY}",
        "content-length": str(length),
    }


def test_an_unauthenticated_signed_upload_of_400_mib_costs_the_server_little_memory(
    tmp_path, database_url
):
    """The issue's attack: a known access-key id, a made-up signature, a 400 MiB body."""
    server = ServerProcess(
        tmp_path / "data", database_url=database_url, env={"OBFLEET_ADMIN_PASSWORD": ADMIN_PASSWORD}
    )
    made = subprocess.run(
        [sys.executable, "-m", "obfleet", "accesskey", "create", "admin"],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    access_key = re.search(r"AccessKey ID:\s+(\S+)", made.stdout)[1]
    with server, httpx.Client(base_url=server.url, timeout=120) as client:
        assert server.proc is not None
        warm = client.post(
            UPLOAD, headers=_headers(access_key, "AAAA", _length(MiB)), content=_multipart(MiB)
        )
        assert warm.status_code == 401
        before = _memory_kib(server.proc.pid)
        size = 400 * MiB
        r = client.post(
            UPLOAD, headers=_headers(access_key, "AAAA", _length(size)), content=_multipart(size)
        )
        after = _memory_kib(server.proc.pid)
    assert r.status_code == 401 and r.json()["error"]["code"] == 3000, r.text
    assert "signature does not match" in r.json()["error"]["message"]
    grown_mib = (after["VmHWM"] - before["VmRSS"]) / 1024
    assert grown_mib < 50, f"the server's peak RSS grew by {grown_mib:.0f} MiB"
    assert not list((tmp_path / "data" / "packages").glob("tmp*")), "the spool was not removed"


def test_a_signed_body_larger_than_the_memory_spool_reaches_the_route_whole(client):
    ctx = client.app.state.ctx
    with ctx.db.transaction() as session:
        access_key, secret = create_access_key(session, ctx.secrets, "admin")
    size = 2 * IN_MEMORY
    headers = _headers(access_key, "", _length(size))
    body = b"".join(_multipart(size))
    md5 = aksk.content_md5(body)
    message = aksk.string_to_sign(
        "POST", md5, headers["content-type"], headers["date"], "testserver", {}, UPLOAD
    )
    headers["authorization"] += aksk.sign(secret, message)
    r = client.post(UPLOAD, headers=headers, content=body)
    # Past authentication, the route read the whole multipart body (a cut one would be 1003)
    # and found its file is no RPM.
    assert r.status_code == 400 and r.json()["error"]["code"] == 7506, r.text
