"""The adapter conformance kit: a base test class an adapter's test module subclasses.

    from seatgate.adapters.acme import plugin
    from seatgate.adapters.acme.sandbox import SANDBOX
    from seatgate.core.testing import AdapterConformance

    class TestAcmeConformance(AdapterConformance):
        plugin = plugin
        sandbox_class = SANDBOX
        products = ("acme",)
        skip_checks = {"test_repeated_page_token": "Acme pages by offset; it has no page token"}

The ``test_sync_*`` checks run the adapter through the core's sync engine (an ``App`` on a SQLite
file, the product installed on an account with a contract): the rules of issue 12 that every
adapter, present and future, is held to — two CRM records of one person, an empty or emptying full
pull, and a change committed late.

Every check runs against a fresh, started sandbox (``sandbox_class(users=N)``) with a
:class:`RetryPolicy` whose sleep is recorded, so nothing waits for real time. Knobs the kit uses when
the sandbox has them: ``page_size`` (set small so a pull spans several pages), ``retry_after`` (the
delay a ``rate_limit`` fault asks for) and ``repeat_page_token`` (every page names itself as the
next one). A check is skipped only through :attr:`AdapterConformance.skip_checks`, with a reason.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest

from ..bootstrap import App
from ..clock import FixedClock, parse_instant
from ..errors import AdapterError, AuthFailed, BadInput, MalformedResponse, TransientError
from ..plugins import (
    FEATURES,
    AdapterInfo,
    ConfigSchema,
    ExternalUser,
    RequestContext,
    RetryPolicy,
    Secret,
)
from ..plugins.manager import AdapterHooks, Plugins, build_plugin_manager
from .setup import account_with_contract

__all__ = ["SENTINEL", "AdapterConformance", "Engine", "SleepRecorder"]

SENTINEL = "S3NT1NEL-secret-7d1f0c"
KIT_ACCOUNT = "kit-acct"
KIT_ADMIN = "admin@kit.example"


class Engine:
    """The adapter under the core's sync engine: an App on a SQLite file whose only adapter is
    the one under test, an account with a contract, the product installed on the sandbox."""

    def __init__(self, app: App, product: str, clock: FixedClock) -> None:
        self.app, self.product, self.clock = app, product, clock

    def sync(self, *, full: bool = False, force: bool = False) -> Any:
        self.clock.advance(minutes=5)
        return self.app.sync.sync(KIT_ACCOUNT, self.product, full=full, force=force)

    def agents(self) -> dict[str, bool]:
        """email -> whether the user is an active agent of the product."""
        return {
            a["email"]: bool(a["active"]) for a in self.app.sync.agents(KIT_ACCOUNT, self.product)
        }

    def quarantined(self, run_id: int | None) -> dict[str, str]:
        """external id -> reason of the records the run quarantined."""
        assert run_id is not None
        return {q["external_id"]: q["reason"] for q in self.app.sync.quarantined(run_id)}


class SleepRecorder:
    """A ``sleep`` for :class:`RetryPolicy` that records the delays instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def _checks() -> set[str]:
    return {name for name in dir(AdapterConformance) if name.startswith("test_")}


class AdapterConformance:
    """Subclass as ``Test<Adapter>Conformance`` and set the class attributes below."""

    #: the adapter plugin object (what the entry point or the module-level ``plugin`` names).
    plugin: ClassVar[Any] = None
    #: the sandbox class: ``sandbox_class(users=N)`` is a context manager that serves the CRM.
    sandbox_class: ClassVar[Any] = None
    #: the products to test; empty means every product the adapter declares.
    products: ClassVar[tuple[str, ...]] = ()
    #: users in the sandbox for most checks (the paging check adds what it needs).
    users: ClassVar[int] = 12
    #: the page size the kit sets on a sandbox with a ``page_size`` knob.
    kit_page_size: ClassVar[int] = 5
    #: pages a pull may yield before the kit calls it a loop, beyond the pages expected.
    page_cap_margin: ClassVar[int] = 5
    #: the delay a ``rate_limit`` fault asks for, when the sandbox has no ``retry_after`` knob.
    expected_retry_after: ClassVar[float | None] = None
    #: more keyword arguments for ``sandbox_class``.
    sandbox_kwargs: ClassVar[Mapping[str, Any]] = {}
    #: check name -> why it does not apply to this adapter (a reason is required).
    skip_checks: ClassVar[Mapping[str, str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        known = _checks()
        for name, reason in cls.skip_checks.items():
            if name not in known:
                raise TypeError(
                    f"{cls.__name__}.skip_checks names {name!r}, which is not a check: "
                    f"expected one of {', '.join(sorted(known))}"
                )
            if not isinstance(reason, str) or not reason.strip():
                raise TypeError(
                    f"{cls.__name__}.skip_checks[{name!r}] has no reason: say why it does not apply"
                )

    # -- wiring ------------------------------------------------------------------------------------
    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if "product" in metafunc.fixturenames:
            products = self.products or _info(self.plugin).products
            metafunc.parametrize("product", products)

    @pytest.fixture(autouse=True)
    def _honour_skips(self, request: pytest.FixtureRequest) -> None:
        name = request.node.originalname
        if name in self.skip_checks:
            pytest.skip(self.skip_checks[name])

    @pytest.fixture
    def plugins(self) -> Plugins:
        if self.plugin is None or self.sandbox_class is None:
            pytest.fail(f"{type(self).__name__} must set `plugin` and `sandbox_class`")
        return build_plugin_manager(
            builtins=(), entry_points=False, plugins=[("under_test", self.plugin)], strict=True
        )

    @pytest.fixture
    def info(self, plugins: Plugins) -> AdapterInfo:
        return next(iter(plugins.registry)).info

    @pytest.fixture
    def hooks(self, plugins: Plugins, info: AdapterInfo) -> AdapterHooks:
        return plugins.adapter(info.products[0])

    @pytest.fixture
    def sandbox(self) -> Iterator[Any]:
        sb = self.sandbox_class(users=self.users, **self.sandbox_kwargs)
        if hasattr(sb, "page_size"):
            sb.page_size = self.kit_page_size
        with sb:
            yield sb

    @pytest.fixture
    def sleeps(self) -> SleepRecorder:
        return SleepRecorder()

    @pytest.fixture
    def ctx(self, sleeps: SleepRecorder) -> RequestContext:
        return RequestContext(
            RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05, sleep=sleeps)
        )

    @pytest.fixture
    def settings(self, info: AdapterInfo, sandbox: Any) -> dict[str, Any]:
        return _schema(info).validate(sandbox.settings(), resolve_env=False)

    @pytest.fixture
    def engine(
        self,
        plugins: Plugins,
        info: AdapterInfo,
        product: str,
        sandbox: Any,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> Iterator[Engine]:
        clock = FixedClock(parse_instant("2026-03-02T09:00:00Z"))
        app = App(f"sqlite:///{tmp_path}/kit.db", clock=clock, plugins=plugins)
        try:
            config = dict(sandbox.settings())
            for field in _schema(info).fields:
                if field.secret and field.name in config and isinstance(config[field.name], str):
                    var = f"CONFORMANCE_KIT_{field.name.upper()}"
                    monkeypatch.setenv(var, config[field.name])
                    config[field.name] = "${" + var + "}"
            account_with_contract(app, KIT_ACCOUNT, product, admin=KIT_ADMIN, seats=10_000)
            app.installs.install(
                KIT_ACCOUNT, product, {**config, "deletion_guard_min": 10_000}, KIT_ADMIN
            )
            yield Engine(app, product, clock)
        finally:
            app.db.dispose()

    # -- helpers -----------------------------------------------------------------------------------
    def page_size(self, info: AdapterInfo, sandbox: Any) -> int:
        return int(sandbox.page_size) if hasattr(sandbox, "page_size") else info.page_size

    def pull(
        self,
        hooks: AdapterHooks,
        product: str,
        settings: Mapping[str, Any],
        since: dt.datetime | None,
        ctx: RequestContext,
        *,
        max_pages: int,
    ) -> list[list[ExternalUser]]:
        """Every page of a pull; fails (instead of hanging) past ``max_pages`` pages."""
        pages = []
        for page in hooks.pull_users(product, settings, since, ctx):
            pages.append(list(page.users))
            if len(pages) > max_pages:
                pytest.fail(f"the pull went past {max_pages} pages: it is looping on a page token")
        return pages

    def full(
        self,
        hooks: AdapterHooks,
        product: str,
        settings: Any,
        ctx: RequestContext,
        sandbox: Any,
        info: AdapterInfo,
        since: dt.datetime | None = None,
    ) -> list[ExternalUser]:
        n = len(sandbox.store.users) + len(getattr(sandbox, "extra", ()))
        cap = n // self.page_size(info, sandbox) + 1 + self.page_cap_margin
        return [
            u
            for page in self.pull(hooks, product, settings, since, ctx, max_pages=cap)
            for u in page
        ]

    # -- registration and metadata -----------------------------------------------------------------
    def test_registration_and_metadata(self, plugins: Plugins, info: AdapterInfo) -> None:
        assert plugins.problems == []
        assert info.products, "the adapter declares no product"
        for product in self.products:
            assert product in info.products, f"{product!r} is not among {info.products}"
            assert plugins.registry.get(product).info == info
        for product, features in info.features.items():
            assert product in info.products
            assert set(features) <= set(FEATURES), (
                f"unknown features {set(features) - set(FEATURES)}"
            )
        assert isinstance(info.version, str) and info.version

    def test_config_schema(self, info: AdapterInfo, sandbox: Any) -> None:
        schema = _schema(info)
        schema.validate(info.example_config, resolve_env=False)
        schema.validate(sandbox.settings(), resolve_env=False)
        with pytest.raises(BadInput):
            schema.validate({**sandbox.settings(), "no_such_setting_x": 1}, resolve_env=False)
        first = schema.fields[0]
        with pytest.raises(BadInput):
            schema.validate({**sandbox.settings(), first.name: object()}, resolve_env=False)

    # -- connection --------------------------------------------------------------------------------
    def test_connection_good(
        self, hooks: AdapterHooks, product: str, settings: Any, ctx: RequestContext
    ) -> None:
        assert hooks.check_connection(product, settings, ctx) is True
        assert ctx.retries == 0

    def test_connection_bad_credentials(
        self,
        hooks: AdapterHooks,
        product: str,
        info: AdapterInfo,
        sandbox: Any,
        ctx: RequestContext,
    ) -> None:
        bad = _schema(info).validate(sandbox.bad_settings(), resolve_env=False)
        with pytest.raises(AuthFailed) as raised:
            hooks.check_connection(product, bad, ctx)
        assert ctx.retries == 0, "bad credentials were retried"
        assert "\n" not in str(raised.value), "an error a user meets is one line"

    # -- pulls -------------------------------------------------------------------------------------
    def test_full_pull_pages(
        self,
        hooks: AdapterHooks,
        product: str,
        settings: Any,
        ctx: RequestContext,
        sandbox: Any,
        info: AdapterInfo,
    ) -> None:
        size = self.page_size(info, sandbox)
        missing = 3 * size + 1 - len(sandbox.store.users)
        if missing > 0:
            sandbox.store.add(missing)
        expected = {u.email for u in sandbox.store.users}
        cap = len(sandbox.store.users) // size + 1 + self.page_cap_margin
        pages = self.pull(hooks, product, settings, None, ctx, max_pages=cap)
        assert len(pages) >= 3, (
            f"{len(expected)} users at {size} a page came in {len(pages)} page(s)"
        )
        users = [u for page in pages for u in page]
        ids = [u.external_id for u in users]
        assert len(ids) == len(set(ids)), "the pull returned duplicates"
        assert {u.email for u in users} == expected

    def test_repeated_page_token(
        self,
        hooks: AdapterHooks,
        product: str,
        settings: Any,
        ctx: RequestContext,
        sandbox: Any,
        info: AdapterInfo,
    ) -> None:
        if not hasattr(sandbox, "repeat_page_token"):
            pytest.fail(
                "the sandbox has no `repeat_page_token` knob: add one, or skip this check with a "
                "reason in skip_checks"
            )
        sandbox.store.add(max(0, 2 * self.page_size(info, sandbox) - len(sandbox.store.users)))
        sandbox.repeat_page_token = True
        cap = len(sandbox.store.users) // self.page_size(info, sandbox) + 1 + self.page_cap_margin
        try:
            pages = self.pull(hooks, product, settings, None, ctx, max_pages=cap)
        except MalformedResponse:
            return
        ids = [u.external_id for page in pages for u in page]
        assert len(ids) == len(set(ids)), "a repeated page token produced duplicates"

    def test_two_full_pulls_identical(
        self,
        hooks: AdapterHooks,
        product: str,
        settings: Any,
        ctx: RequestContext,
        sandbox: Any,
        info: AdapterInfo,
    ) -> None:
        first = self.full(hooks, product, settings, ctx, sandbox, info)
        second = self.full(hooks, product, settings, ctx, sandbox, info)
        assert first, "a full pull returned nobody"
        assert first == second

    def test_incremental_pull(
        self,
        hooks: AdapterHooks,
        product: str,
        settings: Any,
        ctx: RequestContext,
        sandbox: Any,
        info: AdapterInfo,
    ) -> None:
        if not info.supports_cursor:
            pytest.fail("supports_cursor is False: skip this check with that reason in skip_checks")
        sandbox.store.change([2, 5])
        boundary = sandbox.store.by_number[2].modified_at  # the first change: exactly on `since`
        pulled = self.full(hooks, product, settings, ctx, sandbox, info, since=boundary)
        expected = {sandbox.store.by_number[n].email for n in (2, 5)}
        assert {u.email for u in pulled} == expected

    def test_far_future_since(
        self,
        hooks: AdapterHooks,
        product: str,
        settings: Any,
        ctx: RequestContext,
        sandbox: Any,
        info: AdapterInfo,
    ) -> None:
        if not info.supports_cursor:
            pytest.fail("supports_cursor is False: skip this check with that reason in skip_checks")
        later = sandbox.store.now + dt.timedelta(days=3650)
        assert self.full(hooks, product, settings, ctx, sandbox, info, since=later) == []

    def test_deactivated_users_inactive(
        self,
        hooks: AdapterHooks,
        product: str,
        settings: Any,
        ctx: RequestContext,
        sandbox: Any,
        info: AdapterInfo,
    ) -> None:
        sandbox.store.deactivate([3])
        gone = sandbox.store.by_number[3].email
        users = {u.email: u for u in self.full(hooks, product, settings, ctx, sandbox, info)}
        assert gone in users, "a full pull must return deactivated users too"
        assert users[gone].active is False
        assert all(u.active for email, u in users.items() if email != gone)

    # -- faults ------------------------------------------------------------------------------------
    def _after_first_page(
        self,
        hooks: AdapterHooks,
        product: str,
        settings: Any,
        ctx: RequestContext,
        sandbox: Any,
        info: AdapterInfo,
        fault: str,
        times: int,
    ) -> list[ExternalUser]:
        # The fault hits a page request, not the login some adapters make first.
        sandbox.store.add(max(0, 2 * self.page_size(info, sandbox) + 1 - len(sandbox.store.users)))
        pages = hooks.pull_users(product, settings, None, ctx)
        users = list(next(pages).users)
        sandbox.inject(fault, times)
        cap = len(sandbox.store.users) // self.page_size(info, sandbox) + 1 + self.page_cap_margin
        for n, page in enumerate(pages):
            users += page.users
            assert n < cap, "the pull is looping"
        return users

    def test_rate_limit_honours_retry_after(
        self,
        hooks: AdapterHooks,
        product: str,
        settings: Any,
        ctx: RequestContext,
        sandbox: Any,
        info: AdapterInfo,
        sleeps: SleepRecorder,
    ) -> None:
        if hasattr(sandbox, "retry_after"):
            sandbox.retry_after = 3
        expected = getattr(sandbox, "retry_after", None) or self.expected_retry_after
        if expected is None:
            pytest.fail("set expected_retry_after, or give the sandbox a `retry_after` knob")
        users = self._after_first_page(
            hooks, product, settings, ctx, sandbox, info, "rate_limit", 1
        )
        assert {u.email for u in users} == {u.email for u in sandbox.store.users}
        assert ctx.retries == 1
        assert sleeps.delays == [pytest.approx(float(expected))]

    def test_server_errors_retried_then_fail(
        self,
        hooks: AdapterHooks,
        product: str,
        settings: Any,
        ctx: RequestContext,
        sandbox: Any,
        info: AdapterInfo,
        sleeps: SleepRecorder,
    ) -> None:
        attempts = ctx.policy.attempts
        with pytest.raises(TransientError) as raised:
            self._after_first_page(
                hooks, product, settings, ctx, sandbox, info, "server_error", attempts
            )
        assert ctx.retries == attempts - 1
        assert len(sleeps.delays) == attempts - 1
        assert "\n" not in str(raised.value)

    def test_server_error_recovers(
        self,
        hooks: AdapterHooks,
        product: str,
        settings: Any,
        ctx: RequestContext,
        sandbox: Any,
        info: AdapterInfo,
    ) -> None:
        users = self._after_first_page(
            hooks, product, settings, ctx, sandbox, info, "server_error", 1
        )
        assert {u.email for u in users} == {u.email for u in sandbox.store.users}
        assert ctx.retries == 1

    def test_malformed_page(
        self,
        hooks: AdapterHooks,
        product: str,
        settings: Any,
        ctx: RequestContext,
        sandbox: Any,
        info: AdapterInfo,
    ) -> None:
        with pytest.raises(MalformedResponse) as raised:
            self._after_first_page(hooks, product, settings, ctx, sandbox, info, "malformed", 1)
        assert ctx.retries == 0, "a malformed page is not retried"
        assert "\n" not in str(raised.value)

    # -- secrets -----------------------------------------------------------------------------------
    def test_secret_never_leaks(
        self,
        hooks: AdapterHooks,
        product: str,
        info: AdapterInfo,
        sandbox: Any,
        ctx: RequestContext,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        schema = _schema(info)
        raw = dict(sandbox.settings())
        secret_fields = [f.name for f in schema.fields if f.secret and f.name in raw]
        assert secret_fields, "the sandbox settings fill no secret field of the schema"
        for name in secret_fields:
            raw[name] = SENTINEL
        caplog.set_level(logging.DEBUG)
        settings = schema.validate(raw, resolve_env=False)
        assert all(isinstance(settings[name], Secret) for name in secret_fields)
        shown = [str(settings), repr(settings)]
        for call in (
            lambda: hooks.check_connection(product, settings, ctx),
            lambda: list(hooks.pull_users(product, settings, None, ctx)),
        ):
            try:
                call()
            except AdapterError as exc:
                shown += _chain(exc)
        assert shown[2:], "the sentinel credentials were accepted: the sandbox must refuse them"
        shown.append(caplog.text)
        for text in shown:
            assert SENTINEL not in text

    # -- through the sync engine (issue 12) ---------------------------------------------------------
    def _pulled_in_order(
        self,
        hooks: AdapterHooks,
        product: str,
        settings: Any,
        ctx: RequestContext,
        sandbox: Any,
        info: AdapterInfo,
    ) -> list[ExternalUser]:
        return self.full(hooks, product, settings, ctx, sandbox, info)

    def test_sync_two_records_of_one_person(
        self,
        hooks: AdapterHooks,
        product: str,
        settings: Any,
        ctx: RequestContext,
        sandbox: Any,
        info: AdapterInfo,
        engine: Engine,
    ) -> None:
        """Two CRM records with one email (in other capitals): one rule, identical in full and
        incremental pulls — an active record wins over an inactive one, between two active ones
        the established link stays, the other is quarantined (``duplicate_email``) and never
        changes the person's user."""
        users = self._pulled_in_order(hooks, product, settings, ctx, sandbox, info)
        numbers = {u.email: u.number for u in sandbox.store.users}
        pair = [u for u in users if u.active and u.email in numbers][:2]
        assert len(pair) == 2, "the sandbox's pull has fewer than two active users"
        email = pair[0].email
        assert email is not None and pair[1].email is not None
        twin = numbers[pair[1].email]
        sandbox.store.change([twin], email=_other_capitals(email))
        ids = {numbers[str(u.email)]: u.external_id for u in pair}
        first_n = numbers[email]
        # Both active, neither linked yet: the first the pull returns wins (computed, not
        # assumed: a CRM may return the pair in either order).
        order = [
            u.external_id
            for u in self._pulled_in_order(hooks, product, settings, ctx, sandbox, info)
        ]
        winner_n, loser_n = sorted((first_n, twin), key=lambda n: order.index(ids[n]))

        def holds(summary: Any, *, loser: int, why: str) -> None:
            assert summary.outcome == "succeeded", summary.message
            assert engine.agents().get(email) is True, f"{why}: the person lost agent access"
            assert engine.quarantined(summary_run(engine)).get(ids[loser]) == "duplicate_email", (
                f"{why}: the losing record was not quarantined as duplicate_email"
            )

        holds(engine.sync(full=True), loser=loser_n, why="a full pull")
        # The losing twin is archived in the CRM: the established link stays, nothing changes.
        sandbox.store.deactivate([loser_n])
        holds(engine.sync(), loser=loser_n, why="an incremental pull after archiving the loser")
        holds(engine.sync(full=True), loser=loser_n, why="a full pull after archiving the loser")
        # Now the established record is deactivated and the other one active again: the active
        # record wins, in full and incremental pulls alike, run after run.
        sandbox.store.deactivate([winner_n])
        sandbox.store.change([loser_n], active=True)
        for full in (False, True, False, True):
            holds(engine.sync(full=full), loser=winner_n, why=f"full={full} after the swap")

    def test_sync_unreadable_record_quarantined(
        self,
        product: str,
        sandbox: Any,
        engine: Engine,
    ) -> None:
        """A record with a field value its adapter cannot read (the sandbox's ``unreadable``
        raw values, given to one user through ``set_raw``) is quarantined as
        ``malformed_record`` and the rest of the pull goes on, in full and incremental pulls;
        its user, synced before, is not deactivated by a full pull (its id counts as seen)."""
        raw = getattr(sandbox, "unreadable", None)
        if raw is None or not hasattr(sandbox, "set_raw"):
            pytest.fail(
                "give the sandbox `unreadable` (raw field values the adapter cannot read) and "
                "`set_raw(number, fields)` (see seatgate.core.plugins.Sandbox)"
            )
        first = engine.sync(full=True)
        assert first.outcome == "succeeded", first.message
        victim = [u for u in sandbox.store.users if u.active][1]
        assert engine.agents().get(victim.email) is True
        sandbox.set_raw(victim.number, raw)
        for full in (True, False, True):
            summary = engine.sync(full=full)
            assert summary.outcome == "succeeded", (
                f"one unreadable record failed the pull (full={full}): {summary.message}"
            )
            run = summary_run(engine)
            rows = engine.app.sync.quarantined(run) if run is not None else []
            assert [(q["email"], q["reason"]) for q in rows] == [
                (victim.email, "malformed_record")
            ], f"full={full}: the unreadable record was not quarantined as malformed_record"
            assert rows[0]["external_id"], "the unreadable record was quarantined without its id"
            agents = engine.agents()
            assert agents.get(victim.email) is True, (
                f"full={full}: a record its adapter could not read deactivated its user"
            )
            others = {u.email for u in sandbox.store.users if u.active} - {victim.email}
            assert all(agents.get(e) is True for e in others), "the rest of the pull was lost"

    def test_sync_empty_or_emptying_full_pull_halts(
        self,
        product: str,
        sandbox: Any,
        engine: Engine,
    ) -> None:
        """A full pull that returns no user while the connector has active users halts, whatever
        the guard's minimum, and so does a pull that would deactivate every active user; the
        halt says how to proceed, and nothing is written."""
        first = engine.sync(full=True)
        assert first.outcome == "succeeded", first.message
        before = engine.agents()
        assert before and any(before.values())
        everyone = [u.number for u in sandbox.store.users]
        sandbox.store.deactivate(everyone)
        halted = engine.sync(full=True)
        assert halted.outcome == "halted", "a pull deactivating every active user went through"
        assert "force" in halted.summary.message and halted.remedy == "force"
        assert engine.agents() == before, "a halted run changed the agent directory"
        kept = list(sandbox.store.users)
        sandbox.store.users = []
        sandbox.store.by_number = {}
        try:
            empty = engine.sync(full=True)
        finally:
            sandbox.store.users = kept
            sandbox.store.by_number = {u.number: u for u in kept}
        assert empty.outcome == "halted", "an empty full pull deprovisioned the account"
        assert "force" in empty.summary.message, empty.summary.message
        if empty.summary.pulled == 0:
            assert "no user" in empty.summary.message, empty.summary.message
        assert engine.agents() == before

    def test_sync_reads_a_late_commit_by_its_lookback(
        self,
        product: str,
        sandbox: Any,
        info: AdapterInfo,
        engine: Engine,
    ) -> None:
        """A change committed after a pull with an older stamp than the cursor is read by the
        next incremental pull (the adapter's lookback window); reading it again changes
        nothing."""
        if not info.supports_cursor:
            pytest.fail("supports_cursor is False: skip this check with that reason in skip_checks")
        assert info.lookback_seconds >= 2, "lookback_seconds: declare the CRM's window"
        assert engine.sync(full=True).outcome == "succeeded"
        agents = engine.agents()
        numbers = {u.email: u.number for u in sandbox.store.users}
        late_email = next(e for e in sorted(agents) if agents[e] and e in numbers)
        late = numbers[late_email]
        sandbox.store.advance(info.lookback_seconds * 2)
        moved = next(n for e, n in sorted(numbers.items()) if n != late and agents.get(e))
        sandbox.store.change([moved])
        cursor_run = engine.sync()
        assert cursor_run.outcome == "succeeded" and cursor_run.summary.full is False
        # Committed now, stamped half a window before the change the cursor moved to.
        stamp = sandbox.store.by_number[moved].modified_at - dt.timedelta(
            seconds=info.lookback_seconds // 2
        )
        sandbox.store.commit_late(late, stamp.replace(microsecond=0), active=False)
        seen = engine.sync()
        assert seen.outcome == "succeeded" and seen.summary.full is False
        assert engine.agents().get(late_email) is False, "the late change was never read"
        again = engine.sync()
        s = again.summary
        assert (s.outcome, s.full, s.created, s.updated, s.deactivated, s.seated) == (
            "succeeded",
            False,
            0,
            0,
            0,
            0,
        ), "re-reading records already applied changed something"

    # -- install -----------------------------------------------------------------------------------
    def test_install_idempotent_uninstall_reverses(
        self, hooks: AdapterHooks, product: str, settings: Any, sandbox: Any
    ) -> None:
        before = set(sandbox.installations)
        assert hooks.install("acct-kit", product, settings) is True
        once = set(sandbox.installations)
        assert once != before, "install left no trace in sandbox.installations"
        assert hooks.install("acct-kit", product, settings) is True
        assert sandbox.installations == once, "a second install changed the CRM side"
        assert hooks.uninstall("acct-kit", product, settings) is True
        assert sandbox.installations == before
        assert hooks.uninstall("acct-kit", product, settings) is True
        assert sandbox.installations == before


def _other_capitals(email: str) -> str:
    """The same address in other capitals (``Sophie@X.Example`` for ``sophie@x.example``)."""
    return "".join(c.upper() if i % 2 == 0 else c.lower() for i, c in enumerate(email)).swapcase()


def summary_run(engine: Engine) -> int | None:
    """The id of the engine's latest run."""
    runs = engine.app.sync.runs(KIT_ACCOUNT, engine.product, 1)
    return int(runs[0]["id"]) if runs else None


def _schema(info: AdapterInfo) -> ConfigSchema:
    assert isinstance(info.config_schema, ConfigSchema), "config_schema is not a ConfigSchema"
    return info.config_schema


def _info(plugin: Any) -> AdapterInfo:
    info = plugin.seatgate_adapter_info()
    assert isinstance(info, AdapterInfo)
    return info


def _chain(exc: BaseException) -> list[str]:
    # A client library's exception under ours may carry the request (and its credentials).
    out: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        out += [str(current), repr(current), *(repr(a) for a in current.args)]
        current = current.__cause__ or current.__context__
    return out
