"""HTTP Basic and OCP 4.2's AK/SK signature."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from obfleet.security import aksk
from obfleet.services.users import create_access_key, create_user
from tests.conftest import ADMIN, basic

DOC_AK, DOC_SK = "cqammmxBpfGjFlto", "2fc0c299cc94c6be266f2ceece765d4d"


def test_doc_example_1_signature():
    message = aksk.string_to_sign(
        "POST",
        aksk.content_md5(b'{"name":"test01","description":"test","regionId":1}'),
        "application/json",
        "Tue, 17 Jan 2023 09:13:57 GMT",
        "ocp.alibaba.net:8080",
        {"x-ocp-data": "A,1"},
        "/api/v2/compute/idcs",
    )
    assert (
        aksk.content_md5(b'{"name":"test01","description":"test","regionId":1}')
        == "186974DB33A090A16D3E2CA35F547B56"
    )
    assert aksk.sign(DOC_SK, message) == "XN8P+O+v3vUabB16ZCooq5wMJoY="


def test_doc_example_2_signature_with_query():
    message = aksk.string_to_sign(
        "GET",
        "",
        "application/json;charset=utf-8",
        "Tue, 17 Jan 2023 04:14:02 GMT",
        "ocp.alibaba.net:8080",
        {},
        "/api/v2/compute/idcs",
        [("size", "100")],
    )
    assert aksk.sign(DOC_SK, message) == "TsQD6HDOuZuJ409m0wdnZPmijlc="


def test_doc_example_1_with_the_sample_codes_header_list():
    """The Java sample puts x-ocp-data = ["A", "1"]: values joined in the order sent, not
    sorted (sorted, the message would say 1,A and the signature differ)."""
    body = b'{"name":"test01","description":"test","regionId":1}'
    message = aksk.string_to_sign(
        "POST",
        aksk.content_md5(body),
        "application/json",
        "Tue, 17 Jan 2023 09:13:57 GMT",
        "ocp.alibaba.net:8080",
        [("x-ocp-data", "A"), ("x-ocp-data", "1")],
        "/api/v2/compute/idcs",
    )
    assert aksk.sign(DOC_SK, message) == "XN8P+O+v3vUabB16ZCooq5wMJoY="


def test_query_sorted_and_multi_values_joined_then_encoded():
    """The sample's buildUrlAndParam encodes the joined value: the comma is %2C."""
    message = aksk.string_to_sign(
        "GET",
        "",
        "",
        "d",
        "h",
        {},
        "/p",
        [("b", "2"), ("a", "3"), ("a", "1"), ("c", "x y"), ("d", ""), ("d", "z")],
    )
    assert message.endswith("/p?a=1%2C3&b=2&c=x%20y&d=z")


def _signed_literally(ak: str, sk: str, message: str, date: str) -> dict[str, str]:
    """Headers signing `message`, built by hand as OCP's sample code builds it (not by
    aksk.string_to_sign, so a canonicalization that differs from the sample fails)."""
    digest = hmac.new(sk.encode(), message.encode(), hashlib.sha1).digest()
    signature = base64.b64encode(digest).decode()
    return {"date": date, "authorization": f"{aksk.SCHEME} {ak}:{signature}"}


def test_aksk_multi_valued_query_signed_as_the_sample_does(client):
    ak, sk = _make_key(client)
    date = format_datetime(datetime.now(UTC), usegmt=True)
    message = f"GET\n\n\n{date}\ntestserver\n\n/api/v2/ob/clusters?status=RUNNING%2CUNKNOWN"
    headers = _signed_literally(ak, sk, message, date)
    r = client.get("/api/v2/ob/clusters?status=UNKNOWN&status=RUNNING", headers=headers)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    "key", ["X-OCP-Request-Origin", "X-Ocp-Request-Origin", "x-ocp-request-origin"]
)
def test_aksk_x_ocp_header_signed_with_its_key_as_sent(client, key):
    ak, sk = _make_key(client)
    date = format_datetime(datetime.now(UTC), usegmt=True)
    message = f"GET\n\n\n{date}\ntestserver\n{key}:cli\n/api/v2/ob/clusters"
    headers = {**_signed_literally(ak, sk, message, date), key: "cli"}
    r = client.get("/api/v2/ob/clusters", headers=headers)
    assert r.status_code == 200, r.text
    # The header's value is signed: another value is refused.
    r = client.get("/api/v2/ob/clusters", headers={**headers, key: "other"})
    assert r.status_code == 401, r.text


def _signed(
    client,
    ak: str,
    sk: str,
    method: str,
    path: str,
    *,
    date: datetime,
    query: list[tuple[str, str]] = (),
    body: bytes = b"",
) -> dict[str, str]:
    date_text = format_datetime(date, usegmt=True)
    headers = {
        "content-type": "application/json",
        "date": date_text,
        "x-ocp-origin": "test",
        "host": "testserver",
    }
    message = aksk.string_to_sign(
        method,
        aksk.content_md5(body),
        "application/json",
        date_text,
        "testserver",
        {"x-ocp-origin": "test"},
        path,
        query,
    )
    headers["authorization"] = f"{aksk.SCHEME} {ak}:{aksk.sign(sk, message)}"
    return headers


def _make_key(client) -> tuple[str, str]:
    ctx = client.app.state.ctx
    with ctx.db.transaction() as session:
        create_user(session, "robot", "Robot_Pass_12", ["CLUSTER_VIEWER"])
        return create_access_key(session, ctx.secrets, "robot")


def test_aksk_request_accepted(client):
    ak, sk = _make_key(client)
    now = datetime.now(UTC)
    headers = _signed(
        client, ak, sk, "GET", "/api/v2/ob/clusters", date=now, query=[("page", "1"), ("size", "5")]
    )
    r = client.get("/api/v2/ob/clusters?size=5&page=1", headers=headers)
    assert r.status_code == 200, r.text


def test_aksk_post_signs_body(client):
    ak, sk = _make_key(client)
    body = b'{"name":"x"}'
    headers = _signed(
        client, ak, sk, "POST", "/api/v2/ob/clusters/import", date=datetime.now(UTC), body=body
    )
    # Signature valid, robot is only a viewer: authenticated, then forbidden.
    assert (
        client.post("/api/v2/ob/clusters/import", headers=headers, content=body).status_code == 403
    )
    tampered = client.post("/api/v2/ob/clusters/import", headers=headers, content=b'{"name":"y"}')
    assert tampered.status_code == 401


def test_aksk_stale_date_rejected(client):
    ak, sk = _make_key(client)
    stale = datetime.now(UTC) - timedelta(minutes=16)
    r = client.get(
        "/api/v2/ob/clusters",
        headers=_signed(client, ak, sk, "GET", "/api/v2/ob/clusters", date=stale),
    )
    assert r.status_code == 401
    assert "Date" in r.json()["error"]["message"]


def test_aksk_wrong_secret_and_unknown_key(client):
    ak, _ = _make_key(client)
    now = datetime.now(UTC)
    wrong = _signed(client, ak, "0" * 32, "GET", "/api/v2/ob/clusters", date=now)
    assert client.get("/api/v2/ob/clusters", headers=wrong).status_code == 401
    unknown = _signed(client, "nokey", "0" * 32, "GET", "/api/v2/ob/clusters", date=now)
    assert client.get("/api/v2/ob/clusters", headers=unknown).status_code == 401


def test_access_key_secret_encrypted_at_rest(client):
    _, sk = _make_key(client)
    with client.app.state.ctx.db.engine.connect() as conn:
        from sqlalchemy import text

        stored = conn.execute(text("SELECT secret_encrypted FROM iam_access_key")).scalar_one()
    assert sk not in stored


def test_basic_password_change_invalidates_cached_login(client):
    from obfleet.services.users import set_password

    assert client.get("/api/v2/ob/clusters", headers=ADMIN).status_code == 200
    with client.app.state.ctx.db.transaction() as session:
        set_password(session, "admin", "Another_Pass_22")
    assert client.get("/api/v2/ob/clusters", headers=ADMIN).status_code == 401
    assert (
        client.get("/api/v2/ob/clusters", headers=basic("admin", "Another_Pass_22")).status_code
        == 200
    )


def test_password_hashed_with_argon2(client):
    from sqlalchemy import text

    with client.app.state.ctx.db.engine.connect() as conn:
        stored = conn.execute(text("SELECT password_hash FROM iam_user")).scalar_one()
    assert stored.startswith("$argon2")


# The upload route declares no body, so FastAPI runs its auth dependency before anything reads
# the body: what auth reads is all that is read. (A route with a JSON body parameter has FastAPI
# read the body before its dependencies run.)
UPLOAD = "/api/v2/software-packages"


class _Body:
    """A request body that records whether anyone read it."""

    def __init__(self, data: bytes = b"--x--") -> None:
        self.data = data
        self.consumed = False

    def __iter__(self):
        self.consumed = True
        yield self.data


def _signed_upload(client, body: bytes) -> dict[str, str]:
    ak, sk = _make_key(client)
    return _signed(client, ak, sk, "POST", UPLOAD, date=datetime.now(UTC), body=body)


def test_aksk_body_over_upload_limit_refused_unread(client):
    body = _Body()
    headers = _signed_upload(client, body.data)
    # The header claims a body far over the limit; the (small) body itself is never read.
    headers["content-length"] = str(10 * 1024**4)
    r = client.post(UPLOAD, headers=headers, content=body)
    assert r.request.headers["content-length"] == str(10 * 1024**4)
    assert r.status_code == 413, r.text
    limit = client.app.state.ctx.settings.max_upload_bytes
    assert r.json()["error"]["code"] == 1119 and str(limit) in r.json()["error"]["message"]
    assert not body.consumed


def test_aksk_chunked_body_refused_unread(client):
    body = _Body()
    r = client.post(UPLOAD, headers=_signed_upload(client, body.data), content=body)
    assert r.request.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in r.request.headers
    assert r.status_code == 411, r.text
    assert r.json()["status"] == 411 and r.json()["error"]["code"] == 1003
    assert "Content-Length" in r.json()["error"]["message"]
    assert not body.consumed


def test_aksk_body_within_limit_read_and_signed(client):
    body = b"--x--"
    headers = _signed_upload(client, body)
    # Signature valid, robot is only a viewer: authenticated (body read and signed), forbidden.
    assert client.post(UPLOAD, headers=headers, content=body).status_code == 403
    assert client.post(UPLOAD, headers=headers, content=b"--y--").status_code == 401


def test_an_unknown_or_disabled_user_costs_a_password_check_like_a_wrong_password(
    client, monkeypatch
):
    """Refusing an unknown username at once, and a wrong password only after argon2, would let
    response times tell which usernames exist."""
    from obfleet.security import passwords

    checked: list[str] = []
    real = passwords.verify_password

    def counting(password_hash: str, password: str) -> bool:
        checked.append(password)
        return real(password_hash, password)

    monkeypatch.setattr(passwords, "verify_password", counting)
    monkeypatch.setattr("obfleet.services.users.verify_password", counting)
    with client.app.state.ctx.db.transaction() as session:
        create_user(session, "ops", "Ops_Pass_12", ["ADMIN"]).enabled = False
    for username, password in (("admin", "wrong-1"), ("nobody", "wrong-2"), ("ops", "Ops_Pass_12")):
        r = client.get("/api/v2/ob/clusters", headers=basic(username, password))
        assert r.status_code == 401
    assert checked == ["wrong-1", "wrong-2", "Ops_Pass_12"]
