"""The words of the seeds, as enumerations: phases, seat modes, features, channels, frequencies,
permissions, charge models and the reasons a decision or a refusal gives.

Every one is a :class:`~enum.StrEnum`, so a member *is* its string: it compares equal to the text
stored in the database, prints as itself, and serialises to JSON unchanged. Code names the member
(``SeatMode.HARD_CAP``); data files, the CLI and the database carry the text (``"hard_cap"``).
"""

from __future__ import annotations

import unicodedata
from enum import StrEnum

from ..errors import BadInput
from .bounds import BLANKS, check_email

__all__ = [
    "PRODUCTS",
    "Channel",
    "ChargeModel",
    "DecisionReason",
    "Feature",
    "Frequency",
    "LineKind",
    "Permission",
    "Phase",
    "QuarantineReason",
    "RefusalReason",
    "SeatMode",
    "SyncOutcome",
    "TicketKind",
    "UserStatus",
    "check_choice",
    "choice",
    "email_key",
    "normalize_email",
]

# The seven paid CRM integrations managed through Manage Seats (seed 000, "The following paid
# integrations will be managed through Manage Seats").
PRODUCTS: tuple[str, ...] = (
    "salesforce",
    "salesforce_voice",
    "servicenow",
    "hubspot",
    "oracle_sc",
    "sap_c4c",
    "pega",
)


class Phase(StrEnum):
    """Where an account's region stands on the enforcement timeline of seed 000."""

    PRE_ENABLEMENT = "pre_enablement"  # Manage Seats not enabled yet: nothing is gated
    TRANSITION = "transition"  # seats assignable, overage lock on, unseated users keep access
    RESTRICTED = "restricted"  # "Feature restrictions for users without a paid license"
    OVERAGE_BILLING = "overage_billing"  # restricted, and "license overages ... billed"


class SeatMode(StrEnum):
    """How a contract's seat cap behaves."""

    HARD_CAP = "hard_cap"  # seed 000: CRM integrations never go above contracted seats
    AUTO_EXPAND = "auto_expand"  # seed 002: users above the quantity are billed for the extra


class Feature(StrEnum):
    """The gated features of seed 000 ("Users without a valid licensed seat will be restricted
    from utilizing the following integration functionalities")."""

    CTI = "cti"  # log in to the CTI and use its features (pops, click to call, automation tools)
    MANAGED_PACKAGE = "managed_package"  # enter managed package components
    ACTIVITIES_IDENTIFICATION = "activities_identification"  # Activities user identification
    EMBEDDED_LOGIN = "embedded_login"  # log in via embedded experiences within the integration
    AUTOMATION_IDENTIFICATION = "automation_identification"  # automation user identification
    AGENT_SYNC = "agent_sync"  # being part of agent synchronization from the CRM to the platform


class Channel(StrEnum):
    """How a contract was bought (seed 002)."""

    ORDER_FORM = "order_form"  # "Buying through a Signed Order Form"
    MARKETPLACE = "marketplace"  # installed through the AppConnect Marketplace
    SELF_SERVE = "self_serve"  # "Marketplace Self-Serve new app purchases ... month to month"


class Frequency(StrEnum):
    """Billing frequency; seed 002: purchases "adapt to your existing Talkdesk contract's billing
    frequency and term"."""

    MONTHLY = "monthly"
    QUARTERLY = "quarterly"
    SEMIANNUAL = "semiannual"
    ANNUAL = "annual"

    @property
    def months(self) -> int:
        """Months in one billing period of this frequency."""
        return _FREQUENCY_MONTHS[self]

    @property
    def adverb(self) -> str:
        """How often: "billed annually", "billed semiannually" (the enumeration's text is the
        adjective, "an annual contract")."""
        return _FREQUENCY_ADVERBS.get(self, self.value)


_FREQUENCY_ADVERBS = {
    Frequency.SEMIANNUAL: "semiannually",
    Frequency.ANNUAL: "annually",
}

_FREQUENCY_MONTHS = {
    Frequency.MONTHLY: 1,
    Frequency.QUARTERLY: 3,
    Frequency.SEMIANNUAL: 6,
    Frequency.ANNUAL: 12,
}


class Permission(StrEnum):
    """Seed 002, "Purchasing Authority": users with AppConnect Install or Manage."""

    INSTALL = "install"
    MANAGE = "manage"


class ChargeModel(StrEnum):
    """Seed 002, "Charge Models"."""

    PER_SEAT = "per_seat"  # "charged per each activated user"
    PER_ACCOUNT = "per_account"  # "charged once, per Talkdesk account"


class RefusalReason(StrEnum):
    """Why a seat was not assigned (or taken back)."""

    CAPACITY_REACHED = "capacity_reached"  # hard cap: assigned == contracted
    IN_OVERAGE = "in_overage"  # assigned > contracted: no user can be added (seed 000)
    NOT_AUTHORIZED = "not_authorized"  # the actor lacks Install / Manage (seed 002)
    NO_CONTRACT = "no_contract"  # the account has no contract for the product
    UNKNOWN_USER = "unknown_user"  # no integration user with that email in the account
    INACTIVE_USER = "inactive_user"  # the user is deactivated (in the CRM or by an admin)
    NOT_ASSIGNED = "not_assigned"  # unassign: the user holds no seat


class DecisionReason(StrEnum):
    """The reason an entitlement decision gives."""

    # allowed
    SEATED = "seated"
    GRACE = "grace"  # transition, no seat: access until the restriction date
    PRE_ENABLEMENT = "pre_enablement"  # Manage Seats not yet enabled in the region
    NOT_GATED = "not_gated"  # the feature does not apply to the product's adapter
    # denied
    NO_SEAT = "no_seat"
    IN_OVERAGE = "in_overage"  # a user added while the account is in overage (seed 000)
    USER_INACTIVE = "user_inactive"
    NO_CONTRACT = "no_contract"
    ADAPTER_DISABLED = "adapter_disabled"
    UNINSTALLED = "uninstalled"  # the uninstall took effect (seed 002)

    @property
    def allowed(self) -> bool:
        return self in _ALLOWED


_ALLOWED = frozenset(
    {
        DecisionReason.SEATED,
        DecisionReason.GRACE,
        DecisionReason.PRE_ENABLEMENT,
        DecisionReason.NOT_GATED,
    }
)


class LineKind(StrEnum):
    """What an invoice line charges for."""

    BASE = "base"
    SEATS_PURCHASED = "seats_purchased"
    ADDITIONAL_SEATS = "additional_seats"  # auto_expand: users above the contracted quantity
    OVERAGE = "overage"  # seed 000: "customers continuing to be in overage will be billed"
    PLAN_CHANGE = "plan_change"  # seed 002: a base plan other than the contracted one
    ADD_ON = "add_on"  # an add-on plan activated by the partner (seed 002)
    PRORATION = "proration"  # a credit for days no longer owed


class TicketKind(StrEnum):
    """Billing tickets with Support (seed 002)."""

    BILLING_CANCELLATION = "billing_cancellation"  # "to trigger Billing Cancellation"
    RENEWAL_ADJUSTMENT = "renewal_adjustment"  # "To trigger Billing adjustments at renewal"


class UserStatus(StrEnum):
    """Whether an integration user is active in their CRM (admin listings filter on it)."""

    ACTIVE = "active"
    INACTIVE = "inactive"


class QuarantineReason(StrEnum):
    """Why a sync could not use a CRM record."""

    MISSING_ID = "missing_id"  # no external id: the user cannot be linked or followed
    BAD_ID = "bad_id"  # not a string, or longer than the column
    DUPLICATE_ID = "duplicate_id"  # the same external id twice in one run
    MISSING_EMAIL = "missing_email"  # users are known by email (seed 000)
    BAD_EMAIL = "bad_email"  # not an address
    DUPLICATE_EMAIL = "duplicate_email"  # two CRM records with one email
    EMAIL_TAKEN = "email_taken"  # the CRM moved a user to an email another user already has
    # a field value the adapter could not read (a stamp that does not parse, a flag neither true
    # nor false, a name that is no text): ExternalUser.problem says which
    MALFORMED_RECORD = "malformed_record"


class SyncOutcome(StrEnum):
    """How a sync run ended."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    HALTED = "halted"  # the deletion guard stopped it: nothing written
    INTERRUPTED = "interrupted"  # its process died (lease expired)
    SKIPPED = "skipped"  # another run of the connector holds a live lease: this one did not start


def check_choice(what: str, value: str, accepted: type[StrEnum] | tuple[str, ...]) -> str:
    """``value`` if it is one of ``accepted`` (an enumeration or a tuple of names); else
    :class:`BadInput` naming what is accepted."""
    names = tuple(str(a) for a in accepted)
    if value not in names:
        raise BadInput(what, value, names)
    return value


def choice(what: str, value: str, accepted: type[StrEnum] | tuple[str, ...]) -> str:
    """The one of ``accepted`` that ``value`` names, whatever its case (``MANAGE`` is ``manage``,
    ``uk`` is ``UK``): an entrypoint's reading of a choice. :class:`BadInput` naming what is
    accepted otherwise."""
    names = tuple(str(a) for a in accepted)
    wanted = value.strip(BLANKS).casefold()
    for name in names:
        if name.casefold() == wanted:
            return name
    raise BadInput(what, value, names)


def email_key(value: str) -> str:
    """The form an email is kept and looked up in, without checking it: surrounding blanks
    stripped, Unicode's composed form (NFC: ``é`` typed as ``e`` and a combining accent is one
    address with ``é``), lower case. Python's ``lower()`` turns the capital dotted I (``İ``,
    U+0130) into ``i`` and a combining dot: the only letter it lowers to two; it is lowered to
    ``i`` here (as Turkish writes it), so ``İlker@x`` is ``ilker@x`` and an address, not a bad
    one."""
    if value.isascii():  # nearly every address, and one a sync normalizes per record
        return value.strip(BLANKS).lower()
    return unicodedata.normalize("NFC", value.strip(BLANKS)).replace("\u0130", "i").lower()


def normalize_email(value: str) -> str:
    """Emails identify users within an account, case-insensitively (seed 000, Manage Seats), in
    the form :func:`email_key` gives.

    Raises :class:`BadInput` for anything that is not an address like ``name@example.com`` (the
    syntax and lengths of :func:`seatgate.core.domain.bounds.check_email`).
    """
    email = email_key(value)
    check_email(email, value)
    return email
