"""The sync engine against the in-memory adapter: each step of a run, the deletion guard,
failures in the middle, quarantine, auto install, the agent_sync gate and listener isolation."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
import sqlalchemy as sa

from seatgate.core.bootstrap import App
from seatgate.core.clock import FixedClock, parse_instant
from seatgate.core.entrypoints.cli import remedy_text
from seatgate.core.errors import Conflict, TransientError
from seatgate.core.plugins import (
    ExternalUser,
    RequestContext,
    RetryPolicy,
    SyncSummary,
    UserPage,
    hookimpl,
)
from seatgate.core.storage.tables import (
    auto_install_waiting,
    external_ids,
    integration_users,
    sync_cursors,
    sync_quarantine,
    sync_runs,
)
from seatgate.core.testing.memory import MemoryAdapter, MemorySandbox

from .conftest import ACCOUNT, ADMIN, Sleeps, make_app, memory_plugins

P = "memory"


def users_in_db(app: App) -> dict[str, tuple[str, bool]]:
    with app.db.read() as conn:
        rows = conn.execute(
            sa.select(
                integration_users.c.email, integration_users.c.name, integration_users.c.active
            )
        )
        return {r.email: (r.name, r.active) for r in rows}


def cursor_of(app: App) -> Any:
    with app.db.read() as conn:
        return conn.execute(sa.select(sync_cursors)).first()


def run_rows(app: App) -> list[Any]:
    with app.db.read() as conn:
        return conn.execute(sa.select(sync_runs).order_by(sync_runs.c.id)).all()


def drop_users(crm: MemorySandbox, numbers: set[int]) -> None:
    """The CRM deletes users outright (a full pull no longer returns them)."""
    crm.store.users = [u for u in crm.store.users if u.number not in numbers]


# -- pull, reconcile, cursor -----------------------------------------------------------------------
def test_first_sync_creates_users_links_agents_and_commits_cursor(
    installed: Callable[..., App], crm: MemorySandbox, retry: RetryPolicy
) -> None:
    app = installed()
    result = app.sync.sync(ACCOUNT, P, retry=retry)
    assert result.outcome == "succeeded"
    assert set(result.as_dict()) == {
        "outcome", "pulled", "created", "updated", "deactivated", "quarantined", "seated",
        "gated", "agents_synced", "requests", "retries", "seconds",
    }  # fmt: skip
    s = result.summary
    assert (s.full, s.pulled, s.created, s.updated, s.deactivated) == (True, 40, 40, 0, 0)
    assert s.requests == 1 and s.retries == 0
    db_users = users_in_db(app)
    assert len(db_users) == 40 and db_users["user000007@example.com"][1] is True
    with app.db.read() as conn:
        links = conn.execute(sa.select(sa.func.count()).select_from(external_ids)).scalar()
        directory = app.sync.agents(ACCOUNT, P)
    assert links == 40
    # 2026-02-01 is the transition phase in the US: unseated users keep access (grace).
    assert s.agents_synced == 40 and s.gated == 0
    assert len(directory) == 40 and all(a["active"] for a in directory)
    assert cursor_of(app).cursor == crm.store.now  # the newest change stamp seen
    [run] = run_rows(app)
    assert (run.outcome, run.pulled, run.created, run.agents_synced) == ("succeeded", 40, 40, 40)


def test_second_run_is_incremental_and_updates_only_changes(
    installed: Callable[..., App], crm: MemorySandbox
) -> None:
    app = installed()
    app.sync.sync(ACCOUNT, P)
    crm.store.change([3, 4, 5], last_name="Renamed")
    result = app.sync.sync(ACCOUNT, P)
    s = result.summary
    assert s.full is False
    # The pull starts the adapter's lookback window (300 s) before the cursor: the 40 users,
    # stamped one second apart, all come back; re-reading those unchanged changes nothing.
    assert s.pulled == 40 and s.updated == 3 and s.created == 0
    assert users_in_db(app)["user000004@example.com"][0].endswith("Renamed")
    assert cursor_of(app).cursor == crm.store.now


def test_cursor_never_moves_past_the_runs_start(
    installed: Callable[..., App], crm: MemorySandbox, clock: FixedClock
) -> None:
    app = installed()
    # The CRM's stamps run to 2025-01-01T00:00:40Z; the run starts 20 s before the newest one.
    clock.set(parse_instant("2025-01-01T00:00:20Z"))
    app.sync.sync(ACCOUNT, P)
    assert cursor_of(app).cursor == parse_instant("2025-01-01T00:00:20Z")


def test_full_pull_every_n_runs_and_on_demand(installed: Callable[..., App]) -> None:
    app = installed(full_every=3)
    kinds = [app.sync.sync(ACCOUNT, P).summary.full for _ in range(4)]
    assert kinds == [True, False, False, True]
    assert app.sync.sync(ACCOUNT, P, full=True).summary.full is True


def test_dry_run_writes_nothing(installed: Callable[..., App]) -> None:
    app = installed()
    result = app.sync.sync(ACCOUNT, P, dry_run=True)
    assert result.outcome == "succeeded" and result.summary.created == 40
    assert result.run_id is None
    assert users_in_db(app) == {} and cursor_of(app) is None and run_rows(app) == []


# -- validation and quarantine ---------------------------------------------------------------------
def test_bad_records_are_quarantined_and_the_run_goes_on(
    installed: Callable[..., App], crm: MemorySandbox
) -> None:
    app = installed()
    app.sync.sync(ACCOUNT, P)
    stamp = crm.store.now
    crm.extra = [
        ExternalUser("x-1", "not-an-email", modified_at=stamp),
        ExternalUser("", "nobody@example.com", modified_at=stamp),
        ExternalUser("x-2", None, modified_at=stamp),
        ExternalUser("mem-0000001", "dup-id@example.com", modified_at=stamp),  # id seen already
        ExternalUser("x-3", "USER000002@example.com", modified_at=stamp),  # email of mem-0000002
        ExternalUser("x-4", "fresh@example.com", name="Fresh", modified_at=stamp),
    ]
    result = app.sync.sync(ACCOUNT, P, full=True)
    assert result.outcome == "succeeded"
    assert result.summary.quarantined == 5 and result.summary.created == 1
    assert result.quarantine_reasons == {
        "bad_email": 1, "missing_id": 1, "missing_email": 1, "duplicate_id": 1,
        "duplicate_email": 1,
    }  # fmt: skip
    with app.db.read() as conn:
        reasons = sorted(r.reason for r in conn.execute(sa.select(sync_quarantine)))
    assert len(reasons) == 5 and "bad_email" in reasons
    assert "fresh@example.com" in users_in_db(app)
    assert result.summary.deactivated == 0


def test_a_known_user_whose_record_turns_bad_is_not_deactivated(
    installed: Callable[..., App], crm: MemorySandbox
) -> None:
    app = installed()
    app.sync.sync(ACCOUNT, P)
    crm.store.change([9], email="broken-address")
    result = app.sync.sync(ACCOUNT, P, full=True)
    assert result.summary.quarantined == 1 and result.summary.deactivated == 0
    assert users_in_db(app)["user000009@example.com"][1] is True


# -- deactivation and the deletion guard -----------------------------------------------------------
def test_deactivation_only_from_a_full_pull(
    installed: Callable[..., App], crm: MemorySandbox
) -> None:
    app = installed()
    app.sync.sync(ACCOUNT, P)
    drop_users(crm, {1, 2, 3})
    assert app.sync.sync(ACCOUNT, P).summary.deactivated == 0  # incremental: absence means nothing
    result = app.sync.sync(ACCOUNT, P, full=True)
    assert result.summary.deactivated == 3  # 3 < 5: under the guard's minimum
    db_users = users_in_db(app)
    assert [e for e, (_, active) in db_users.items() if not active] == [
        "user000001@example.com",
        "user000002@example.com",
        "user000003@example.com",
    ]
    directory = {a["email"]: a["active"] for a in app.sync.agents(ACCOUNT, P)}
    assert directory["user000001@example.com"] is False
    assert directory["user000004@example.com"] is True


def test_a_crm_deactivation_comes_through_incrementally(
    installed: Callable[..., App], crm: MemorySandbox
) -> None:
    app = installed()
    app.sync.sync(ACCOUNT, P)
    crm.store.deactivate([5])
    result = app.sync.sync(ACCOUNT, P)
    assert result.summary.updated == 1
    assert users_in_db(app)["user000005@example.com"][1] is False


def test_deletion_guard_halts_before_writing_and_force_proceeds(
    installed: Callable[..., App], crm: MemorySandbox
) -> None:
    app = installed()
    app.sync.sync(ACCOUNT, P)
    before_cursor = cursor_of(app)
    drop_users(crm, set(range(1, 11)))  # 10 of 40 = 25% > 10%, and >= 5
    crm.store.change([20], last_name="Changed")
    halted = app.sync.sync(ACCOUNT, P, full=True)
    assert halted.outcome == "halted"
    assert "10 of 40" in halted.summary.message and halted.remedy == "force"
    assert "--force" in remedy_text(halted.remedy, {})  # how the CLI says it
    assert halted.summary.deactivated == 0 and halted.summary.updated == 0
    db_users = users_in_db(app)
    assert all(active for _, active in db_users.values())
    assert not db_users["user000020@example.com"][0].endswith("Changed")  # nothing written
    assert cursor_of(app) == before_cursor
    assert run_rows(app)[-1].outcome == "halted"
    forced = app.sync.sync(ACCOUNT, P, full=True, force=True)
    assert forced.outcome == "succeeded" and forced.summary.deactivated == 10
    assert sum(1 for _, active in users_in_db(app).values() if not active) == 10


def test_deletion_guard_share_and_minimum_are_configurable(
    installed: Callable[..., App], crm: MemorySandbox
) -> None:
    app = installed(deletion_guard_share=0.5, deletion_guard_min=2)
    app.sync.sync(ACCOUNT, P)
    drop_users(crm, set(range(1, 11)))  # 25% < 50%
    assert app.sync.sync(ACCOUNT, P, full=True).summary.deactivated == 10


# -- failures in the middle ------------------------------------------------------------------------
class CrashingAdapter(MemoryAdapter):
    """The memory adapter, but the pull dies after ``pages`` pages (a crash between pull and
    commit). ``pages=None`` behaves normally."""

    def __init__(self) -> None:
        self.pages: int | None = None

    @hookimpl
    def seatgate_pull_users(
        self,
        product: str,
        settings: Mapping[str, Any],
        since: dt.datetime | None,
        ctx: RequestContext,
    ) -> Iterator[UserPage]:
        inner = super().seatgate_pull_users(product, settings, since, ctx)
        limit = self.pages

        def pages() -> Iterator[UserPage]:
            for n, page in enumerate(inner):
                if limit is not None and n == limit:
                    raise RuntimeError("the worker was killed mid-pull")
                yield page

        return pages()


@pytest.fixture
def crashing(
    db_url: str, clock: FixedClock, crm: MemorySandbox, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[App, CrashingAdapter]]:
    from .conftest import KEY_ENV, memory_config, setup_account

    adapter = CrashingAdapter()
    app = make_app(db_url, clock, memory_plugins(adapter=adapter))
    monkeypatch.setenv(KEY_ENV, crm.settings()["api_key"])
    setup_account(app)

    app.installs.install(ACCOUNT, P, memory_config(crm, page_size=10), ADMIN)
    yield app, adapter
    app.db.dispose()


def test_crash_after_some_pages_loses_nothing_and_a_rerun_converges(
    crashing: tuple[App, CrashingAdapter], crm: MemorySandbox
) -> None:
    app, adapter = crashing
    adapter.pages = 2  # 20 of 40 users pulled and reconciled, then the crash
    failed = app.sync.sync(ACCOUNT, P)
    assert failed.outcome == "failed" and failed.summary.pulled == 20
    assert "killed mid-pull" in failed.summary.message
    assert users_in_db(app) == {} and cursor_of(app) is None
    assert [r.outcome for r in run_rows(app)] == ["failed"]
    adapter.pages = None
    assert app.sync.sync(ACCOUNT, P).summary.created == 40
    good_cursor = cursor_of(app)

    crm.store.change(range(1, 41), last_name="Moved")  # every user changes
    adapter.pages = 3
    assert app.sync.sync(ACCOUNT, P).outcome == "failed"
    assert not any(n.endswith("Moved") for n, _ in users_in_db(app).values())
    assert cursor_of(app) == good_cursor  # unchanged: the next run pulls the changes again
    adapter.pages = None
    rerun = app.sync.sync(ACCOUNT, P)
    assert rerun.summary.updated == 40
    assert all(n.endswith("Moved") for n, _ in users_in_db(app).values())
    assert cursor_of(app).cursor == crm.store.now


def test_a_spent_quota_ends_the_run_without_retries_and_removes_nothing(
    installed: Callable[..., App], crm: MemorySandbox, retry: RetryPolicy, sleeps: Sleeps
) -> None:
    app = installed()
    app.sync.sync(ACCOUNT, P, retry=retry)
    before = cursor_of(app)
    drop_users(crm, {1})
    crm.inject("quota")
    result = app.sync.sync(ACCOUNT, P, full=True, retry=retry)
    assert result.outcome == "failed" and "quota" in result.summary.message
    assert result.summary.retries == 0 and sleeps == []
    assert all(active for _, active in users_in_db(app).values())
    assert cursor_of(app) == before


def test_transient_errors_are_retried_with_backoff(
    installed: Callable[..., App], crm: MemorySandbox, retry: RetryPolicy, sleeps: Sleeps
) -> None:
    app = installed()
    crm.inject("server_error")
    crm.inject("rate_limit")
    result = app.sync.sync(ACCOUNT, P, retry=retry)
    assert result.outcome == "succeeded" and result.summary.retries == 2
    assert result.summary.requests == 3
    assert sleeps[1] == crm.retry_after  # Retry-After honoured


# -- the disabled adapter --------------------------------------------------------------------------
def test_disabled_adapter_does_not_sync_and_checks_answer_adapter_disabled(
    installed: Callable[..., App],
) -> None:
    app = installed()
    app.sync.sync(ACCOUNT, P)
    assert app.check(ACCOUNT, P, "user000001@example.com", "cti").allowed
    assert app.installs.set_enabled(ACCOUNT, P, False, ADMIN) is True
    decision = app.check(ACCOUNT, P, "user000001@example.com", "cti")
    assert (decision.allowed, decision.reason) == (False, "adapter_disabled")
    with pytest.raises(Conflict, match="disabled"):
        app.sync.sync(ACCOUNT, P)
    assert app.sync.run_due() == []  # not due while disabled
    assert app.installs.set_enabled(ACCOUNT, P, True, ADMIN) is True
    assert app.check(ACCOUNT, P, "user000001@example.com", "cti").reason == "grace"
    assert app.sync.sync(ACCOUNT, P).outcome == "succeeded"


# -- auto install, the gate and the overage lock ---------------------------------------------------
class Recorder:
    def __init__(self) -> None:
        self.activations: list[str] = []
        self.agents: list[str] = []
        self.finished: list[SyncSummary] = []

    @hookimpl
    def seatgate_activation_reported(
        self, account: str, product: str, emails: Any, at: Any
    ) -> None:
        self.activations.extend(emails)

    @hookimpl
    def seatgate_agents_written(self, account: str, product: str, agents: Any, at: Any) -> None:
        self.agents.extend(a.email for a in agents if a.active)

    @hookimpl
    def seatgate_sync_finished(self, summary: SyncSummary) -> None:
        self.finished.append(summary)


class Broken:
    @hookimpl
    def seatgate_agents_written(self, account: str, product: str, agents: Any, at: Any) -> None:
        raise RuntimeError("the other directory is down")

    @hookimpl
    def seatgate_sync_finished(self, summary: SyncSummary) -> None:
        raise RuntimeError("metrics are down")


@pytest.fixture
def recorder_app(
    db_url: str, clock: FixedClock, crm: MemorySandbox, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[App, Recorder]]:
    recorder = Recorder()
    app = make_app(db_url, clock, memory_plugins(("broken", Broken()), ("recorder", recorder)))
    from .conftest import KEY_ENV

    monkeypatch.setenv(KEY_ENV, crm.settings()["api_key"])
    yield app, recorder
    app.db.dispose()


def _install(app: App, crm: MemorySandbox, *, seats_: int, **core: Any) -> None:

    from .conftest import memory_config, setup_account

    setup_account(app, seats=seats_)
    app.installs.install(ACCOUNT, P, memory_config(crm, **core), ADMIN)


def test_a_failing_listener_stops_neither_the_run_nor_the_other_listeners(
    recorder_app: tuple[App, Recorder], crm: MemorySandbox, caplog: pytest.LogCaptureFixture
) -> None:
    app, recorder = recorder_app
    _install(app, crm, seats_=100)
    result = app.sync.sync(ACCOUNT, P)
    assert result.outcome == "succeeded"
    assert len(recorder.agents) == 40 and recorder.finished[-1].outcome == "succeeded"
    assert "listener broken failed in seatgate_sync_finished" in caplog.text
    assert "listener broken failed in seatgate_agents_written" in caplog.text
    assert users_in_db(app) and cursor_of(app) is not None


def test_auto_install_up_to_capacity_in_hard_cap_the_rest_wait(
    recorder_app: tuple[App, Recorder], crm: MemorySandbox, clock: FixedClock
) -> None:
    app, recorder = recorder_app
    _install(app, crm, seats_=5, activated_roles=["Agent"])  # 20 of the 40 users are Agents
    first = app.sync.sync(ACCOUNT, P)
    assert first.summary.seated == 5 and first.waiting == 15
    assert "15 users wait" in first.summary.message
    assert len(app.seats.seated_emails(ACCOUNT, P)) == 5
    with app.db.read() as conn:
        waiting = conn.execute(sa.select(sa.func.count()).select_from(auto_install_waiting))
        assert waiting.scalar() == 15
    assert len(recorder.activations) == 5
    # More seats bought: the next run (no CRM change at all) seats the longest-waiting users.
    app.contracts.set_quantity(ACCOUNT, P, 12, None)
    second = app.sync.sync(ACCOUNT, P)
    assert second.summary.seated == 7 and second.waiting == 8
    assert len(recorder.activations) == 12
    # A user who loses the role leaves the waiting list.
    with app.db.read() as conn:
        first_waiting = conn.execute(
            sa.select(sa.func.min(integration_users.c.email)).join(
                auto_install_waiting, auto_install_waiting.c.user_id == integration_users.c.id
            )
        ).scalar()
    crm.store.change([int(first_waiting[4:10])], roles=["Admin"])
    third = app.sync.sync(ACCOUNT, P)
    assert third.waiting == 7 and third.summary.seated == 0


def _twins_then_another() -> list[ExternalUser]:
    """Pull order: an inactive record of twin@, its active twin, then another Agent. twin@'s
    first record is inactive, so its email is weighed at the end of the pull."""
    return [
        ExternalUser("r1", "Twin@Example.com", "Twin", False, ("Agent",)),
        ExternalUser("r2", "twin@example.com", "Twin", True, ("Agent",)),
        ExternalUser("r3", "later@example.com", "Later", True, ("Agent",)),
    ]


def test_auto_install_offers_seats_in_pull_order_however_each_email_is_decided(
    installed: Callable[..., App], crm: MemorySandbox
) -> None:
    """Seed 002 auto install: in pull order up to capacity; twin@ comes first in the pull."""
    crm.store.users = []
    crm.extra = _twins_then_another()
    app = installed(seats=1, activated_roles=["Agent"])
    result = app.sync.sync(ACCOUNT, P)
    assert (result.summary.seated, result.waiting) == (1, 1)
    assert app.seats.seated_emails(ACCOUNT, P) == ["twin@example.com"]


def test_a_run_dying_before_its_auto_install_seats_on_rerun_whom_a_clean_run_seats(
    installed: Callable[..., App], crm: MemorySandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dead run wrote its users as waiting (pending); the rerun offers them seats in pull
    order, as the clean run of the test above does, not by when they began to wait."""
    from seatgate.core.services import sync as sync_service

    crm.store.users = []
    crm.extra = _twins_then_another()
    app = installed(seats=1, activated_roles=["Agent"])
    real = sync_service.assign_seats
    monkeypatch.setattr(
        sync_service, "assign_seats", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full"))
    )
    assert app.sync.sync(ACCOUNT, P).outcome == "failed"
    monkeypatch.setattr(sync_service, "assign_seats", real)
    again = app.sync.sync(ACCOUNT, P)
    assert again.outcome == "succeeded" and again.summary.seated == 1
    assert app.seats.seated_emails(ACCOUNT, P) == ["twin@example.com"]


def test_restricted_phase_gates_unseated_users_out_of_agent_sync(
    installed: Callable[..., App], clock: FixedClock
) -> None:
    clock.set(parse_instant("2026-04-01T12:00:00Z"))  # after the 2026-03-16 restriction date
    app = installed(seats=10, activated_roles=["Agent"])
    result = app.sync.sync(ACCOUNT, P)
    s = result.summary
    assert s.seated == 10 and s.agents_synced == 10 and s.gated == 30
    directory = app.sync.agents(ACCOUNT, P)
    assert len(directory) == 10 and all(a["active"] for a in directory)


def test_in_overage_no_new_agent_is_added_existing_ones_go_on(
    installed: Callable[..., App], crm: MemorySandbox
) -> None:
    app = installed(seats=12)
    app.sync.sync(ACCOUNT, P)  # transition: all 40 are agents (grace)
    emails = [f"user{n:06d}@example.com" for n in range(1, 13)]
    app.assign(ACCOUNT, P, emails, ADMIN)
    app.contracts.set_quantity(ACCOUNT, P, 10, None)  # 12 seated > 10: in overage
    crm.store.add(3)
    crm.store.change([30], last_name="StillHere")
    result = app.sync.sync(ACCOUNT, P)
    assert result.summary.created == 3 and result.summary.gated == 3
    directory = {a["email"]: a["active"] for a in app.sync.agents(ACCOUNT, P)}
    assert "user000041@example.com" not in directory
    assert directory["user000030@example.com"] is True  # an existing agent, unseated, goes on


def test_sync_due_runs_what_is_due_and_one_failure_does_not_stop_the_rest(
    installed: Callable[..., App], crm: MemorySandbox, clock: FixedClock
) -> None:
    app = installed(sync_interval_minutes=30)
    # A second account whose CRM is gone: its run fails, the first account's still runs.

    from .conftest import memory_config

    with MemorySandbox(users=5) as other_crm:
        app.accounts.create("globex", "US")
        app.accounts.grant("globex", ADMIN, "install", None)
        import os

        os.environ["MEMORY_CRM_OTHER_TEST_KEY"] = other_crm.settings()["api_key"]
        try:
            config = {**memory_config(other_crm), "api_key": "${MEMORY_CRM_OTHER_TEST_KEY}"}
            app.installs.install("globex", P, config, ADMIN)
        finally:
            del os.environ["MEMORY_CRM_OTHER_TEST_KEY"]
        results = {r.account: r for r in app.sync.run_due()}
    assert results[ACCOUNT].outcome == "succeeded"
    assert (
        results["globex"].outcome == "error"
        and "MEMORY_CRM_OTHER_TEST_KEY" in results["globex"].message
    )
    assert app.sync.run_due() == [r for r in app.sync.run_due() if r.account == "globex"]
    clock.advance(minutes=31)
    again = {r.account: r.outcome for r in app.sync.run_due()}
    assert again[ACCOUNT] == "succeeded"


def test_due_uninstall_runs_the_adapters_uninstall_hook_once(
    installed: Callable[..., App], crm: MemorySandbox, clock: FixedClock
) -> None:
    from seatgate.core.storage.tables import installations

    app = installed()
    assert f"{ACCOUNT}:{P}" in crm.installations
    with app.db.write() as conn:
        conn.execute(installations.update().values(uninstall_effective=dt.date(2026, 12, 31)))
    app.sync.run_due()
    assert f"{ACCOUNT}:{P}" in crm.installations  # not yet
    clock.set(parse_instant("2026-12-31T00:00:01Z"))
    app.sync.run_due()
    assert f"{ACCOUNT}:{P}" not in crm.installations
    crm.installations.add(f"{ACCOUNT}:{P}")
    assert app.sync.run_due() == []  # done once; and the connector no longer syncs
    assert f"{ACCOUNT}:{P}" in crm.installations
    with pytest.raises(Conflict):
        app.sync.sync(ACCOUNT, P)


def test_a_failure_message_never_carries_the_secret(
    db_url: str, clock: FixedClock, crm: MemorySandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Leaky(MemoryAdapter):
        @hookimpl
        def seatgate_pull_users(
            self, product: str, settings: Mapping[str, Any], since: Any, ctx: RequestContext
        ) -> Iterator[UserPage]:
            raise TransientError(f"GET /users?key={settings['api_key'].reveal()} failed")

    from .conftest import KEY_ENV, memory_config, setup_account

    app = make_app(db_url, clock, memory_plugins(adapter=Leaky()))
    key = crm.settings()["api_key"]
    monkeypatch.setenv(KEY_ENV, key)
    setup_account(app)

    app.installs.install(ACCOUNT, P, memory_config(crm), ADMIN)
    result = app.sync.sync(ACCOUNT, P, retry=RetryPolicy(attempts=1, sleep=lambda s: None))
    assert result.outcome == "failed" and "***" in result.summary.message
    assert key not in result.summary.message
    assert key not in run_rows(app)[-1].message
    app.db.dispose()


def test_a_role_only_change_updates_the_user_and_its_link(
    installed: Callable[..., App], crm: MemorySandbox
) -> None:
    """A record whose roles alone changed: the user is updated (``users list`` shows its
    record's roles) and so is its link (auto install weighs those); a rerun changes nothing."""
    app = installed(activated_roles=["Agent"])
    app.sync.sync(ACCOUNT, P, full=True)
    listed = app.listings.users(ACCOUNT, product=P, limit=100).as_dict("users")["users"]
    before = next(u for u in listed if u["roles"] == ["Admin"])
    crm.store.change([int(before["email"][4:10])], roles=["Admin", "Agent"])
    result = app.sync.sync(ACCOUNT, P, full=True)
    assert result.summary.updated == 1 and result.summary.seated == 1
    listed = app.listings.users(ACCOUNT, product=P, limit=100).as_dict("users")["users"]
    after = next(u for u in listed if u["email"] == before["email"])
    assert after["roles"] == ["Admin", "Agent"]
    again = app.sync.sync(ACCOUNT, P, full=True)
    assert again.summary.updated == 0 and again.summary.seated == 0


def user_row(app: App, email: str) -> tuple[str, bool, list[str]]:
    with app.db.read() as conn:
        row = conn.execute(
            sa.select(
                integration_users.c.name, integration_users.c.active, integration_users.c.roles
            ).where(integration_users.c.email == email)
        ).one()
    return row.name, bool(row.active), list(row.roles)


def link_emails(app: App) -> dict[str, str]:
    """External id -> the email of the user it is linked to."""
    with app.db.read() as conn:
        return dict(
            conn.execute(
                sa.select(external_ids.c.external_id, integration_users.c.email).join(
                    external_ids, external_ids.c.user_id == integration_users.c.id
                )
            ).all()
        )


def make_stale(app: App, email: str, roles: list[str]) -> None:
    """The user row holds other roles than its record's while its link is current: what a
    role-only change left before bca24ab (it updated the link alone)."""
    with app.db.write() as conn:
        conn.execute(
            integration_users.update().where(integration_users.c.email == email).values(roles=roles)
        )


@pytest.mark.parametrize("full", [False, True])
def test_a_user_row_with_stale_roles_is_repaired_by_the_next_pull_of_its_record(
    installed: Callable[..., App], crm: MemorySandbox, full: bool
) -> None:
    """The planner compares the record with the user row, not with the link: a row whose roles
    are stale under a current link is repaired by the next pull, incremental or full, that
    returns its record; the link (and auto install, which weighs it) is left as it is."""
    app = installed(activated_roles=["Agent"])
    app.sync.sync(ACCOUNT, P, full=True)
    user = crm.store.by_number[3]
    email, roles = user.email, sorted(user.roles)
    make_stale(app, email, ["Stale"])
    crm.store.change([3], roles=list(user.roles))  # a new stamp, the same record
    result = app.sync.sync(ACCOUNT, P, full=full)
    assert user_row(app, email)[2] == roles
    assert result.summary.updated == 1 and result.summary.seated == 0
    with app.db.read() as conn:
        link = conn.execute(
            sa.select(external_ids.c.roles).where(external_ids.c.external_id == user.id)
        ).scalar_one()
    assert sorted(link) == roles
    assert app.sync.sync(ACCOUNT, P, full=full).summary.updated == 0


@pytest.mark.parametrize("full", [False, True])
def test_an_email_its_record_leaves_is_taken_by_a_twin_in_the_same_pull(
    installed: Callable[..., App], crm: MemorySandbox, full: bool
) -> None:
    """r5 held dup@x and moves to new5@x in the pull where a new record r1 carries dup@x: r1 is
    not quarantined (r5 no longer holds the email), it gets a user of its own, and r5's user
    follows r5 — in full and incremental pulls alike."""
    app = installed()
    crm.store.change([5], email="dup@x.example")
    app.sync.sync(ACCOUNT, P, full=True)
    five = user_row(app, "dup@x.example")
    crm.store.change([5], email="new5@x.example")
    (twin,) = crm.store.add(1)
    crm.store.change([twin.number], email="dup@x.example")
    result = app.sync.sync(ACCOUNT, P, full=full)
    assert result.summary.quarantined == 0, result.summary.reasons
    assert user_row(app, "new5@x.example") == five
    emails = link_emails(app)
    assert emails[twin.id] == "dup@x.example"
    assert emails[crm.store.by_number[5].id] == "new5@x.example"
    assert app.sync.sync(ACCOUNT, P, full=full).summary.updated == 0


@pytest.mark.parametrize("full", [False, True])
def test_two_records_trading_emails_in_one_pull_trade_their_users_emails(
    installed: Callable[..., App], crm: MemorySandbox, full: bool
) -> None:
    """A swap: each record moves to the email the other leaves. Both moves apply (the users
    take placeholders first, so the account's unique email never refuses the write)."""
    app = installed()
    app.sync.sync(ACCOUNT, P, full=True)
    a, b = crm.store.by_number[6], crm.store.by_number[7]
    ea, eb = a.email, b.email
    crm.store.change([6], email=eb)
    crm.store.change([7], email=ea)
    result = app.sync.sync(ACCOUNT, P, full=full)
    assert result.summary.quarantined == 0, result.summary.reasons
    emails = link_emails(app)
    assert emails[a.id] == eb and emails[b.id] == ea
