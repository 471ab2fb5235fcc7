"""Install links (seed 002, "Buying through a Signed Order Form and Installing on Marketplace":
"Install the App through the AppConnect Marketplace or an Install Link sent to you via an email
notification"), pure: the token, its signature, and the state of a link at an instant.

A token is ``sgl_<link id>.<signature>``: the link's random id (128 bits, hex) and the
URL-safe base64 HMAC-SHA256 of it under a key derived from the server secret. The signature
proves seatgate made the link; the link's row (account, product, contract, expiry, use,
revocation) decides whether it may be used. Neither the token nor the key is stored: the token is
computed again from the id when the e-mail is sent, so the database alone opens nothing.
"""

from __future__ import annotations

import base64
import datetime as dt
import hmac
import re
from collections.abc import Callable

from ..errors import BadInput

__all__ = [
    "DEFAULT_DAYS",
    "MAX_DAYS",
    "PREFIX",
    "SIGNING_PURPOSE",
    "LinkState",
    "link_id_of",
    "link_state",
    "token_for",
]

PREFIX = "sgl_"
SIGNING_PURPOSE = "install-link"
DEFAULT_DAYS = 14
MAX_DAYS = 90

_TOKEN = re.compile(r"^sgl_([0-9a-f]{32})\.([A-Za-z0-9_-]{43})$")

Signer = Callable[[str, bytes], bytes]  # (purpose, data) -> HMAC-SHA256 under the server secret


def _mac(sign: Signer, link_id: str) -> str:
    raw = sign(SIGNING_PURPOSE, link_id.encode())
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def token_for(sign: Signer, link_id: str) -> str:
    """The token of link ``link_id``."""
    return f"{PREFIX}{link_id}.{_mac(sign, link_id)}"


def link_id_of(sign: Signer, token: str) -> str:
    """The id of the link ``token`` names, once its signature is checked (in constant time).

    Raises :class:`BadInput` (field ``token``; the value is never echoed) for anything that is not
    a link this seatgate signed: malformed, altered, or signed with another server secret."""
    match = _TOKEN.match(token.strip())
    if match is None or not hmac.compare_digest(match[2], _mac(sign, match[1])):
        raise BadInput(
            "token",
            "***",
            "an install link made by this seatgate (this one is malformed, altered or signed by "
            "another server)",
            remedy="new_install_link",
        )
    return match[1]


class LinkState:
    """What a link is at an instant."""

    ACTIVE = "active"
    USED = "used"
    REVOKED = "revoked"
    EXPIRED = "expired"


def link_state(
    at: dt.datetime,
    expires_at: dt.datetime,
    used_at: dt.datetime | None,
    revoked_at: dt.datetime | None,
) -> str:
    """Used, revoked (whichever came first) and expired win over active, as of ``at``: a link is
    usable once, until it expires (``at`` < ``expires_at``), unless revoked."""
    if used_at is not None and used_at <= at and (revoked_at is None or used_at <= revoked_at):
        return LinkState.USED
    if revoked_at is not None and revoked_at <= at:
        return LinkState.REVOKED
    if at >= expires_at:
        return LinkState.EXPIRED
    return LinkState.ACTIVE
