"""Who may decode: a bearer token, or a browser session cookie bought with one.

The Web UI of ``make run`` has no login, so it holds no access token to pass
(``passAccessToken`` also demands HTTPS). What a browser *can* do is send cookies
with the UI's "Include cross-origin credentials" setting. So an operator presents a
token once at ``/login``; the answer sets ``codec_session``, an HttpOnly,
SameSite=Strict cookie holding an expiry, a nonce and an HMAC of both keyed by that
token. The cookie never contains the token, it dies with its expiry, and removing a
token from the configuration ends every session it opened.

Every comparison runs over all configured tokens with ``hmac.compare_digest`` and
no early exit, on SHA-256 digests so the lengths compared are equal.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Sequence

from pydantic import SecretStr

SESSION_COOKIE = "codec_session"
_SESSION_CONTEXT = b"cancellation-orchestrator codec session v1"


class Credentials:
    def __init__(
        self,
        tokens: Sequence[SecretStr],
        session_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._tokens = [token.get_secret_value().encode() for token in tokens]
        self._digests = [hashlib.sha256(token).digest() for token in self._tokens]
        self._session_seconds = session_seconds
        self._clock = clock

    def _token_index(self, presented: str) -> int | None:
        digest = hashlib.sha256(presented.encode()).digest()
        found: int | None = None
        for index, known in enumerate(self._digests):
            if hmac.compare_digest(digest, known) and found is None:
                found = index
        return found

    def token_ok(self, presented: str) -> bool:
        return self._token_index(presented) is not None

    def bearer_ok(self, authorization: str | None) -> bool:
        """``Authorization: Bearer <token>`` with a configured token."""
        if not authorization:
            return False
        scheme, _, token = authorization.partition(" ")
        return scheme.lower() == "bearer" and self.token_ok(token.strip())

    def open_session(self, presented: str) -> tuple[str, int] | None:
        """A cookie value and its lifetime in seconds, for a configured token; else None."""
        index = self._token_index(presented)
        if index is None:
            return None
        expires = int(self._clock() + self._session_seconds)
        nonce = secrets.token_urlsafe(12)
        mac = self._mac(self._tokens[index], expires, nonce)
        return f"{expires}.{nonce}.{mac}", int(self._session_seconds)

    def session_ok(self, cookie: str | None) -> bool:
        """A cookie from :meth:`open_session`, unexpired, whose token is still configured."""
        if not cookie:
            return False
        parts = cookie.split(".")
        if len(parts) != 3 or not parts[0].isdigit():
            return False
        expires, nonce, mac = int(parts[0]), parts[1], parts[2]
        if expires <= self._clock():
            return False
        valid = False
        for token in self._tokens:
            valid |= hmac.compare_digest(self._mac(token, expires, nonce), mac)
        return valid

    @staticmethod
    def _mac(token: bytes, expires: int, nonce: str) -> str:
        message = b"%s|%d|%s" % (_SESSION_CONTEXT, expires, nonce.encode())
        return hmac.new(token, message, hashlib.sha256).hexdigest()
