"""seat stamp own users: on PostgreSQL a seat written by the transaction that stamped its user
leaves the user alone (no lock, no second write).

Revision ID: core_0007
Revises: core_0006
Create Date: 2026-12-01 18:00:00

The statement triggers of core_0003 on ``seats`` lock every user of the statement's seats
``FOR UPDATE`` and set their ``change_seq`` to the writing transaction's id. A sync now seats the
users gaining a role in the transaction that inserts them (issue 12 item 9), whose
``change_seq`` already holds that id (the column's default): the update rewrote each such row to
the value it had, a new row version and index entries for ``change_seq`` (the update is not
HOT), 2.3 s of a 100,000-user first sync's 11 s in the server. The triggers now skip the users
whose ``change_seq`` is the current transaction's id (``IS DISTINCT FROM`` it, read once per
statement) and stamp and lock the others as before; when none is left, one look at the users
ends the trigger (measured, 12,500 seats in 50 statements written with their users: 0.78 s of
inserts with core_0003's triggers, 0.34 s with these, 0.26 s with none).

Why a snapshot still sees the seat (core_0003: a reader keeps the transactions its snapshot did
not see and later re-reads the users stamped by exactly those). A user row whose ``change_seq``
is the current transaction's id was written by this transaction (ids are never reused: the
64-bit ``pg_current_xact_id()``; a version written by a subtransaction rolled back is not the
row's visible version), so:

- the stamp the update would write is the one the row holds: readers find the user where they
  would have, by this transaction's id, and read the seat with it (one commit makes both
  visible); a reader that saw this transaction's commit saw the seat too;
- the row lock the ``FOR UPDATE`` would take is held already (this transaction wrote the row; a
  row it inserted is seen by nobody else before the commit), so skipping it changes no lock
  order either: no deadlock is possible between statements on such users.

Each statement of the functions is planned for the tables as they are when it runs
(``plan_cache_mode = force_custom_plan``, on the functions alone): PL/pgSQL keeps a statement's
plan for the session, and the sync's connection now first runs them in its first batches, when
``integration_users`` holds a few hundred rows (a first sync analyzes it only after writing
them all). The plan made then, a scan of the whole table, was kept while the table grew to
100,000 rows: 11.5 s of seat inserts in a first sync instead of about 1 s. (core_0003's
statements, without parameters, were planned once per session too, but a sync first ran them
in auto install, after that analysis.) Planning them costs some 0.1 ms a statement.

SQLite is unchanged (one writer at a time; its stamp is the contracts' version sum, core_0003).
The downgrade restores core_0003's functions (the triggers themselves are kept: they call the
functions by name).
"""

from alembic import op

revision = "core_0007"
down_revision = "core_0006"
branch_labels = None
depends_on = None

_XID = "pg_current_xact_id()::text::bigint"

#: The users of each function's seats: (verb, the users' ids from the transition tables).
_USERS = (
    ("insert", "SELECT user_id FROM new_rows"),
    ("delete", "SELECT user_id FROM old_rows"),
    ("update", "SELECT user_id FROM old_rows UNION SELECT user_id FROM new_rows"),
)


def _skipping(verb: str, users: str) -> str:
    return f"""
        CREATE OR REPLACE FUNCTION seatgate_stamp_seats_{verb}() RETURNS trigger AS $$
        DECLARE
            me bigint := {_XID};
        BEGIN
            -- Users this transaction stamped already hold its id and its lock: left alone
            -- (when all are, one look at them).
            IF NOT EXISTS (
                SELECT 1 FROM integration_users
                WHERE id IN ({users}) AND change_seq IS DISTINCT FROM me
            ) THEN
                RETURN NULL;
            END IF;
            -- The others are locked in id order first: two statements stamping overlapping
            -- users then wait for each other instead of deadlocking.
            PERFORM 1 FROM integration_users
            WHERE id IN ({users}) AND change_seq IS DISTINCT FROM me ORDER BY id FOR UPDATE;
            UPDATE integration_users SET change_seq = me
            WHERE id IN ({users}) AND change_seq IS DISTINCT FROM me;
            RETURN NULL;
        END $$ LANGUAGE plpgsql SET plan_cache_mode = force_custom_plan
        """


def _core_0003(verb: str, users: str) -> str:
    return f"""
        CREATE OR REPLACE FUNCTION seatgate_stamp_seats_{verb}() RETURNS trigger AS $$
        BEGIN
            -- Lock the users in id order first: two statements stamping overlapping users
            -- then wait for each other instead of deadlocking.
            PERFORM 1 FROM integration_users
            WHERE id IN ({users}) ORDER BY id FOR UPDATE;
            UPDATE integration_users SET change_seq = {_XID}
            WHERE id IN ({users});
            RETURN NULL;
        END $$ LANGUAGE plpgsql
        """


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for verb, users in _USERS:
        op.execute(_skipping(verb, users))


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for verb, users in _USERS:
        op.execute(_core_0003(verb, users))
