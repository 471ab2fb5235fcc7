"""Install links for order-form purchases (seed 002).

Seed 002, "Buying through a Signed Order Form and Installing on Marketplace": "you will be required
to: Install the App through the AppConnect Marketplace or an Install Link sent to you via an email
notification, and Add intended Users on Talkdesk My Apps. ... your existing contract applies. No
additional charges apply unless you activate more than the contracted quantities or select a
different plan than the contracted Base Plan."

- :meth:`InstallLinkService.create` makes a link bound to the account, the product and its
  order-form contract: signed with the server secret (:mod:`seatgate.core.domain.links`), expiring
  (14 days by default, by the injected clock), usable once, revocable. The mail carrying it is
  written to the outbox in the same transaction, then sent through SMTP when one is configured.
- :meth:`InstallLinkService.redeem` installs the product under that contract through the install
  use case (authority, config, CRM check, the commitment of who installed — no purchase, no
  price), claims the link in the install's transaction, and answers that the intended users are
  to be added next (remedy ``add_users``). An expired, used, revoked, altered or foreign link is
  refused with one line and changes nothing.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any

import attrs

from ..domain.env_refs import EnvScope
from ..domain.links import (
    DEFAULT_DAYS,
    MAX_DAYS,
    LinkState,
    link_id_of,
    link_state,
    token_for,
)
from ..domain.model import Account
from ..domain.vocabulary import Channel, normalize_email
from ..errors import BadInput, Conflict, NotFound
from .base import read, transaction
from .contracts import require_contract
from .installs import InstallResult, InstallService
from .ports import Ports, UnitOfWork
from .ports.orders import LinkRow, MailNotSent, ServerKeys

__all__ = ["InstallLinkService", "LinkCreated", "LinkInfo", "LinkRedeemed", "require_keys"]

_SUBJECT = "Install {product} on your account {account}"
_BODY = """\
Hello,

Your organisation bought {product} through a signed order form. To install it on account
{account}, open this install link (it works once, until {expires} UTC):

{{link}}

Or run: seatgate install-link redeem TOKEN --config FILE (the token is the last part of the link).

Once it is installed, add the intended users in My Apps. Your existing contract applies: nothing
more is charged unless you activate more users than contracted or select another base plan.
"""


def require_keys(ports: Ports) -> ServerKeys:
    """The server secret's operations; :class:`Conflict` (remedy ``set_secret_key``) without
    one: install links and webhook secrets need it; :class:`BadInput` for an unusable one (asked
    here, before anything is written)."""
    keys = ports.orders.keys
    if keys is None:
        raise Conflict(
            "no server secret is configured: install links and webhooks are signed with it",
            remedy="set_secret_key",
        )
    keys.check()
    return keys


@attrs.frozen
class LinkInfo:
    """An install link as listed (never its token). ``state``: active, used, revoked, expired;
    ``mail``: queued (no SMTP: in the outbox), sent or failed."""

    id: str
    account: str
    product: str
    email: str
    state: str
    created_at: dt.datetime
    created_by: str | None
    expires_at: dt.datetime
    used_at: dt.datetime | None
    used_by: str | None
    revoked_at: dt.datetime | None
    mail: str

    @classmethod
    def of(cls, row: LinkRow, at: dt.datetime) -> LinkInfo:
        return cls(
            row.id,
            row.account,
            row.product,
            row.email,
            link_state(at, row.expires_at, row.used_at, row.revoked_at),
            row.created_at,
            row.created_by,
            row.expires_at,
            row.used_at if row.used_at is not None and row.used_at <= at else None,
            row.used_by if row.used_at is not None and row.used_at <= at else None,
            row.revoked_at if row.revoked_at is not None and row.revoked_at <= at else None,
            row.mail_status,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "account": self.account,
            "product": self.product,
            "email": self.email,
            "state": self.state,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "expires_at": self.expires_at,
            "used_at": self.used_at,
            "used_by": self.used_by,
            "revoked_at": self.revoked_at,
            "mail": self.mail,
        }


@attrs.frozen
class LinkCreated:
    """A link just made. ``token`` and ``url`` are shown this once; ``mail`` is ``sent``,
    ``queued`` (no SMTP configured: ``message`` is the mail, to be printed) or ``failed``
    (``mail_error`` says why; the mail stays in the outbox)."""

    link: LinkInfo
    token: str = attrs.field(repr=False)
    url: str = attrs.field(repr=False)
    mail: str = "queued"
    mail_error: str = ""
    subject: str = ""
    message: str = attrs.field(default="", repr=False)

    def as_dict(self) -> dict[str, Any]:
        out = {**self.link.as_dict(), "mail": self.mail, "token": self.token, "url": self.url}
        if self.mail_error:
            out["mail_error"] = self.mail_error
        if self.mail != "sent":
            out["message"] = {"to": self.link.email, "subject": self.subject, "body": self.message}
        return out


@attrs.frozen
class LinkRedeemed:
    """A link redeemed: the installation, and what comes next (``next``: remedy code
    ``add_users``, seed 002 "Add intended Users on Talkdesk My Apps")."""

    link: LinkInfo
    install: InstallResult
    next: str = "add_users"

    def as_dict(self) -> dict[str, Any]:
        return {
            "link": self.link.as_dict(),
            "install": self.install.as_dict(),
            "next": self.next,
        }


class InstallLinkService:
    def __init__(self, ports: Ports) -> None:
        self.ports = ports

    def _url(self, token: str) -> str:
        return f"{self.ports.orders.console_url.rstrip('/')}/install/{token}"

    def create(
        self,
        account: str,
        product: str,
        email: str,
        actor: str | None = None,
        *,
        days: int = DEFAULT_DAYS,
    ) -> LinkCreated:
        """Make an install link for ``account``'s order-form ``product`` contract, to be mailed
        to the admin ``email``, valid ``days`` days (1 to 90) from now.

        Raises :class:`BadInput` (a bad address or day count; a contract that is not an order
        form's: installs without one are marketplace purchases), :class:`NotFound` (no account,
        no contract: remedy ``create_contract``), :class:`Conflict` (no server secret, remedy
        ``set_secret_key``; the product is installed already).
        """
        keys = require_keys(self.ports)
        recipient = normalize_email(email)
        if not 1 <= days <= MAX_DAYS:
            raise BadInput("days", days, f"a whole number of days from 1 to {MAX_DAYS}")
        at = self.ports.now()
        link_id = uuid.uuid4().hex
        # The secret and the SMTP settings are used before anything is written: a bad one
        # (too short a secret, a bad SEATGATE_SMTP_URL) is refused with nothing written.
        token = token_for(keys.sign, link_id)
        if self.ports.orders.mailer is not None:
            self.ports.orders.mailer.check()
        with transaction(self.ports) as uow:
            acct = uow.accounts.get(account)
            contract = require_contract(uow, acct, product)
            if contract.channel != Channel.ORDER_FORM:
                raise BadInput(
                    "product",
                    product,
                    f"a product bought through a signed order form ({account}'s {product} "
                    f"contract is {contract.channel}; install it with `install`)",
                )
            installed = uow.installs.find(account, product)
            if installed is not None and installed.uninstall_effective is None:
                raise Conflict(
                    f"{product} is installed on {account!r} already (since "
                    f"{installed.installed_at:%Y-%m-%d}); add the intended users instead",
                    remedy="add_users",
                    context={"account": account, "product": product},
                )
            expires = at + dt.timedelta(days=days)
            uow.links.add(
                LinkRow(
                    id=link_id,
                    account=account,
                    product=product,
                    contract_id=contract.id,
                    email=recipient,
                    created_at=at,
                    created_by=actor,
                    expires_at=expires,
                ),
                acct.id,
            )
            subject = _SUBJECT.format(product=product, account=account)
            body = _BODY.format(
                product=product, account=account, expires=f"{expires:%Y-%m-%d %H:%M}"
            )
            mail_id = uow.links.queue_mail(recipient, subject, body, link_id, at)
            uow.audit.record(
                at=at,
                action="install_link.create",
                outcome="ok",
                account=account,
                actor=actor,
                detail={
                    "product": product,
                    "link": link_id,
                    "email": recipient,
                    "expires_at": expires.isoformat(),
                },
            )
        url = self._url(token)
        status, error = self._send(mail_id, url)
        with read(self.ports) as uow:
            row = uow.links.get(link_id)
            assert row is not None
        return LinkCreated(
            LinkInfo.of(row, at),
            token,
            url,
            status,
            error,
            subject,
            body.replace("{link}", url),
        )

    def _send(self, mail_id: int, url: str) -> tuple[str, str]:
        """Send an outbox mail through SMTP when one is configured; ``(status, error)``."""
        mailer = self.ports.orders.mailer
        if mailer is None:
            return "queued", ""
        with read(self.ports) as uow:
            mail = uow.links.mail(mail_id)
        try:
            mailer.send(mail.recipient, mail.subject, mail.body.replace("{link}", url))
        except MailNotSent as exc:
            status, error = "failed", str(exc)
        else:
            status, error = "sent", ""
        with transaction(self.ports) as uow:
            uow.links.mark_mail(mail_id, status, self.ports.now(), error)
        return status, error

    def list(self, account: str) -> list[LinkInfo]:
        """The account's links as of now, newest first (never their tokens)."""
        at = self.ports.now()
        with read(self.ports) as uow:
            acct = uow.accounts.get(account)
            rows = uow.links.list(acct.id, at)
        return [LinkInfo.of(r, at) for r in rows]

    def revoke(self, account: str, link_id: str, actor: str | None = None) -> LinkInfo:
        """Revoke an unused link of ``account``. Raises :class:`NotFound` (another account's id
        too), :class:`Conflict` (used or revoked already)."""
        at = self.ports.now()
        with transaction(self.ports) as uow:
            acct = uow.accounts.get(account)
            row = uow.links.get(link_id.strip().lower(), lock=True)
            if row is None or row.account != acct.name:
                raise NotFound("install link", link_id, f"see `install-link list {account}`")
            state = link_state(at, row.expires_at, row.used_at, row.revoked_at)
            if state in (LinkState.USED, LinkState.REVOKED):
                raise Conflict(f"install link {row.id} is {state} already", field="link")
            uow.links.revoke(row.id, at, actor)
            uow.audit.record(
                at=at,
                action="install_link.revoke",
                outcome="ok",
                account=account,
                actor=actor,
                detail={"product": row.product, "link": row.id},
            )
            row = uow.links.get(row.id)
            assert row is not None
        return LinkInfo.of(row, at)

    def redeem(
        self,
        token: str,
        config: Mapping[str, Any],
        actor: str | None,
        *,
        account: str | None = None,
        retry: Any = None,
        env_scope: EnvScope = EnvScope.OPERATOR,
    ) -> LinkRedeemed:
        """Install the product a link names, under its order-form contract (seed 002), as
        ``actor`` (who must hold Install or Manage in the link's account).

        :param account: the account the caller acts in (the console's, an HTTP token's): a link
            of another account is refused as foreign. None: the link's own.
        :param env_scope: the ``${NAME}`` references the config may hold (see
            :meth:`InstallService.install`): a tenant's edge (console, HTTP) passes
            ``EnvScope.ACCOUNT``.

        Raises :class:`BadInput` (field ``token``: malformed, altered, signed by another server,
        or unknown), :class:`Conflict` (expired, used, revoked, or of another account; remedy
        ``new_install_link``), :class:`NotAuthorized` (audited), and what installing raises. A
        refused link changes nothing.
        """
        at = self.ports.now()
        row = self._usable_row(token, account, at)
        link_id = row.id

        def claim(uow: UnitOfWork, acct: Account, who: str) -> Mapping[str, Any]:
            fresh = uow.links.get(link_id, lock=True)
            assert fresh is not None
            self._usable(fresh, at)  # a concurrent redemption used it first: roll back
            contract = require_contract(uow, acct, fresh.product)
            if contract.id != fresh.contract_id:
                raise Conflict(
                    f"the {fresh.product} contract this link was made for was replaced",
                    field="token",
                    remedy="new_install_link",
                    context={"account": fresh.account, "product": fresh.product},
                )
            uow.links.mark_used(link_id, at, who)
            uow.audit.record(
                at=at,
                action="install_link.redeem",
                outcome="ok",
                account=fresh.account,
                actor=who,
                detail={"product": fresh.product, "link": link_id},
            )
            return {"via": "install_link", "link": link_id, "order_form": True}

        result = InstallService(self.ports).install(
            row.account,
            row.product,
            config,
            actor,
            retry=retry,
            order_form_link=claim,
            env_scope=env_scope,
        )
        with read(self.ports) as uow:
            done = uow.links.get(link_id)
            assert done is not None
        return LinkRedeemed(LinkInfo.of(done, at), result)

    def inspect(self, token: str, account: str | None = None) -> LinkInfo:
        """The link ``token`` names, if :meth:`redeem` would accept it now (the console shows its
        product before asking for the settings). Nothing is written. Raises what :meth:`redeem`
        raises for the link itself: :class:`BadInput` (malformed, altered, unknown),
        :class:`Conflict` (expired, used, revoked, another account's)."""
        at = self.ports.now()
        return LinkInfo.of(self._usable_row(token, account, at), at)

    def _usable_row(self, token: str, account: str | None, at: dt.datetime) -> LinkRow:
        keys = require_keys(self.ports)
        link_id = link_id_of(keys.sign, token)
        with read(self.ports) as uow:
            row = uow.links.get(link_id)
        if row is None:
            raise BadInput(
                "token", "***", "an install link that exists here", remedy="new_install_link"
            )
        if account is not None and account != row.account:
            raise Conflict(
                f"this install link is for another account, not {account!r}",
                field="token",
                remedy="new_install_link",
                context={"account": account, "product": row.product},
            )
        self._usable(row, at)
        return row

    @staticmethod
    def _usable(row: LinkRow, at: dt.datetime) -> None:
        state = link_state(at, row.expires_at, row.used_at, row.revoked_at)
        if state == LinkState.ACTIVE:
            return
        instant = {
            LinkState.USED: row.used_at,
            LinkState.REVOKED: row.revoked_at,
            LinkState.EXPIRED: row.expires_at,
        }[state]
        verb = "expired" if state == LinkState.EXPIRED else f"was {state}"
        when = f"{verb} on {instant:%Y-%m-%d %H:%M} UTC"
        raise Conflict(
            f"this install link for {row.product} on {row.account!r} {when}: it changes nothing",
            field="token",
            remedy="new_install_link",
            context={"account": row.account, "product": row.product},
        )
