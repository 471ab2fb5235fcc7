"""Cross-site request forgery tokens for the console's forms.

Every form the console serves carries a ``csrf`` field, and every POST is refused (403, nothing
done) unless the field is the one expected:

- signed in, it is an HMAC-SHA256 of the session's secret (the secret itself never leaves the
  HttpOnly cookie), so it changes with each session and needs no storage;
- on the sign-in form, before any session exists, it is a double submit: a random value in a
  short-lived HttpOnly cookie of its own and the same value in the form.

The session cookie is also ``SameSite=Strict``: a browser sends it on no request another site
starts, which already stops a forged form; the token keeps that true for browsers that ignore
SameSite (OWASP CSRF Prevention Cheat Sheet: "defense in depth").
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = ["LOGIN_COOKIE", "login_token", "matches", "session_token"]

LOGIN_COOKIE = "seatgate_login_csrf"
_PURPOSE = b"seatgate console csrf v1"


def session_token(session_secret: str) -> str:
    """The CSRF token of a session (hex, 64 characters)."""
    return hmac.new(session_secret.encode(), _PURPOSE, hashlib.sha256).hexdigest()


def login_token() -> str:
    """A fresh value for the sign-in form's double submit."""
    return secrets.token_urlsafe(32)


def matches(sent: str | None, expected: str | None) -> bool:
    """Constant-time comparison; a missing value never matches."""
    if not sent or not expected:
        return False
    return hmac.compare_digest(sent.encode(), expected.encode())
