"""Databases that are not there, not writable, busy or not seatgate's (issue 13, item 6): one line
naming the database (password masked) and what to do, exit 2 — 75 for "busy" — and `--json`
prints its one document; nothing changes in a file seatgate did not create."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import sqlite3
import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from .harness import (
    ADMIN,
    TRANSITION,
    assert_one_line_refusal,
    cli,
    dump,
    open_acme,
    postgres_schema,
    run,
)

PG = os.environ.get("SEATGATE_TEST_POSTGRES_URL")
LIST = ["--as-of", TRANSITION, "contract", "list"]
WRITE = ["--as-of", TRANSITION, "account", "create", "newco", "--region", "US"]


def refused(db: str, args: list[str], says: str, code: int = 2, **env: str) -> None:
    """Refused the same way in text and in JSON, the JSON document naming the error's code."""
    for as_json in (False, True):
        argv = ["--db", db, *(["--json"] if as_json else []), *args]
        got, out, err = run(argv, env=env or None)
        error = assert_one_line_refusal(got, out, err, as_json, expected_code=code)
        text = json.dumps(error) if as_json else str(error)
        assert says in text, text
        if as_json:
            assert isinstance(error, dict)
            assert error["error"]["code"] in ("database", "database_busy")
            assert error["error"]["remedy"]


# -- SQLite ------------------------------------------------------------------------------------------
def test_a_directory_given_as_the_database(tmp_path: Path) -> None:
    refused(f"sqlite:///{tmp_path}", LIST, "is a directory, not a database file")


def test_a_database_in_a_directory_that_does_not_exist(tmp_path: Path) -> None:
    refused(
        f"sqlite:///{tmp_path}/nope/seatgate.db", WRITE, f"the directory {tmp_path}/nope does not"
    )
    assert not (tmp_path / "nope").exists()


def test_a_text_file_given_as_the_database_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("shopping list\n")
    refused(f"sqlite:///{path}", WRITE, "is not a SQLite database file")
    assert path.read_text() == "shopping list\n"


def test_another_programs_sqlite_file_is_refused_and_left_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.execute("INSERT INTO notes VALUES ('keep me')")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    for args in (LIST, WRITE, ["db", "upgrade"]):
        refused(f"sqlite:///{path}", args, "is not a seatgate database")
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.db"]  # no -wal, no -shm
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)  # not switched to WAL
    conn.close()


def test_a_database_of_another_alembic_project_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "alembic.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
    conn.execute("INSERT INTO alembic_version VALUES ('ae1027a6acf')")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    refused(f"sqlite:///{path}", LIST, "schema revision ae1027a6acf is not seatgate's")
    assert path.read_bytes() == before


def test_an_empty_file_is_a_new_database(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    path.touch()
    code, _out, err = run(["--db", f"sqlite:///{path}", *WRITE])
    assert code == 0, err


def test_a_read_only_uri_on_a_write(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/seatgate.db"
    open_acme(db)
    before = dump(db)
    refused(f"sqlite:///file:{tmp_path}/seatgate.db?mode=ro&uri=true", WRITE, "is not writable")
    assert dump(db) == before


def _write_as_nobody(db: str, queue: Any) -> None:
    if os.geteuid() == 0:
        os.setgid(65534)
        os.setuid(65534)
    queue.put(run(["--db", db, *WRITE]))


@pytest.mark.parametrize("reachable", [True, False], ids=["read-only file", "closed directory"])
def test_a_read_only_file_on_a_write(tmp_path: Path, reachable: bool) -> None:
    """A real read-only file, written to by a user who may not (root may write anything: the
    write runs in a child that drops to nobody); or one in a directory that user cannot enter."""
    if reachable:  # pytest's own temporary directories are private to their owner
        tmp_path = Path(tempfile.mkdtemp(prefix="seatgate-ro-"))
        tmp_path.chmod(0o755)
    db = f"sqlite:///{tmp_path}/seatgate.db"
    open_acme(db)
    run(["--db", db, *LIST])  # imports everything the child needs while it still can read it
    before = dump(db)
    (tmp_path / "seatgate.db").chmod(0o444)
    tmp_path.chmod(0o555)
    try:
        queue: Any = multiprocessing.get_context("fork").SimpleQueue()
        child = multiprocessing.get_context("fork").Process(
            target=_write_as_nobody, args=(db, queue)
        )
        child.start()
        child.join(120)
        code, out, err = queue.get()
    finally:
        tmp_path.chmod(0o755)
        (tmp_path / "seatgate.db").chmod(0o644)
    after = dump(db)
    if reachable:
        shutil.rmtree(tmp_path)
    assert_one_line_refusal(code, out, err, as_json=False)
    assert "seatgate.db" in err, err
    says = "is not writable" if reachable or os.geteuid() != 0 else "Permission denied"
    assert says in err, err
    assert after == before


def test_a_write_behind_another_writer_waits_a_bounded_time_then_says_busy(
    tmp_path: Path,
) -> None:
    db = f"sqlite:///{tmp_path}/seatgate.db"
    open_acme(db)
    before = dump(db)
    holder = sqlite3.connect(tmp_path / "seatgate.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process in the middle of a write
    try:
        refused(db, WRITE, "is busy: another writer held it for more than 0.2 s", code=75,
                SEATGATE_BUSY_TIMEOUT="0.2")  # fmt: skip
        code, out, _ = run(["--db", db, *LIST])  # a reader does not wait for the writer
        assert code == 0 and "salesforce" in out
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert dump(db) == before


def test_a_bad_busy_timeout_is_one_line() -> None:
    code, out, err = run(["--db", "sqlite://", *LIST], env={"SEATGATE_BUSY_TIMEOUT": "soon"})
    assert_one_line_refusal(code, out, err, as_json=False)
    assert "SEATGATE_BUSY_TIMEOUT 'soon'" in err


# -- PostgreSQL ----------------------------------------------------------------------------------------
def test_an_unreachable_server_masks_the_password() -> None:
    db = "postgresql://seat:s3cr3t-pw@127.0.0.1:1/seatgate"
    for as_json in (False, True):
        code, out, err = run(["--db", db, *(["--json"] if as_json else []), *LIST])
        assert_one_line_refusal(code, out, err, as_json)
        assert "s3cr3t-pw" not in out + err
        assert "seat:***@127.0.0.1:1/seatgate" in out + err and "connection refused" in out + err


@pytest.mark.postgres
def test_a_postgres_database_that_does_not_exist() -> None:
    assert PG
    url = sa.engine.make_url(PG).set(database="sg_edges_nowhere", password="pw")
    db = url.render_as_string(hide_password=False)
    refused(db, LIST, "createdb sg_edges_nowhere")
    _code, _out, err = run(["--db", db, *LIST])
    assert ":***@" in err and ":pw@" not in err


@pytest.mark.postgres
def test_a_postgres_schema_of_another_program_is_refused_and_left_unchanged() -> None:
    assert PG
    with postgres_schema(PG) as db:
        engine = sa.create_engine(db)
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE orders (id integer)"))
            conn.execute(sa.text("INSERT INTO orders VALUES (7)"))
        try:
            for args in (LIST, WRITE, ["db", "upgrade"]):
                refused(db, args, "is not a seatgate database")
            with engine.connect() as conn:
                assert sa.inspect(conn).get_table_names() == ["orders"]
                assert conn.execute(sa.text("SELECT id FROM orders")).scalars().all() == [7]
        finally:
            engine.dispose()


@pytest.mark.postgres
def test_a_postgres_write_behind_a_locked_contract_says_busy() -> None:
    assert PG
    with postgres_schema(PG) as db:
        open_acme(db)
        before = dump(db)
        engine = sa.create_engine(db)
        locked = threading.Event()
        release = threading.Event()

        def hold() -> None:
            with engine.begin() as conn:
                conn.execute(sa.text("SELECT id FROM contracts FOR UPDATE"))
                locked.set()
                release.wait(60)

        holder = threading.Thread(target=hold)
        holder.start()
        try:
            assert locked.wait(30)
            args = ["--as-of", TRANSITION, "--actor", ADMIN, "seats", "assign", "acme",
                    "salesforce", "bob@example.com"]  # fmt: skip
            refused(db, args, "is busy", code=75, SEATGATE_BUSY_TIMEOUT="0.3")
        finally:
            release.set()
            holder.join(60)
            engine.dispose()
        assert dump(db) == before
        code, _, err = cli(db, "seats", "assign", "acme", "salesforce", "bob@example.com")
        assert code == 0, err  # once the other writer is done, the same write goes through


@pytest.mark.postgres
def test_two_writers_that_cross_on_postgresql_say_busy_and_write_nothing() -> None:
    """A deadlock (two transactions locking the same rows in opposite orders): PostgreSQL rolls
    one back, which is told as busy (exit 75, nothing written), not as an internal error."""
    from seatgate.core.errors import DatabaseBusy
    from seatgate.core.storage.db import Database

    assert PG
    with postgres_schema(PG) as db:
        open_acme(db)
        before = dump(db)
        first, second = Database(db), Database(db)
        both = threading.Barrier(2, timeout=30)
        outcomes: list[BaseException | None] = []

        def cross(database: Database, tables: tuple[str, str]) -> None:
            try:
                with database.write() as conn:
                    conn.execute(sa.text(f"UPDATE {tables[0]} SET id = id"))
                    both.wait()  # each holds its first table's rows before asking for the other's
                    conn.execute(sa.text(f"UPDATE {tables[1]} SET id = id"))
                    raise RuntimeError("roll back the survivor too: the test writes nothing")
            except BaseException as exc:
                outcomes.append(exc)

        threads = [
            threading.Thread(target=cross, args=(first, ("accounts", "contracts"))),
            threading.Thread(target=cross, args=(second, ("contracts", "accounts"))),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        first.dispose()
        second.dispose()
        busy = [e for e in outcomes if isinstance(e, DatabaseBusy)]
        assert len(busy) == 1, outcomes
        assert "crossed another writer's" in str(busy[0]) and busy[0].exit_code == 75
        assert dump(db) == before
