"""The console's login session: a cookie the API also accepts, with a CSRF token for every call.

The cookie holds who logged in (name and user id), until when, the user's session epoch at
login, and a random CSRF token, encrypted and authenticated with the secret box (Fernet), so
every replica sharing the key reads it and nobody can forge or read it. The cookie is believed
only while the user's row still has that id and epoch: logout moves the epoch on, which ends
the session on the server, not only in the browser that logged out (and a user deleted and
made again under the same name gets a new id, so the old one's cookies stay dead).

A request carrying the cookie is believed only with the same CSRF token in the X-CSRF-Token
header (or, for the console's own forms, a `csrf` field): another site can make a browser send
the cookie, but cannot read the token to send with it.
"""

from __future__ import annotations

import hmac
import json
import secrets
import time
from dataclasses import dataclass

from obfleet.security.secrets import SecretBox, SecretBoxError

COOKIE = "obfleet_session"
CSRF_HEADER = "X-CSRF-Token"
# A console login lasts this long; the user logs in again after it.
SESSION_SECONDS = 8 * 3600


@dataclass(frozen=True)
class ConsoleSession:
    username: str
    user_id: int
    epoch: int
    csrf: str
    expires_at: float

    def seal(self, box: SecretBox) -> str:
        payload = {
            "u": self.username,
            "i": self.user_id,
            "n": self.epoch,
            "c": self.csrf,
            "e": self.expires_at,
        }
        return box.encrypt(json.dumps(payload))

    def accepts(self, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf, token or "")

    def is_current(self, user_id: int, epoch: int) -> bool:
        """Whether the user's row (its id and session epoch, as read now) still holds it."""
        return (self.user_id, self.epoch) == (user_id, epoch)


def new_session(
    username: str, user_id: int, epoch: int, now: float | None = None
) -> ConsoleSession:
    start = time.time() if now is None else now
    return ConsoleSession(
        username, user_id, epoch, secrets.token_urlsafe(24), start + SESSION_SECONDS
    )


def open_session(box: SecretBox, cookie: str | None) -> ConsoleSession | None:
    """The session a cookie holds while it has not expired, else None (also for a forged or
    garbled cookie, or one made before sessions had epochs). Whether logout ended it is the
    caller's to check, against the user's row (`is_current`)."""
    if not cookie:
        return None
    try:
        payload = json.loads(box.decrypt(cookie))
        session = ConsoleSession(
            str(payload["u"]),
            int(payload["i"]),
            int(payload["n"]),
            str(payload["c"]),
            float(payload["e"]),
        )
    except (SecretBoxError, ValueError, KeyError, TypeError):
        return None
    return session if session.expires_at > time.time() else None
