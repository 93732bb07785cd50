"""OCP 4.2's AK/SK request signature (ocp-docs/api-4.2/300.ak-sk-sign-roles.md).

Authorization: OCP-ACCESS-KEY-HMACSHA1 {AK}:{Base64(HMAC-SHA1(SK, message))}, where message is
METHOD, Content-MD5, Content-Type, Date, Host, the x-ocp-* headers and the URI with its sorted
query, joined by newlines. The Date must be within 15 minutes of the server clock. Where the
page's table and its Java sample code differ, obfleet follows the sample code (which is what OCP's
SDK runs, and which produces the page's worked examples): header keys as sent and their values
in the order sent; a query key's values sorted, joined by commas and encoded as one value.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import quote

SCHEME = "OCP-ACCESS-KEY-HMACSHA1"
MAX_SKEW = timedelta(minutes=15)


def content_md5(body: bytes) -> str:
    return content_md5_of(hashlib.md5(body, usedforsecurity=False), len(body))


def content_md5_of(digest: hashlib._Hash, size: int) -> str:
    """The Content-MD5 line of a body of `size` bytes whose MD5 is `digest` (read in chunks)."""
    return digest.hexdigest().upper() if size else ""


# The x-ocp headers OCP's sample signs: their key starts with "x-ocp" in any case.
OCP_HEADER_PREFIX = "x-ocp"


def _encode(text: str) -> str:
    """RFC 3986 percent-encoding of UTF-8, as the sample's `encoder`: all but A-Z a-z 0-9 - . _ ~
    (so a space is %20 and a comma %2C)."""
    return quote(text, safe="-_.~")


def _ocp_headers(headers: Iterable[tuple[str, str]]) -> str:
    """The sample's buildXOcpHeader: each key as sent, sorted; its values in the order sent,
    joined by commas."""
    picked: dict[str, list[str]] = {}
    for key, value in headers:
        if key.lower().startswith(OCP_HEADER_PREFIX):
            picked.setdefault(key, []).append(value.strip())
    return "\n".join(f"{k}:{','.join(v)}" for k, v in sorted(picked.items()))


def _canonical_query(params: Iterable[tuple[str, str]]) -> str:
    """The sample's buildUrlAndParam: keys sorted; a key's non-empty values sorted and joined
    by commas, the joined value encoded as a whole (a=2&a=1 -> a=1%2C2)."""
    grouped: dict[str, list[str]] = {}
    for key, value in params:
        grouped.setdefault(key, []).append(value)
    if not grouped:
        return ""
    parts = [
        f"{_encode(key)}={_encode(','.join(sorted(v for v in values if v)))}"
        for key, values in sorted(grouped.items())
    ]
    return "?" + "&".join(parts)


def string_to_sign(
    method: str,
    body_md5: str,
    content_type: str,
    date: str,
    host: str,
    headers: Mapping[str, str] | Iterable[tuple[str, str]],
    path: str,
    query: Iterable[tuple[str, str]] = (),
) -> str:
    """The message a client signs; `headers` as it sends them (a repeated header as pairs)."""
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    return "\n".join(
        [
            method.upper(),
            body_md5,
            content_type,
            date,
            host,
            _ocp_headers(pairs),
            path + _canonical_query(query),
        ]
    )


# The sample signs header keys as the client spelt them, but an ASGI server hands them over in
# lower case. A client spells its x-ocp headers one way; these are the ways clients spell them:
# x-ocp-data (the docs' own), X-Ocp-Data, X-OCP-Data, X-OCP-data, X-OCP-DATA. Each is a
# (spelling of "x-ocp", spelling of the rest's words) pair.
_SPELLINGS: tuple[tuple[Callable[[str], str], Callable[[str], str]], ...] = (
    (str.lower, str.lower),
    (str.capitalize, str.capitalize),
    (str.upper, str.capitalize),
    (str.upper, str.lower),
    (str.upper, str.upper),
)


def _spelt(key: str, head: Callable[[str], str], rest: Callable[[str], str]) -> str:
    words = key.split("-")
    return "-".join([head(w) for w in words[:2]] + [rest(w) for w in words[2:]])


def received_messages(
    method: str,
    body_md5: str,
    content_type: str,
    date: str,
    host: str,
    headers: Iterable[tuple[str, str]],
    path: str,
    query: Iterable[tuple[str, str]] = (),
) -> list[str]:
    """The messages a received request may have been signed as: one per spelling of its x-ocp
    header keys (`headers` as the server got them, keys in lower case)."""
    pairs, params = list(headers), list(query)
    messages: list[str] = []
    for head, rest in _SPELLINGS:
        spelt = [(_spelt(k, head, rest), v) for k, v in pairs]
        message = string_to_sign(method, body_md5, content_type, date, host, spelt, path, params)
        if message not in messages:
            messages.append(message)
    return messages


def sign(secret: str, message: str) -> str:
    digest = hmac.new(secret.encode(), message.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def parse_authorization(value: str) -> tuple[str, str] | None:
    scheme, _, rest = value.partition(" ")
    if scheme != SCHEME or ":" not in rest:
        return None
    access_key, _, signature = rest.strip().partition(":")
    return access_key, signature


def date_is_fresh(date: str, now: datetime) -> bool:
    try:
        sent = parsedate_to_datetime(date)
    except (TypeError, ValueError):
        return False
    return sent.tzinfo is not None and abs(now - sent) <= MAX_SKEW


def signature_matches(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode(), given.encode())


def signed_by(secret: str, messages: Iterable[str], given: str) -> bool:
    """Whether `given` is the signature of one of `messages` (each compared in full)."""
    return any([signature_matches(sign(secret, m), given) for m in messages])
