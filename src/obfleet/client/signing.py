"""The client side of OCP 4.2's AK/SK request signature, exactly as OCP's Java sample code
builds it (ocp-docs/api-4.2/300.ak-sk-sign-roles.md):

    message = METHOD \n Content-MD5 \n Content-Type \n Date \n Host \n x-ocp-headers \n uri+query
    Authorization: OCP-ACCESS-KEY-HMACSHA1 {AK}:{Base64(HMAC-SHA1(SK, message))}

Query parameters: sorted by key; a key's non-empty values sorted and joined with ',', and the
joined value URL-encoded (RFC 3986). x-ocp-* headers: keys as sent, sorted, values joined with
','. The client cannot import the server's security/aksk.py, so this is its own copy of the rule.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Generator, Iterable, Sequence
from email.utils import formatdate
from urllib.parse import parse_qsl, quote

import httpx

SCHEME = "OCP-ACCESS-KEY-HMACSHA1"
# A request whose body is streamed (a package upload) carries its body's MD5 here, computed
# beforehand, so the body need not be held in memory to be signed.
BODY_MD5 = "obfleet_body_md5"


def content_md5(body: bytes) -> str:
    return hashlib.md5(body, usedforsecurity=False).hexdigest().upper() if body else ""


def encode(value: str) -> str:
    """RFC 3986 percent-encoding: only letters, digits and '-._~' stay as they are."""
    return quote(value, safe="-._~")


def canonical_query(params: Iterable[tuple[str, str]]) -> str:
    grouped: dict[str, list[str]] = {}
    for key, value in params:
        grouped.setdefault(key, []).append(value)
    if not grouped:
        return ""
    pairs = (
        f"{encode(key)}={encode(','.join(sorted(v for v in values if v)))}"
        for key, values in sorted(grouped.items())
    )
    return "?" + "&".join(pairs)


def ocp_headers(headers: Sequence[tuple[str, str]]) -> str:
    grouped: dict[str, list[str]] = {}
    for key, value in headers:
        if key.lower().startswith("x-ocp"):
            grouped.setdefault(key, []).append(value)
    return "\n".join(f"{key}:{','.join(values)}" for key, values in sorted(grouped.items()))


def message(
    method: str,
    body_md5: str,
    content_type: str,
    date: str,
    host: str,
    headers: Sequence[tuple[str, str]],
    path: str,
    query: Iterable[tuple[str, str]] = (),
) -> str:
    parts = [method.upper(), body_md5, content_type, date, host, ocp_headers(headers)]
    return "\n".join([*parts, path + canonical_query(query)])


def signature(secret: str, text: str) -> str:
    digest = hmac.new(secret.encode(), text.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


class AccessKeyAuth(httpx.Auth):
    """Signs every request with an access key; the Date header is set to now."""

    def __init__(self, access_key_id: str, secret: str) -> None:
        self.access_key_id = access_key_id
        self.secret = secret

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        body_md5 = request.extensions.get(BODY_MD5)
        if body_md5 is None:
            body_md5 = content_md5(request.read())
        request.headers["Date"] = formatdate(usegmt=True)
        text = message(
            request.method,
            body_md5,
            request.headers.get("content-type", ""),
            request.headers["Date"],
            request.headers.get("host", ""),
            [(key.decode(), value.decode()) for key, value in request.headers.raw],
            request.url.path,
            parse_qsl(request.url.query.decode(), keep_blank_values=True),
        )
        request.headers["Authorization"] = authorization(self.access_key_id, self.secret, text)
        yield request


def authorization(access_key_id: str, secret: str, text: str) -> str:
    return f"{SCHEME} {access_key_id}:{signature(secret, text)}"
