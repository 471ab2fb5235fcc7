"""Mail through SMTP, configured by one URL (``SEATGATE_SMTP_URL``), with the standard library's
:mod:`smtplib` and :mod:`email.message`.

``smtp://[user:password@]host[:port][?from=ADDRESS]`` (plain, port 25), ``smtp+starttls://``
(STARTTLS, port 587) or ``smtps://`` (TLS from the start, port 465). The password is used to log
in and appears nowhere else: not in a repr, an error or a log.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit

from ..domain.bounds import check_email
from ..errors import BadInput
from ..services.ports.orders import MailNotSent

__all__ = ["DEFAULT_SENDER", "SmtpMailer", "sender_of"]

_PORTS = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}
TIMEOUT = 10.0  # seconds to connect or for one SMTP reply


DEFAULT_SENDER = "seatgate@localhost"


def sender_of(url: str) -> str:
    """The ``from=`` address of an SMTP URL (default ``seatgate@localhost``). Raises
    :class:`BadInput` naming it when it is not an address (the rule of
    :func:`~seatgate.core.domain.bounds.check_email`): a mail server would refuse every mail."""
    given = parse_qs(urlsplit(url.strip()).query).get("from")
    if not given:
        return DEFAULT_SENDER
    sender = given[0].strip()
    check_email(sender.lower(), given[0], "SEATGATE_SMTP_URL from=")
    return sender


class SmtpMailer:
    """:class:`~seatgate.core.services.ports.orders.Mailer` over SMTP."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url.strip())
        accepted = (
            "smtp://, smtp+starttls:// or smtps:// with a host, e.g. smtp://mail.example.com:25"
        )
        if parts.scheme not in _PORTS or not parts.hostname:
            raise BadInput("SEATGATE_SMTP_URL", parts.scheme + "://…", accepted)
        try:
            port = parts.port or _PORTS[parts.scheme]
        except ValueError:
            raise BadInput("SEATGATE_SMTP_URL", parts.scheme + "://…", accepted) from None
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = port
        self._user = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else None
        self.sender = sender_of(url)

    def __repr__(self) -> str:
        return f"SmtpMailer({self.scheme}://{self.host}:{self.port})"

    def check(self) -> None:
        """Nothing to do: the URL was checked when this mailer was made."""

    def send(self, recipient: str, subject: str, body: str) -> None:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = recipient
        message["Subject"] = subject
        message.set_content(body)
        try:
            if self.scheme == "smtps":
                client: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=TIMEOUT, context=ssl.create_default_context()
                )
            else:
                client = smtplib.SMTP(self.host, self.port, timeout=TIMEOUT)
            with client:
                if self.scheme == "smtp+starttls":
                    client.starttls(context=ssl.create_default_context())
                if self._user is not None:
                    client.login(self._user, self._password or "")
                client.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            # The exception's text is the server's reply or the socket's error: no credential.
            raise MailNotSent(
                f"mail to {recipient} not sent through {self.host}:{self.port}: "
                f"{type(exc).__name__}: {exc}"[:300]
            ) from None
