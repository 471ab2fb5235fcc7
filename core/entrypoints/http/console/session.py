"""Signing in to the console with an admin token, and the session that follows.

Signing in trades the admin token the person pasted for a *session token* of its own: an admin
token of the same account and actor, made by :meth:`TokenService.create
<seatgate.core.services.tokens.TokenService.create>` (so it is stored as a SHA-256 digest, listed
by ``seatgate token list`` and revocable like any other), whose secret lives only in the session
cookie. The pasted token is never stored, logged or put in a cookie; every request reads the
session token back through :meth:`TokenService.authenticate`, and signing out revokes it, which
ends the session everywhere at once (every server process, every copy of the cookie). The session
token names the pasted token as its parent: revoking that token (``seatgate token revoke``) revokes
its sessions too, and a session whose parent is revoked is refused.

The cookie is ``HttpOnly`` (no script reads it), ``SameSite=Strict`` (no other site's request
carries it) and ``Secure`` unless the console is served on a loopback address (a browser refuses
to send a Secure cookie over plain HTTP, which is all 127.0.0.1 usually has). The actor of every
action taken in the console is the token's actor, as with the HTTP API.
"""

from __future__ import annotations

import ipaddress

from starlette.requests import Request
from starlette.responses import Response

from ....bootstrap import App
from ....errors import BadInput
from ....services.tokens import Principal, Role
from . import csrf

__all__ = ["COOKIE", "SESSION_SECONDS", "Session", "SignInRefused", "cookie_secure", "current"]

COOKIE = "seatgate_session"
SESSION_SECONDS = 8 * 3600  # the cookie's Max-Age: a working day
CREATED_BY = "console sign-in"


class SignInRefused(Exception):
    """The token given at sign-in is not an admin token of a live account (one line, never the
    token's value)."""


class Session:
    """A signed-in console session: who (``principal``) and the form token (``csrf``)."""

    def __init__(self, principal: Principal, secret: str) -> None:
        self.principal = principal
        self._secret = secret
        self.csrf = csrf.session_token(secret)

    def __repr__(self) -> str:
        return f"Session(account={self.principal.account!r}, actor={self.principal.actor!r})"

    @property
    def account(self) -> str:
        return self.principal.account

    @property
    def actor(self) -> str | None:
        return self.principal.actor


def sign_in(core: App, token: str) -> tuple[Principal, str]:
    """Check ``token`` and make the session token; returns the session's principal and the
    secret for the cookie. Raises :class:`SignInRefused`."""
    found = core.tokens.authenticate(token.strip())
    if found is None:
        raise SignInRefused("unknown or revoked token: paste an admin token of your account")
    if found.role != Role.ADMIN:
        raise SignInRefused(
            f"this is a {found.role} token: the console needs an admin token "
            "(made by `seatgate token create ACCOUNT --role admin`)"
        )
    try:
        issued = core.tokens.create(
            found.account,
            Role.ADMIN,
            found.actor,
            created_by=f"{CREATED_BY} ({found.token_id})",
            parent=found.token_id,  # revoking the pasted token ends the session
        )
    except BadInput as exc:  # the pasted token was revoked in between
        raise SignInRefused(
            "unknown or revoked token: paste an admin token of your account"
        ) from exc
    principal = Principal(
        issued.info.id, found.account, Role.ADMIN, found.actor, issued.info.created_at
    )
    return principal, issued.secret


def current(core: App, request: Request) -> Session | None:
    """The session of the request's cookie, or None (no cookie, a revoked session token, or one
    older than :data:`SESSION_SECONDS` by the injected clock — which is then revoked: the
    cookie's Max-Age alone would leave a copied cookie working)."""
    secret = request.cookies.get(COOKIE)
    if not secret:
        return None
    found = core.tokens.authenticate(secret)
    if found is None or found.role != Role.ADMIN:
        return None
    made = found.created_at
    if made is not None and (core.now() - made).total_seconds() > SESSION_SECONDS:
        core.tokens.revoke(found.token_id, by="console session expiry")
        return None
    return Session(found, secret)


def sign_out(core: App, session: Session) -> None:
    """Revoke the session token: the session ends wherever its cookie is."""
    core.tokens.revoke(session.principal.token_id, by=session.actor)


def cookie_secure(request: Request) -> bool:
    """Secure everywhere but on a loopback address (127.0.0.0/8, ::1, localhost)."""
    host = request.url.hostname or ""
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True


def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=cookie_secure(request),
    )


def clear_cookie(response: Response, request: Request, name: str) -> None:
    response.delete_cookie(
        name, path="/", httponly=True, samesite="strict", secure=cookie_secure(request)
    )
