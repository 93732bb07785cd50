"""The client's AK/SK signature is OCP's: the worked examples of
ocp-docs/api-4.2/300.ak-sk-sign-roles.md, and the Java sample's canonical query (a key's
values sorted, joined with ',', and the joined value URL-encoded) and x-ocp headers (keys as
sent, values joined in the order sent)."""

from __future__ import annotations

import httpx

from obfleet.client import signing

SK = "2fc0c299cc94c6be266f2ceece765d4d"


def test_worked_example_1_post_with_body_and_x_ocp_header() -> None:
    body = b'{"name":"test01","description":"test","regionId":1}'
    md5 = signing.content_md5(body)
    assert md5 == "186974DB33A090A16D3E2CA35F547B56"
    message = signing.message(
        "POST",
        md5,
        "application/json",
        "Tue, 17 Jan 2023 09:13:57 GMT",
        "ocp.alibaba.net:8080",
        [("x-ocp-data", "A,1")],
        "/api/v2/compute/idcs",
    )
    assert signing.signature(SK, message) == "XN8P+O+v3vUabB16ZCooq5wMJoY="


def test_worked_example_2_get_with_query() -> None:
    message = signing.message(
        "GET",
        signing.content_md5(b""),
        "application/json;charset=utf-8",
        "Tue, 17 Jan 2023 04:14:02 GMT",
        "ocp.alibaba.net:8080",
        [],
        "/api/v2/compute/idcs",
        [("size", "100")],
    )
    assert message.endswith("\n\n/api/v2/compute/idcs?size=100")
    assert signing.signature(SK, message) == "TsQD6HDOuZuJ409m0wdnZPmijlc="


def test_query_as_the_java_sample_builds_it() -> None:
    query = [("status", "RUNNING"), ("b", "x y"), ("status", "FAILED"), ("a", ""), ("k", "é")]
    assert signing.canonical_query(query) == "?a=&b=x%20y&k=%C3%A9&status=FAILED%2CRUNNING"
    assert signing.canonical_query([]) == ""


def test_x_ocp_headers_keep_their_keys_and_order_of_values() -> None:
    headers = [("X-Ocp-B", "2"), ("x-ocp-a", "Z"), ("x-ocp-a", "A"), ("Accept", "x")]
    assert signing.ocp_headers(headers) == "X-Ocp-B:2\nx-ocp-a:Z,A"


def test_auth_signs_what_is_sent() -> None:
    """The Authorization header httpx sends is the signature of the request as sent: Host,
    path, query, body MD5 and Content-Type taken from the request itself."""
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"data": None, "successful": True})

    auth = signing.AccessKeyAuth("AK1", SK)
    with httpx.Client(transport=httpx.MockTransport(answer), auth=auth) as http:
        http.post("http://h:8080/api/v2/x?b=2&a=1&a=0", json={"k": 1})
    (request,) = seen
    expected = signing.message(
        "POST",
        signing.content_md5(request.content),
        "application/json",
        request.headers["Date"],
        "h:8080",
        [],
        "/api/v2/x",
        [("a", "0"), ("a", "1"), ("b", "2")],
    )
    assert "?a=0%2C1&b=2" in expected
    assert request.headers["Authorization"] == signing.authorization("AK1", SK, expected)
