"""OCP 4.2's AK/SK request signature (ocp-docs/api-4.2/300.ak-sk-sign-roles.md).

Authorization: OCP-ACCESS-KEY-HMACSHA1 {AK}:{Base64(HMAC-SHA1(SK, message))}, where message is
METHOD, Content-MD5, Content-Type, Date, Host, the x-ocp-* headers and the URI with its sorted
query, joined by newlines. The Date must be within 15 minutes of the server clock.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping
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


def _ocp_headers(headers: Mapping[str, str]) -> str:
    picked: dict[str, list[str]] = {}
    for key, value in headers.items():
        if key.lower().startswith("x-ocp-"):
            picked.setdefault(key.lower(), []).append(value.strip())
    return "\n".join(f"{k}:{','.join(sorted(v))}" for k, v in sorted(picked.items()))


def _canonical_query(params: Iterable[tuple[str, str]]) -> str:
    grouped: dict[str, list[str]] = {}
    for key, value in params:
        grouped.setdefault(key, []).append(value)
    if not grouped:
        return ""
    parts = [
        f"{quote(k, safe='-_.~')}={','.join(quote(v, safe='-_.~') for v in sorted(vs))}"
        for k, vs in sorted(grouped.items())
    ]
    return "?" + "&".join(parts)


def string_to_sign(
    method: str,
    body_md5: str,
    content_type: str,
    date: str,
    host: str,
    headers: Mapping[str, str],
    path: str,
    query: Iterable[tuple[str, str]] = (),
) -> str:
    return "\n".join(
        [
            method.upper(),
            body_md5,
            content_type,
            date,
            host,
            _ocp_headers(headers),
            path + _canonical_query(query),
        ]
    )


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
