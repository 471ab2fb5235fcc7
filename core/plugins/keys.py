"""The server secret (``SEATGATE_SECRET_KEY``) and what is done under it: HMAC signatures (install
links) and authenticated encryption (webhook signing secrets, which the sender must read back to
sign with, so they are encrypted rather than hashed).

Each use gets a key of its own, derived from the secret with HMAC-SHA256 over a label, so a
signature of one kind is never valid as another. Encryption is Fernet (``cryptography``:
AES-128-CBC with an HMAC-SHA256 tag, timestamped), a well-kept construction rather than a
home-made one. The secret itself never reaches a repr, a log, an error or the database.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken

from ..errors import BadInput, Conflict

__all__ = ["MIN_SECRET", "ServerKeys"]

MIN_SECRET = 32  # characters: e.g. `python -c "import secrets; print(secrets.token_urlsafe(32))"`


class ServerKeys:
    """:class:`~seatgate.core.services.ports.orders.ServerKeys` over one server secret."""

    def __init__(self, secret: str) -> None:
        if len(secret.strip()) < MIN_SECRET:
            raise BadInput(
                "SEATGATE_SECRET_KEY",
                "***",
                f"a random secret of {MIN_SECRET} characters or more",
                remedy="set_secret_key",
            )
        self._master = secret.strip().encode()
        self._fernet = Fernet(base64.urlsafe_b64encode(self._derive("seal")))

    def __repr__(self) -> str:
        return "ServerKeys(***)"

    def check(self) -> None:
        """Nothing to do: the secret was checked when these keys were made."""

    def _derive(self, purpose: str) -> bytes:
        return hmac.new(self._master, f"seatgate/{purpose}".encode(), hashlib.sha256).digest()

    def sign(self, purpose: str, data: bytes) -> bytes:
        return hmac.new(self._derive(f"sign/{purpose}"), data, hashlib.sha256).digest()

    def seal(self, text: str) -> str:
        return self._fernet.encrypt(text.encode()).decode()

    def unseal(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise Conflict(
                "a stored secret cannot be read: it was sealed under another SEATGATE_SECRET_KEY",
                remedy="set_secret_key",
            ) from None
