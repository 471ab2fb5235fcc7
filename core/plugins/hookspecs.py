# mypy: disable-error-code="empty-body"
"""The hooks of seatgate (pluggy project name ``seatgate``).

Two kinds of hooks:

* **Adapter hooks** are implemented by one CRM adapter plugin each. The core calls them for one
  connector only, through a hook caller restricted to that adapter's plugin
  (:class:`seatgate.core.plugins.AdapterHooks`), never as a broadcast whose results must be
  untangled. They stop at the first non-None result.
* **Listener hooks** are broadcast to every plugin that implements them (billing, the audit log,
  metrics, a deployment's own agent directory). One listener's failure is logged and does not stop
  the others.

pluggy traps, for implementers: hook calls are keyword-only; a hookimpl must not give its
arguments defaults (pluggy would never pass them); a hookimpl may take fewer arguments than the spec.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

from ..domain.records import AdapterInfo, AgentRecord, SyncSummary, UserPage

if TYPE_CHECKING:
    from ..domain.events import Event
    from .retry import RequestContext

PROJECT = "seatgate"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# ---------------------------------------------------------------------------------------------------
# Adapter hooks: called for one connector, on that connector's plugin only.
# ---------------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def seatgate_adapter_info() -> AdapterInfo:
    """Describe the adapter: name, products served, version, gated features, config schema.

    Stops at the first non-None result.
    """


@hookspec(firstresult=True)
def seatgate_check_connection(
    product: str, settings: Mapping[str, Any], ctx: RequestContext
) -> bool:
    """Check that the CRM answers with these settings; return True or raise an AdapterError.

    Bad credentials raise :class:`~seatgate.core.errors.AuthFailed` at once, without retries.
    Stops at the first non-None result.

    :param product: the product being connected (an adapter may serve several).
    :param settings: the validated settings; secrets are :class:`~seatgate.core.config.Secret`.
    :param ctx: runs each request under the retry policy and counts requests.
    """


@hookspec(firstresult=True)
def seatgate_pull_users(
    product: str,
    settings: Mapping[str, Any],
    since: dt.datetime | None,
    ctx: RequestContext,
    activated_roles: frozenset[str],
) -> Iterator[UserPage]:
    """Stream the CRM's integration users for ``product``, one page at a time.

    Pages are requested at the largest size the API allows and yielded as they arrive; the whole
    set is never held in memory. With ``since`` (UTC), only users whose change stamp is at or after
    it (inclusive: nothing on the boundary is lost) are returned; with ``since=None`` every user,
    active or not, is returned (a full pull, the only basis for deactivation).
    Stops at the first non-None result.

    :param product: which product's users (e.g. ``salesforce_voice`` pulls the voice licence holders).
    :param settings: the validated settings.
    :param since: the incremental cursor, or None for a full pull.
    :param ctx: runs each request under the retry policy and counts requests and retries.
    :param activated_roles: the connector's activated roles (seed 002 auto install), the only roles
        the core acts on. An adapter whose roles cost requests of their own (ServiceNow's
        ``sys_user_has_role``) may read just these, and none when the set is empty; an adapter that
        gets roles with the user record for free returns them all.
    """


@hookspec(firstresult=True)
def seatgate_install(account: str, product: str, settings: Mapping[str, Any]) -> bool:
    """Prepare the CRM side for a new installation; must be idempotent. Return True.

    Stops at the first non-None result.

    :param account: the platform account installing.
    :param product: the product installed.
    :param settings: the validated settings.
    """


@hookspec(firstresult=True)
def seatgate_uninstall(account: str, product: str, settings: Mapping[str, Any]) -> bool:
    """Reverse :func:`seatgate_install`; must be idempotent. Return True.

    Stops at the first non-None result.

    :param account: the platform account uninstalling.
    :param product: the product uninstalled.
    :param settings: the validated settings.
    """


# ---------------------------------------------------------------------------------------------------
# Listener hooks: broadcast; every implementation is called, failures are isolated.
# ---------------------------------------------------------------------------------------------------


@hookspec
def seatgate_seats_changed(
    account: str, product: str, assigned: Sequence[str], unassigned: Sequence[str], at: dt.datetime
) -> None:
    """Seats were assigned or unassigned (by an admin, grandfathering, or auto install).

    :param account: the account.
    :param product: the product whose seats changed.
    :param assigned: emails that gained a seat.
    :param unassigned: emails that lost a seat.
    :param at: when, by the run's clock.
    """


@hookspec
def seatgate_activation_reported(
    account: str, product: str, emails: Sequence[str], at: dt.datetime
) -> None:
    """Users were activated on a product (seated by a sync's auto install or an admin).

    Billing listens here: activations above the contracted quantity are billable (seed 002).

    :param account: the account.
    :param product: the product.
    :param emails: the activated users.
    :param at: the activation instant.
    """


@hookspec
def seatgate_installed(account: str, product: str, actor: str, at: dt.datetime) -> None:
    """A product was installed on an account.

    :param account: the account.
    :param product: the product.
    :param actor: who installed it (holds the install or manage permission).
    :param at: when.
    """


@hookspec
def seatgate_uninstalled(
    account: str, product: str, actor: str, at: dt.datetime, effective: dt.date
) -> None:
    """An uninstall was requested; it takes effect at the end of the current term (seed 002).

    :param account: the account.
    :param product: the product.
    :param actor: who asked.
    :param at: when it was asked.
    :param effective: the day the uninstall takes effect (the term's end).
    """


@hookspec
def seatgate_plan_changed(
    account: str, product: str, actor: str, at: dt.datetime, from_plan: str, to_plan: str
) -> None:
    """Another base plan was selected (seed 002: billed for all selected users from then on).

    :param account: the account.
    :param product: the product.
    :param actor: who selected it (holds the install or manage permission).
    :param at: when.
    :param from_plan: the plan in force before.
    :param to_plan: the plan selected.
    """


@hookspec
def seatgate_event(event: Event) -> None:
    """Any domain event (:mod:`seatgate.core.domain.events`), after its transaction committed.

    Called for every event besides the specific hook of its kind, for listeners that want them
    all (webhooks, an event bus). An event may be delivered again after a crash: de-duplicate on
    ``event.id``.

    :param event: the event; ``event.kind`` names it, ``event.as_dict()`` serialises it.
    """


@hookspec
def seatgate_events(events: Sequence[Event]) -> None:
    """The events :func:`seatgate_event` hears, a delivered batch at once, in the order they were
    written (after each one's ``seatgate_event``): for a listener that writes for them, in one
    transaction per batch rather than one per event (a first sync of 100,000 users delivers some
    150 events at once). The same de-duplication on ``event.id`` applies.

    :param events: the batch, oldest first.
    """


@hookspec
def seatgate_agents_written(
    account: str, product: str, agents: Sequence[AgentRecord], at: dt.datetime
) -> None:
    """Agents were written to the platform's agent directory; a deployment may push them elsewhere.

    :param account: the account.
    :param product: the connector's product.
    :param agents: the agents written in this batch.
    :param at: when.
    """


@hookspec
def seatgate_sync_finished(summary: SyncSummary) -> None:
    """A sync run ended (succeeded, failed or halted); metrics and alerting listen here.

    :param summary: counts, requests, retries, duration and outcome of the run.
    """
