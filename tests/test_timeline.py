"""The enforcement timeline of seed 000, as a table.

Seed 000 says: Manage Seats is enabled per region (UK 2025-10-04, AU and CA 2025-10-11, EU
2025-10-18, US 2025-10-25); users without a seat are restricted from 2026-03-16; accounts in
overage are billed from 2026-05-04. Those two dates were published on 2026-01-06 and replaced
2026-01-12 and 2026-02-02: before 2026-01-06 the first notice governs, from 2026-01-06 the update
does. Dates are 00:00 UTC of the day.

The dates below are written out from the seed, not read from the shipped policy file, so a wrong
policy file fails here.
"""

from __future__ import annotations

import datetime as dt
import json
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from seatgate.core.bootstrap import App
from seatgate.core.clock import FixedClock, parse_instant
from seatgate.core.domain.money import parse_amount
from seatgate.core.entrypoints.cli import main
from seatgate.core.errors import PolicyError
from seatgate.core.storage.datafiles import load_timeline

ENABLEMENT = {
    "UK": "2025-10-04",
    "AU": "2025-10-11",
    "CA": "2025-10-11",
    "EU": "2025-10-18",
    "US": "2025-10-25",
}
FIRST_NOTICE = "2025-09-01"  # the shipped id of the original notice (its date is assumed)
UPDATE = "2026-01-06"


def at(text: str) -> dt.datetime:
    return parse_instant(text)


def day_before(day: str) -> str:
    return f"{dt.date.fromisoformat(day) - dt.timedelta(days=1)}T23:59:59Z"


# (instant, region, phase, revision that governs, restriction date it announces)
PHASE_TABLE = [
    *[
        pytest.param(
            day_before(day),
            region,
            "pre_enablement",
            FIRST_NOTICE,
            "2026-01-12",
            id=f"{region} day before enablement {day}",
        )
        for region, day in ENABLEMENT.items()
    ],
    *[
        pytest.param(
            day,
            region,
            "transition",
            FIRST_NOTICE,
            "2026-01-12",
            id=f"{region} day of enablement {day}",
        )
        for region, day in ENABLEMENT.items()
    ],
    pytest.param(
        "2026-01-05T23:59:59Z",
        "US",
        "transition",
        FIRST_NOTICE,
        "2026-01-12",
        id="before the update: first notice, restrictions 2026-01-12",
    ),
    pytest.param(
        "2026-01-06", "US", "transition", UPDATE, "2026-03-16", id="day of the update: it governs"
    ),
    pytest.param(
        "2026-01-08T09:30:00Z",
        "UK",
        "transition",
        UPDATE,
        "2026-03-16",
        id="between update and old restriction date: later revision governs",
    ),
    pytest.param(
        "2026-01-12",
        "EU",
        "transition",
        UPDATE,
        "2026-03-16",
        id="old restriction date 2026-01-12 no longer restricts",
    ),
    pytest.param(
        "2026-02-02",
        "AU",
        "transition",
        UPDATE,
        "2026-03-16",
        id="old overage date 2026-02-02 no longer bills",
    ),
    pytest.param(
        "2026-03-15T23:59:59Z", "US", "transition", UPDATE, "2026-03-16", id="2026-03-15 transition"
    ),
    pytest.param(
        "2026-03-16", "US", "restricted", UPDATE, "2026-03-16", id="2026-03-16 restricted"
    ),
    pytest.param(
        "2026-05-03T23:59:59Z", "CA", "restricted", UPDATE, "2026-03-16", id="2026-05-03 restricted"
    ),
    pytest.param(
        "2026-05-04", "CA", "overage_billing", UPDATE, "2026-03-16", id="2026-05-04 overage billing"
    ),
]


@pytest.mark.parametrize(("instant", "region", "phase", "revision", "restrictions"), PHASE_TABLE)
def test_phase_at(instant: str, region: str, phase: str, revision: str, restrictions: str) -> None:
    got = load_timeline().phase_at(region, at(instant))
    assert got.phase == phase
    assert got.revision_id == revision
    assert got.restrictions_begin == dt.date.fromisoformat(restrictions)


# -- the same dates through the entitlement check ----------------------------------------------------

SEATED = "seated@example.com"
UNSEATED = "unseated@example.com"


@pytest.fixture
def timeline_app(sqlite_url: str) -> Iterator[App]:
    """One account per region, each with a 1-seat salesforce contract held by SEATED; UNSEATED is
    a known integration user without a seat."""
    app = App(sqlite_url, clock=FixedClock(at("2025-09-15")))
    for region in ENABLEMENT:
        name = f"acct-{region.lower()}"
        app.accounts.create(name, region)
        app.accounts.grant(name, "admin@example.com", "manage", None)
        app.contracts.create(
            name,
            "salesforce",
            seats=1,
            plan="standard",
            frequency="monthly",
            start=dt.date(2025, 9, 1),
            months=24,
            unit_price=parse_amount("25"),
        )
        app.accounts.add_users(name, [SEATED, UNSEATED])
    for region in ENABLEMENT:
        result = app.assign(f"acct-{region.lower()}", "salesforce", [SEATED], "admin@example.com")
        assert result.newly_assigned == [SEATED]
    yield app
    app.db.dispose()


# (instant, region, who, allowed, reason, phase, revision, access_ends)
CHECK_TABLE = [
    *[
        pytest.param(
            day_before(day),
            region,
            UNSEATED,
            True,
            "pre_enablement",
            "pre_enablement",
            FIRST_NOTICE,
            None,
            id=f"{region} day before enablement: nothing gated",
        )
        for region, day in ENABLEMENT.items()
    ],
    *[
        pytest.param(
            day,
            region,
            UNSEATED,
            True,
            "grace",
            "transition",
            FIRST_NOTICE,
            "2026-01-12",
            id=f"{region} day of enablement: no seat, grace until 2026-01-12",
        )
        for region, day in ENABLEMENT.items()
    ],
    pytest.param(
        "2026-01-05T12:00:00Z",
        "US",
        UNSEATED,
        True,
        "grace",
        "transition",
        FIRST_NOTICE,
        "2026-01-12",
        id="before 2026-01-06: first notice, grace until 2026-01-12",
    ),
    pytest.param(
        "2026-01-08T12:00:00Z",
        "US",
        UNSEATED,
        True,
        "grace",
        "transition",
        UPDATE,
        "2026-03-16",
        id="2026-01-08: the update governs, grace until 2026-03-16",
    ),
    pytest.param(
        "2026-01-12",
        "US",
        UNSEATED,
        True,
        "grace",
        "transition",
        UPDATE,
        "2026-03-16",
        id="2026-01-12: the old restriction date no longer denies",
    ),
    pytest.param(
        "2026-03-15T23:59:59Z",
        "UK",
        UNSEATED,
        True,
        "grace",
        "transition",
        UPDATE,
        "2026-03-16",
        id="2026-03-15: last day of grace",
    ),
    pytest.param(
        "2026-03-16",
        "UK",
        UNSEATED,
        False,
        "no_seat",
        "restricted",
        UPDATE,
        None,
        id="2026-03-16: no seat, denied",
    ),
    pytest.param(
        "2026-03-16",
        "UK",
        SEATED,
        True,
        "seated",
        "restricted",
        UPDATE,
        None,
        id="2026-03-16: seated, allowed",
    ),
    pytest.param(
        "2026-05-03T23:59:59Z",
        "EU",
        UNSEATED,
        False,
        "no_seat",
        "restricted",
        UPDATE,
        None,
        id="2026-05-03: restricted, not yet billing overage",
    ),
    pytest.param(
        "2026-05-04",
        "EU",
        UNSEATED,
        False,
        "no_seat",
        "overage_billing",
        UPDATE,
        None,
        id="2026-05-04: overage billing",
    ),
    pytest.param(
        "2026-05-04",
        "EU",
        SEATED,
        True,
        "seated",
        "overage_billing",
        UPDATE,
        None,
        id="2026-05-04: seated user still allowed",
    ),
]


@pytest.mark.parametrize(
    ("instant", "region", "who", "allowed", "reason", "phase", "revision", "access_ends"),
    CHECK_TABLE,
)
def test_check_follows_the_timeline(
    timeline_app: App,
    instant: str,
    region: str,
    who: str,
    allowed: bool,
    reason: str,
    phase: str,
    revision: str,
    access_ends: str | None,
) -> None:
    decision = timeline_app.check(f"acct-{region.lower()}", "salesforce", who, "cti", at(instant))
    assert (decision.allowed, decision.reason, decision.phase) == (allowed, reason, phase)
    assert decision.policy_revision == revision
    assert decision.access_ends == (dt.date.fromisoformat(access_ends) if access_ends else None)
    assert (decision.assigned, decision.contracted) == (1, 1)


# -- policy files: new dates are a new revision, never a code change ---------------------------------


def revision(
    published: str,
    restrictions: str,
    overage: str,
    enablement: dict[str, str] | None = None,
    rid: str | None = None,
) -> dict[str, Any]:
    return {
        "id": rid or published,
        "published": published,
        "enablement": dict(ENABLEMENT if enablement is None else enablement),
        "restrictions_begin": restrictions,
        "overage_billing_begins": overage,
    }


SHIPPED = [
    revision(FIRST_NOTICE, "2026-01-12", "2026-02-02"),
    revision(UPDATE, "2026-03-16", "2026-05-04"),
]
# A third revision: published 2026-03-01, restrictions postponed to 2026-04-20, billing 2026-06-01.
THIRD = revision("2026-03-01", "2026-04-20", "2026-06-01", rid="third")


def write_policy(tmp_path: Path, data: Any, name: str = "policy.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the seatgate command line as a user would; returns (exit code, stdout, stderr)."""
    code = 0
    try:
        main(list(args))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def cli_db(
    sqlite_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> str:
    """An account in the US with a 1-seat salesforce contract and one user without a seat."""
    for var in ("SEATGATE_DATABASE_URL", "SEATGATE_NOW", "SEATGATE_ACTOR", "SEATGATE_POLICY"):
        monkeypatch.delenv(var, raising=False)
    base = ["--db", sqlite_url, "--as-of", "2025-09-15"]
    steps = [
        shlex.split("account create acme --region US"),
        shlex.split(
            "contract create acme salesforce --seats 1 --plan standard --frequency monthly "
            "--start 2025-09-01 --months 24 --unit-price 25"
        ),
        ["users", "add", "acme", UNSEATED],
    ]
    for step in steps:
        code, _, err = run(capsys, *base, *step)
        assert code == 0, err
    return sqlite_url


@pytest.mark.parametrize(
    ("instant", "exit_code", "reason", "revision_id", "access_ends"),
    [
        pytest.param("2026-02-27", 0, "grace", UPDATE, "2026-03-16", id="before the third: update"),
        pytest.param(
            "2026-03-01", 0, "grace", "third", "2026-04-20", id="third governs from 03-01"
        ),
        pytest.param(
            "2026-03-16", 0, "grace", "third", "2026-04-20", id="03-16 no longer restricts"
        ),
        pytest.param("2026-04-20", 1, "no_seat", "third", None, id="restricted from 04-20"),
    ],
)
def test_a_third_revision_changes_decisions_without_code(
    cli_db: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    instant: str,
    exit_code: int,
    reason: str,
    revision_id: str,
    access_ends: str | None,
) -> None:
    policy = write_policy(tmp_path, {"revisions": [*SHIPPED, THIRD]})
    code, out, _ = run(
        capsys,
        *("--db", cli_db, "--as-of", instant, "--policy", str(policy), "--json"),
        *("check", "acme", "salesforce", UNSEATED, "cti"),
    )
    got = json.loads(out)
    assert code == exit_code
    assert (got["reason"], got["policy_revision"], got["access_ends"]) == (
        reason,
        revision_id,
        access_ends,
    )


def test_without_the_policy_file_2026_03_16_restricts(
    cli_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        capsys,
        *("--db", cli_db, "--as-of", "2026-03-16", "--json"),
        *("check", "acme", "salesforce", UNSEATED, "cti"),
    )
    assert code == 1
    assert json.loads(out)["reason"] == "no_seat"


def _without(raw: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in raw.items() if k != key}


BAD_POLICIES = [
    pytest.param(
        {"revisions": [SHIPPED[1], SHIPPED[0]]}, "increasing publication order", id="out of order"
    ),
    pytest.param(
        {"revisions": [SHIPPED[0], revision(FIRST_NOTICE, "2026-03-16", "2026-05-04", rid="b")]},
        "is not after",
        id="two revisions published the same day",
    ),
    pytest.param(
        {"revisions": [revision(UPDATE, "2026-05-04", "2026-03-16")]},
        "overage_billing_begins",
        id="overage billing before restrictions",
    ),
    pytest.param(
        {"revisions": [revision(UPDATE, "2025-10-20", "2026-05-04")]},
        "restrictions_begin",
        id="restrictions before an enablement (overlap)",
    ),
    # Issue 11 item 16: a revision names the regions it schedules (any two-letter codes).
    pytest.param(
        {"revisions": [revision(UPDATE, "2026-03-16", "2026-05-04", {})]},
        "enablement must map each region",
        id="no regions",
    ),
    pytest.param(
        {"revisions": [revision(UPDATE, "2026-03-16", "2026-05-04", {**ENABLEMENT, "FR": "x"})]},
        "FR 'x' is not a date",
        id="bad region date",
    ),
    pytest.param(
        {"revisions": [revision(UPDATE, "2026-03-16", "2026-05-04", {"France": "2025-10-04"})]},
        "'France' is not a two-letter upper-case code",
        id="region not a code",
    ),
    pytest.param(
        {"timezone": "Europe/London", "revisions": [revision(UPDATE, "2026-03-16", "2026-05-04")]},
        "timezone 'Europe/London' is not supported",
        id="timezone other than UTC",
    ),
    pytest.param(
        {"revisions": [revision(UPDATE, "16/03/2026", "2026-05-04")]},
        "'16/03/2026' is not a date",
        id="date not ISO",
    ),
    pytest.param(
        {
            "revisions": [
                _without(revision(UPDATE, "2026-03-16", "2026-05-04"), "overage_billing_begins")
            ]
        },
        "overage_billing_begins is missing: a date (YYYY-MM-DD)",
        id="date missing (not shown as None)",
    ),
    pytest.param({"revisions": []}, "no revisions", id="no revisions"),
    pytest.param({"dates": []}, '"revisions" list', id="no revisions list"),
    pytest.param('{"revisions": [', "is not JSON", id="bad JSON"),
]


@pytest.mark.parametrize(("content", "message"), BAD_POLICIES)
def test_a_bad_policy_file_is_one_line_and_exit_2(
    cli_db: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: Any,
    message: str,
) -> None:
    policy = write_policy(tmp_path, content)
    code, out, err = run(
        capsys,
        *("--db", cli_db, "--as-of", "2026-03-16", "--policy", str(policy)),
        *("check", "acme", "salesforce", UNSEATED, "cti"),
    )
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert message in err
    assert str(policy) in err
    with pytest.raises(PolicyError):
        load_timeline(policy)


def test_a_bad_policy_file_with_json_is_one_document(
    cli_db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = write_policy(tmp_path, {"revisions": [SHIPPED[1], SHIPPED[0]]})
    code, out, err = run(
        capsys,
        *("--db", cli_db, "--json", "--policy", str(policy)),
        *("check", "acme", "salesforce", UNSEATED, "cti"),
    )
    assert code == 2
    assert err == ""
    document = json.loads(out)
    assert document["error"]["code"] == "bad_policy"
    assert "increasing publication order" in document["error"]["message"]


def test_a_missing_policy_file_is_one_line_and_exit_2(
    cli_db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere.json"
    code, out, err = run(
        capsys,
        *("--db", cli_db, "--policy", str(missing)),
        *("check", "acme", "salesforce", UNSEATED, "cti"),
    )
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and "does not exist" in err


def test_the_shipped_policy_is_the_seed() -> None:
    timeline = load_timeline()
    assert [r.id for r in timeline.revisions] == [FIRST_NOTICE, UPDATE]
    first, update = timeline.revisions
    assert {k: str(v) for k, v in update.enablement.items()} == ENABLEMENT
    assert {k: str(v) for k, v in first.enablement.items()} == ENABLEMENT
    assert (str(first.restrictions_begin), str(first.overage_billing_begins)) == (
        "2026-01-12",
        "2026-02-02",
    )
    assert (str(update.restrictions_begin), str(update.overage_billing_begins)) == (
        "2026-03-16",
        "2026-05-04",
    )
    assert str(update.published) == "2026-01-06"
