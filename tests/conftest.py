"""Shared fixtures: a fresh database per test (SQLite file, or a PostgreSQL schema of its own),
and an App on a fixed clock."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import pytest
import sqlalchemy as sa

from seatgate.core.bootstrap import App
from seatgate.core.clock import FixedClock, parse_instant

PG_ENV = "SEATGATE_TEST_POSTGRES_URL"
REQUIRE_PG = os.environ.get("SEATGATE_REQUIRE_POSTGRES") == "1"
REDIS_ENV = "SEATGATE_TEST_REDIS_URL"
REQUIRE_REDIS = os.environ.get("SEATGATE_REQUIRE_REDIS") == "1"


def _needs_postgres(item: pytest.Item) -> bool:
    return item.get_closest_marker("postgres") is not None or "postgres_url" in getattr(
        item, "fixturenames", ()
    )


def _needs_redis(item: pytest.Item) -> bool:
    return item.get_closest_marker("redis") is not None or "redis_url" in getattr(
        item, "fixturenames", ()
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without a PostgreSQL server (and not on CI) the PostgreSQL tests are left out and said so
    once, not skipped one by one; with SEATGATE_REQUIRE_POSTGRES=1 they run, and fail if the
    server is missing. Likewise the Redis tests (the worker fleet) with SEATGATE_TEST_REDIS_URL
    and SEATGATE_REQUIRE_REDIS=1."""
    if not (os.environ.get(PG_ENV) or REQUIRE_PG):
        left_out = [item for item in items if _needs_postgres(item)]
        if left_out:
            items[:] = [item for item in items if not _needs_postgres(item)]
            config.hook.pytest_deselected(items=left_out)
            config.stash[_LEFT_OUT] = len(left_out)
    if not (os.environ.get(REDIS_ENV) or REQUIRE_REDIS):
        left_out = [item for item in items if _needs_redis(item)]
        if left_out:
            items[:] = [item for item in items if not _needs_redis(item)]
            config.hook.pytest_deselected(items=left_out)
            config.stash[_LEFT_OUT_REDIS] = len(left_out)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    left_out = terminalreporter.config.stash.get(_LEFT_OUT, 0)
    if left_out:
        terminalreporter.write_line(
            f"PostgreSQL: {left_out} tests not run; set {PG_ENV} to run them "
            "(CI sets SEATGATE_REQUIRE_POSTGRES=1, which makes them mandatory)"
        )
    left_out = terminalreporter.config.stash.get(_LEFT_OUT_REDIS, 0)
    if left_out:
        terminalreporter.write_line(
            f"Redis: {left_out} tests not run; set {REDIS_ENV} to run them "
            "(CI sets SEATGATE_REQUIRE_REDIS=1, which makes them mandatory)"
        )


_LEFT_OUT = pytest.StashKey[int]()
_LEFT_OUT_REDIS = pytest.StashKey[int]()


@pytest.fixture
def sqlite_url(tmp_path: object) -> str:
    return f"sqlite:///{tmp_path}/seatgate.db"


def _schema_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a new, empty schema, dropped afterwards; skipped (or
    failed with SEATGATE_REQUIRE_POSTGRES=1) when no server is configured or it is unreachable."""
    base = os.environ.get(PG_ENV)
    if not base:
        if REQUIRE_PG:
            pytest.fail(f"{PG_ENV} is not set but SEATGATE_REQUIRE_POSTGRES=1")
        pytest.skip(f"set {PG_ENV} to run the PostgreSQL tests")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        admin = sa.create_engine(base)
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as exc:
        if REQUIRE_PG:
            pytest.fail(f"PostgreSQL at {PG_ENV} is unreachable: {exc.orig}")
        pytest.skip(f"PostgreSQL unreachable: {exc.orig}")
    sep = "&" if "?" in base else "?"
    yield f"{base}{sep}options={quote(f'-csearch_path={schema}')}"
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a new, empty schema (dropped afterwards).

    Skipped when no server is configured, except on CI (SEATGATE_REQUIRE_POSTGRES=1), where a
    missing server fails the test instead of hiding it.
    """
    yield from _schema_url()


@pytest.fixture
def other_postgres_url(postgres_url: str) -> Iterator[str]:
    """A second new schema of the same database as ``postgres_url``: another deployment sharing
    the database (staging beside production), for what the two must not see of each other."""
    yield from _schema_url()


@pytest.fixture
def redis_url() -> Iterator[str]:
    """The Redis named by SEATGATE_TEST_REDIS_URL, for one test: the test names its keys with its
    own prefix (``redis_prefix``), so tests running at once never share a key; those keys are
    deleted afterwards. Skipped without a server, except on CI (SEATGATE_REQUIRE_REDIS=1), where a
    missing server fails the test."""
    url = os.environ.get(REDIS_ENV)
    if not url:
        if REQUIRE_REDIS:
            pytest.fail(f"{REDIS_ENV} is not set but SEATGATE_REQUIRE_REDIS=1")
        pytest.skip(f"set {REDIS_ENV} to run the Redis tests")
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        if REQUIRE_REDIS:
            pytest.fail(f"Redis at {REDIS_ENV} is unreachable: {exc}")
        pytest.skip(f"Redis unreachable: {exc}")
    client.close()
    yield url


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own (``t<uuid>:``); its keys are deleted afterwards."""
    import redis

    prefix = f"t{uuid.uuid4().hex[:12]}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each test using this runs on SQLite and on PostgreSQL."""
    name = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(parse_instant("2026-02-01T12:00:00Z"))


@pytest.fixture
def app(sqlite_url: str, clock: FixedClock) -> Iterator[App]:
    application = App(sqlite_url, clock=clock)
    yield application
    application.db.dispose()


@pytest.fixture(autouse=True)
def _fresh_throttle() -> Iterator[None]:
    """Each test starts with a throttle store of its own: a pause (an hour, for a spent quota) a
    test's sandbox was given must not hold back a later test whose sandbox got the same port."""
    from seatgate.core.plugins.throttle import use_throttle_store

    use_throttle_store(None)
    yield
    use_throttle_store(None)
