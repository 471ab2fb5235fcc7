"""The adapter conformance kit: a base test class an adapter's test module subclasses.

    from seatgate.adapters.acme import plugin
    from seatgate.adapters.acme.sandbox import SANDBOX
    from seatgate.core.testing import AdapterConformance

    class TestAcmeConformance(AdapterConformance):
        plugin = plugin
        sandbox_class = SANDBOX
        products = ("acme",)
        skip_checks = {"test_repeated_page_token": "Acme pages by offset; it has no page token"}

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
from typing import Any, ClassVar

import pytest

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

__all__ = ["SENTINEL", "AdapterConformance", "SleepRecorder"]

SENTINEL = "S3NT1NEL-secret-7d1f0c"


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
