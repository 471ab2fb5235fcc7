"""The ``seatgate`` command line as an admin or a script runs it (issue 2).

Exit codes: 0 done / allowed, 1 done with refusals / denied, 2 bad input (nothing written). With
``--json`` stdout carries exactly one JSON document, errors included; without it an error is one
line on stderr.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import shlex
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from seatgate.core.entrypoints.cli import main

ADMIN = "admin@example.com"
TRANSITION = "2026-02-01T12:00:00Z"  # US enabled 2025-10-25; restrictions from 2026-03-16
RESTRICTED = "2026-03-20T12:00:00Z"

ASSIGN_KEYS = {"assigned", "refused", "assigned_count", "contracted", "in_overage"}
CHECK_KEYS = {
    "allowed",
    "reason",
    "phase",
    "policy_revision",
    "assigned",
    "contracted",
    "access_ends",
}


class Cli:
    """Runs ``seatgate --db URL --as-of ... --actor ADMIN ...`` in process, through the same entry
    point as the console script."""

    def __init__(self, db: str, capsys: pytest.CaptureFixture[str]) -> None:
        self.db = db
        self.capsys = capsys
        self.as_of = TRANSITION
        self.actor: str | None = ADMIN

    def __call__(self, command: str, *extra: str, json_out: bool = False) -> tuple[int, str, str]:
        args = ["--db", self.db, "--as-of", self.as_of]
        if self.actor:
            args += ["--actor", self.actor]
        if json_out:
            args.append("--json")
        return self.raw(*args, *shlex.split(command), *extra)

    def raw(self, *args: str) -> tuple[int, str, str]:
        code = 0
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = self.capsys.readouterr()
        return code, out, err

    def json(self, command: str, *extra: str) -> tuple[int, Any]:
        code, out, err = self(command, *extra, json_out=True)
        assert err == "", err
        return code, json.loads(out)

    def ok(self, command: str) -> Any:
        code, data = self.json(command)
        assert code == 0, data
        return data

    def rows(self) -> dict[str, int]:
        """Row count of every table: what "nothing written" is checked against."""
        engine = sa.create_engine(self.db)
        try:
            with engine.connect() as conn:
                names = sa.inspect(conn).get_table_names()
                return {
                    name: conn.execute(sa.text(f'SELECT count(*) FROM "{name}"')).scalar_one()
                    for name in names
                }
        finally:
            engine.dispose()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (
        "SEATGATE_DATABASE_URL",
        "SEATGATE_NOW",
        "SEATGATE_ACTOR",
        "SEATGATE_POLICY",
        "SEATGATE_JSON",
    ):
        monkeypatch.delenv(var, raising=False)


def open_acme(cli: Cli) -> None:
    """acme (US): admin holds Manage; 2 salesforce seats; three integration users — set up on
    2025-10-01, before Manage Seats is enabled in the US, so they are the users grandfathering
    covers (seed 000) and every later instant sees them."""
    as_of, cli.as_of = cli.as_of, "2025-10-01T12:00:00Z"
    cli.ok("account create acme --region US")
    cli.ok(f"account grant acme {ADMIN} --permission manage")
    cli.ok(
        "contract create acme salesforce --seats 2 --plan standard --frequency monthly "
        "--start 2025-10-01 --months 12 --unit-price 30"
    )
    cli.ok("users add acme ann@example.com bob@example.com cat@example.com")
    cli.as_of = as_of


@pytest.fixture
def cli(db_url: str, capsys: pytest.CaptureFixture[str], clean_env: None) -> Iterator[Cli]:
    runner = Cli(db_url, capsys)
    open_acme(runner)
    yield runner


@pytest.fixture
def sqlite_cli(
    sqlite_url: str, capsys: pytest.CaptureFixture[str], clean_env: None
) -> Iterator[Cli]:
    runner = Cli(sqlite_url, capsys)
    open_acme(runner)
    yield runner


# -- the required commands ---------------------------------------------------------------------------


def test_the_setup_commands_answer_what_they_did(
    sqlite_url: str, capsys: pytest.CaptureFixture[str], clean_env: None
) -> None:
    cli = Cli(sqlite_url, capsys)
    created = cli.ok("account create acme --region uk")
    assert (created["account"], created["region"]) == ("acme", "UK")
    # Issue 11 item 16: the answer says when Manage Seats is enabled for the region.
    assert created["enablement"]["enabled_on"] == "2025-10-04"
    assert cli.ok(f"account grant acme {ADMIN.upper()} --permission install") == {
        "account": "acme",
        "email": ADMIN,
        "permission": "install",
    }
    contract = cli.ok(
        "contract create acme hubspot --seats 5 --plan standard --frequency quarterly "
        "--start 2025-11-15 --months 12 --mode auto_expand --channel marketplace"
    )
    assert {k: contract[k] for k in ("seats", "plan", "frequency", "mode", "channel")} == {
        "seats": 5,
        "plan": "standard",
        "frequency": "quarterly",
        "mode": "auto_expand",
        "channel": "marketplace",
    }
    assert (contract["term_start"], contract["term_end"]) == ("2025-11-15", "2026-11-15")
    assert contract["unit_price"] == "15.00"  # the listed price: marketplace takes no other
    assert cli.ok("users add acme Ann@Example.com bob@example.com") == {
        "added": ["ann@example.com", "bob@example.com"],
        "already_known": [],
    }
    assert cli.ok("users add acme ANN@example.com") == {
        "added": [],
        "already_known": ["ann@example.com"],
    }


def test_assign_answers_the_documented_shape(cli: Cli) -> None:
    code, data = cli.json("seats assign acme salesforce ann@example.com BOB@example.com")
    assert code == 0
    assert data.keys() >= ASSIGN_KEYS
    assert {k: data[k] for k in ASSIGN_KEYS} == {
        "assigned": ["ann@example.com", "bob@example.com"],
        "refused": [],
        "assigned_count": 2,
        "contracted": 2,
        "in_overage": False,
    }


def test_assign_beyond_the_seats_refuses_and_exits_1(cli: Cli) -> None:
    code, data = cli.json(
        "seats assign acme salesforce ann@example.com bob@example.com cat@example.com "
        "zed@example.com"
    )
    assert code == 1
    assert data["assigned"] == ["ann@example.com", "bob@example.com"]
    assert data["refused"] == [
        {"email": "cat@example.com", "reason": "capacity_reached"},
        {"email": "zed@example.com", "reason": "unknown_user"},
    ]
    assert (data["assigned_count"], data["contracted"], data["in_overage"]) == (2, 2, False)


def test_grandfather_then_assign_reports_overage(cli: Cli) -> None:
    code, data = cli.json("seats grandfather acme salesforce")
    assert code == 0
    assert (data["assigned_count"], data["contracted"], data["in_overage"]) == (3, 2, True)
    cli.ok("users add acme dan@example.com")
    code, data = cli.json("seats assign acme salesforce dan@example.com")
    assert code == 1
    assert data["refused"] == [{"email": "dan@example.com", "reason": "in_overage"}]
    assert data["in_overage"] is True

    code, data = cli.json("seats unassign acme salesforce cat@example.com bob@example.com")
    assert code == 0
    assert data["unassigned"] == ["cat@example.com", "bob@example.com"]
    assert (data["assigned_count"], data["in_overage"]) == (1, False)
    code, data = cli.json("seats assign acme salesforce dan@example.com")
    assert (code, data["assigned"], data["assigned_count"]) == (0, ["dan@example.com"], 2)


def test_seats_list_shows_holders_and_counts(cli: Cli) -> None:
    cli.ok("seats assign acme salesforce bob@example.com")
    data = cli.ok("seats list acme salesforce")
    assert data["products"] == [
        {
            "product": "salesforce",
            "contracted": 2,
            "assigned": 1,
            "in_overage": False,
            "mode": "hard_cap",
        }
    ]
    assert [(s["email"], s["product"]) for s in data["seats"]] == [
        ("bob@example.com", "salesforce")
    ]


def test_assign_by_an_actor_without_permission_is_refused_audited_exit_2(cli: Cli) -> None:
    cli.actor = "clerk@example.com"
    before = cli.rows()
    code, data = cli.json("seats assign acme salesforce ann@example.com")
    assert code == 2
    assert data["error"]["code"] == "not_authorized"
    assert "clerk@example.com" in data["error"]["message"]
    assert data["refused"] == [{"email": "ann@example.com", "reason": "not_authorized"}]
    after = cli.rows()
    assert after["audit_log"] == before["audit_log"] + 1  # the refusal, and nothing else
    assert {k: v for k, v in after.items() if k != "audit_log"} == {
        k: v for k, v in before.items() if k != "audit_log"
    }


def test_check_with_a_seat_is_allowed_exit_0(cli: Cli) -> None:
    cli.ok("seats assign acme salesforce ann@example.com")
    cli.as_of = RESTRICTED
    code, data = cli.json("check acme salesforce ANN@example.com cti")
    assert code == 0
    assert {k: data[k] for k in CHECK_KEYS} == {
        "allowed": True,
        "reason": "seated",
        "phase": "restricted",
        "policy_revision": "2026-01-06",
        "assigned": 1,
        "contracted": 2,
        "access_ends": None,
    }


def test_check_without_a_seat_in_transition_warns_of_the_date(cli: Cli) -> None:
    code, data = cli.json("check acme salesforce cat@example.com managed_package")
    assert code == 0
    assert (data["allowed"], data["reason"], data["phase"]) == (True, "grace", "transition")
    assert data["access_ends"] == "2026-03-16"
    code, out, _ = cli("check acme salesforce cat@example.com cti")
    assert code == 0
    assert "2026-03-16" in out


def test_check_without_a_seat_once_restricted_is_denied_exit_1_and_audited(cli: Cli) -> None:
    cli.as_of = RESTRICTED
    before = cli.rows()
    code, data = cli.json("check acme salesforce cat@example.com agent_sync")
    assert code == 1
    assert (data["allowed"], data["reason"], data["access_ends"]) == (False, "no_seat", None)
    assert cli.rows()["audit_log"] == before["audit_log"] + 1


def test_check_before_enablement_gates_nothing(cli: Cli) -> None:
    cli.as_of = "2025-10-24T23:00:00Z"  # US enables on 2025-10-25
    code, data = cli.json("check acme salesforce cat@example.com cti")
    assert (code, data["reason"], data["phase"]) == (0, "pre_enablement", "pre_enablement")


# -- bad input: one line (or one JSON document), exit 2, nothing written ----------------------------

CONTRACT = "--plan standard --frequency monthly --start 2026-01-01 --months 12 --unit-price 30"

BAD_INPUT = [
    # unknown names
    pytest.param("seats assign nope salesforce ann@example.com", "'nope'", id="assign: account"),
    pytest.param("seats unassign nope salesforce ann@example.com", "'nope'", id="unassign: acct"),
    pytest.param("seats grandfather nope salesforce", "'nope'", id="grandfather: account"),
    pytest.param("seats list nope", "'nope'", id="list: account"),
    pytest.param("check nope salesforce ann@example.com cti", "'nope'", id="check: account"),
    pytest.param("users add nope ann@example.com", "'nope'", id="users add: account"),
    pytest.param(f"account grant nope {ADMIN} --permission manage", "'nope'", id="grant: account"),
    pytest.param(
        f"contract create nope hubspot --seats 3 {CONTRACT}", "'nope'", id="contract: acct"
    ),
    pytest.param("seats assign acme zendesk ann@example.com", "'zendesk'", id="assign: product"),
    pytest.param("seats grandfather acme zendesk", "'zendesk'", id="grandfather: product"),
    pytest.param("check acme zendesk ann@example.com cti", "'zendesk'", id="check: product"),
    pytest.param(
        f"contract create acme zendesk --seats 3 {CONTRACT}", "'zendesk'", id="contract: product"
    ),
    pytest.param("account create newco --region France", "'France'", id="region"),
    pytest.param("check acme salesforce ann@example.com pops", "'pops'", id="feature"),
    pytest.param(
        "check acme salesforce zed@example.com cti", "'zed@example.com'", id="unknown email"
    ),
    pytest.param(
        "check acme salesforce ann-at-example cti", "'ann-at-example'", id="check: bad email"
    ),
    pytest.param(
        "users add acme ok@example.com not-an-email", "'not-an-email'", id="users add: email"
    ),
    pytest.param("account grant acme someone --permission manage", "'someone'", id="grant: email"),
    pytest.param(f"account grant acme {ADMIN} --permission admin", "'admin'", id="permission"),
    # dates
    pytest.param(
        "--as-of 2026-13-01 check acme salesforce ann@example.com cti",
        "'2026-13-01'",
        id="as-of month 13",
    ),
    pytest.param(
        "--as-of yesterday seats assign acme salesforce ann@example.com",
        "'yesterday'",
        id="as-of word",
    ),
    pytest.param(
        "contract create acme hubspot --seats 3 --plan standard --frequency monthly --start 2026-02-30 "
        "--months 12 --unit-price 30",
        "'2026-02-30'",
        id="start Feb 30",
    ),
    pytest.param(
        "contract create acme hubspot --seats 3 --plan standard --frequency monthly --start 01/02/2026 "
        "--months 12 --unit-price 30",
        "'01/02/2026'",
        id="start not ISO",
    ),
    # seats and terms
    pytest.param(f"contract create acme hubspot --seats 0 {CONTRACT}", "seats 0", id="zero seats"),
    pytest.param(
        f"contract create acme hubspot --seats -4 {CONTRACT}", "seats -4", id="negative seats"
    ),
    pytest.param(
        f"contract create acme hubspot --seats ten {CONTRACT}", "'ten'", id="seats not a number"
    ),
    pytest.param(
        "contract create acme hubspot --seats 3 --plan standard --frequency monthly --start 2026-01-01 "
        "--months 0 --unit-price 30",
        "months 0",
        id="term of 0 months",
    ),
    pytest.param(
        "contract create acme hubspot --seats 3 --plan standard --frequency monthly --start 2026-01-01 "
        "--months -6 --unit-price 30",
        "months -6",
        id="term ends before it starts",
    ),
    pytest.param(
        "contract create acme hubspot --seats 3 --plan standard --frequency weekly --start 2026-01-01 "
        "--months 12 --unit-price 30",
        "'weekly'",
        id="frequency",
    ),
    pytest.param(
        "contract create acme hubspot --seats 3 --plan standard --frequency monthly --start 2026-01-01 "
        "--months 12 --unit-price 30 --mode unlimited",
        "'unlimited'",
        id="mode",
    ),
    pytest.param(
        "contract create acme hubspot --seats 3 --plan standard --frequency monthly --start 2026-01-01 "
        "--months 12 --unit-price -5",
        "'-5'",
        id="negative price",
    ),
    pytest.param(
        f"contract create acme salesforce --seats 3 {CONTRACT}", "already has", id="second contract"
    ),
    pytest.param("account create acme --region US", "already exists", id="account exists"),
]


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
@pytest.mark.parametrize(("command", "names"), BAD_INPUT)
def test_bad_input_is_one_line_exit_2_nothing_written(
    sqlite_cli: Cli, command: str, names: str, as_json: bool
) -> None:
    before = sqlite_cli.rows()
    code, out, err = sqlite_cli(command, json_out=as_json)
    assert code == 2
    if as_json:
        assert err == ""
        document = json.loads(out)
        assert names in document["error"]["message"]
        assert "\n" not in document["error"]["message"]
        assert document["error"]["code"] in {"bad_input", "not_found", "conflict"}
    else:
        assert out == ""
        assert err.startswith("error: ")
        assert err.count("\n") == 1, err
        assert names in err
    assert sqlite_cli.rows() == before


def test_bad_input_names_what_is_accepted(sqlite_cli: Cli) -> None:
    _, _, err = sqlite_cli("account create newco --region France")
    assert "a two-letter region code such as US, UK or BR" in err
    _, _, err = sqlite_cli("check acme salesforce ann@example.com pops")
    assert "cti" in err and "agent_sync" in err
    _, _, err = sqlite_cli(f"contract create acme hubspot --seats 0 {CONTRACT}")
    assert "from 1 to 1,000,000" in err  # issue 13: the documented range of seats
    _, _, err = sqlite_cli("--as-of 2026-13-01 check acme salesforce ann@example.com cti")
    assert "ISO-8601" in err


def test_a_bad_policy_file_is_one_line_exit_2_nothing_written(
    sqlite_cli: Cli, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.json"
    policy.write_text('{"revisions": [}')
    before = sqlite_cli.rows()
    code, out, err = sqlite_cli(
        f"--policy {policy} seats assign acme salesforce ann@example.com", json_out=False
    )
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and str(policy) in err and "JSON" in err
    code, out, err = sqlite_cli(
        f"--policy {policy} check acme salesforce ann@example.com cti", json_out=True
    )
    assert (code, err) == (2, "")
    assert json.loads(out)["error"]["code"] == "bad_policy"
    assert sqlite_cli.rows() == before


def test_the_console_script_is_installed_and_answers_json(sqlite_cli: Cli) -> None:
    import subprocess
    import sys

    script = Path(sys.executable).with_name("seatgate")
    proc = subprocess.run(
        [str(script), "--db", sqlite_cli.db, "--json", "check", "acme", "salesforce", "x", "cti"],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 2
    assert proc.stderr == ""
    assert json.loads(proc.stdout)["error"]["code"] == "bad_input"


def test_assign_reads_emails_from_a_file_one_per_line(cli: Cli, tmp_path: Path) -> None:
    listing = tmp_path / "seats.txt"
    listing.write_text("# the sales team\nANN@example.com\n\nbob@example.com\n")
    code, data = cli.json("seats assign acme salesforce", "--from-file", str(listing))
    assert code == 0
    assert data["assigned"] == ["ann@example.com", "bob@example.com"]
    code, data = cli.json(
        "seats unassign acme salesforce bob@example.com --from-file", str(listing)
    )
    assert code == 0  # bob is named twice, on the line and in the file: unassigned once
    assert sorted(data["unassigned"]) == ["ann@example.com", "bob@example.com"]


def test_assign_without_any_email_is_bad_input(cli: Cli) -> None:
    before = cli.rows()
    code, out, err = cli("seats assign acme salesforce")
    assert code == 2 and out == ""
    assert err.strip() == (
        "error: bad emails 'none': expected EMAIL arguments or --from-file FILE (one per line)"
    )
    assert cli.rows() == before


def test_a_stop_that_breaks_a_database_call_exits_143_without_an_error(
    sqlite_cli: Cli,
) -> None:
    """SIGTERM's ``SystemExit`` raised inside the driver's call can come out as the driver's own
    error, raised while the stop unwinds: that is the stop (exit 143, nothing said), not an
    internal error (70) or an unusable database (2)."""
    import signal
    import sqlite3

    from seatgate.core.entrypoints.cli import _terminated

    def stopped_mid_call(_: int) -> None:
        try:
            _terminated(signal.SIGTERM, None)  # what the signal runs: raises SystemExit
        finally:
            raise sqlite3.ProgrammingError("Cannot operate on a closed database.")

    with statements_run(stopped_mid_call):
        code, out, err = sqlite_cli("account create globex --region US")
    assert (code, out, err) == (143, "", "")


@contextlib.contextmanager
def statements_run(hook: Callable[[int], None]) -> Iterator[None]:
    """Every statement of every engine calls ``hook(n)`` first (n = 0, 1, ...); the note of a
    stop is forgotten afterwards (pytest goes on)."""
    from seatgate.core.services import stopping

    count = itertools.count()

    def each(*_: Any) -> None:
        hook(next(count))

    sa.event.listen(sa.Engine, "before_cursor_execute", each)
    try:
        yield
    finally:
        sa.event.remove(sa.Engine, "before_cursor_execute", each)
        stopping.reset()


def test_a_sigterm_swallowed_leaves_a_later_error_an_error_and_a_later_sigterm_stops(
    sqlite_cli: Cli,
) -> None:
    """The first SIGTERM's ``SystemExit`` is swallowed (a library's ``except BaseException``, a
    finalizer): the command goes on. An error raised later is no stop: it is reported (exit 70),
    not turned into a silent 143; and a later SIGTERM stops the command (it had done nothing)."""
    import signal

    from seatgate.core.entrypoints.cli import _terminated

    def swallowed_then(later: Callable[[], None]) -> Callable[[int], None]:
        def hook(n: int) -> None:
            if n == 0:
                with contextlib.suppress(SystemExit):
                    _terminated(signal.SIGTERM, None)
            elif n == 1:
                later()

        return hook

    def fails() -> None:
        raise RuntimeError("the disk is full")

    before = sqlite_cli.rows()
    with statements_run(swallowed_then(fails)):
        code, out, err = sqlite_cli("account create globex --region US")
    assert code == 70 and "internal error (RuntimeError: the disk is full)" in err
    with statements_run(swallowed_then(lambda: _terminated(signal.SIGTERM, None))):
        code, out, err = sqlite_cli("account create initech --region US")
    assert (code, out, err) == (143, "", "")
    assert sqlite_cli.rows() == before  # neither wrote anything


FINALIZED_CHILD = """
import os, signal, sys, time
from seatgate.core.entrypoints.cli import stop_on_sigterm
stop_on_sigterm()
class Closing:
    def __del__(self):
        os.kill(os.getpid(), signal.SIGTERM)  # lands while the finalizer runs
        time.sleep(5)
Closing()
print("went on", flush=True)
deadline = time.monotonic() + 20
while time.monotonic() < deadline:
    time.sleep(0.01)
sys.exit(3)
"""


def test_a_sigterm_swallowed_by_a_finalizer_is_sent_again() -> None:
    """Python swallows an exception raised in a finalizer ("Exception ignored in ..."), the
    signal's ``SystemExit`` too: the stop is over there, and the CLI sends the signal again, so
    the process stops (143) instead of going on as if never asked to."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", FINALIZED_CHILD], capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stdout) == (143, "went on\n")
    assert "Exception ignored in" in done.stderr and "SystemExit: 143" in done.stderr
