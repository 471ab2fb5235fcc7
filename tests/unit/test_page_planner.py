"""The reconcile decided page by page (``PagePlanner``, issue 12 item 8) against the rule over the
whole pull (``plan_changes``, issue 12 item 1): whatever the pages a pull comes in, the changes are
the same, and the same as deciding the whole pull at once."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seatgate.core.domain import sync as sync_rules
from seatgate.core.domain.sync import (
    ChangeSet,
    Known,
    LinkState,
    PagePlanner,
    Quarantined,
    Staged,
    plan_changes,
    user_roles,
)

AGENT = frozenset({"Agent"})
EMAILS = ("a@x.example", "b@x.example", "c@x.example", "d@x.example")
EXTS = tuple(f"r{n}" for n in range(8))


@st.composite
def worlds(draw: Any) -> tuple[dict[str, LinkState], dict[str, Known], list[Staged], bool]:
    """What the account holds before the pull (users, each with at most one link of this
    connector, as the rule keeps it; the user row's roles drawn apart from its link's, stale or
    not, and roles of its records in another connector or none) and a pull of distinct external
    ids."""
    linked: dict[str, LinkState] = {}
    known: dict[str, Known] = {}
    free = list(EXTS)
    for uid, email in enumerate(EMAILS, start=1):
        if not draw(st.booleans()):
            continue
        active = draw(st.booleans())
        roles = tuple(sorted(draw(st.sets(st.sampled_from(["Agent", "Other"])))))
        others = draw(st.sampled_from([(), ("Crm2",), ("Agent",)]))
        link = None
        if draw(st.booleans()):
            ext = draw(st.sampled_from(free))
            free.remove(ext)
            link = (ext, draw(st.booleans()), tuple(draw(st.sets(st.sampled_from(["Agent"])))))
            linked[ext] = LinkState(
                uid, email, "Old", active, link[1], link[2], roles=roles, others=others
            )
        known[email] = Known(uid, "Old", active, link, roles=roles, others=others)
    exts = draw(st.lists(st.sampled_from(EXTS), unique=True, max_size=len(EXTS)))
    records = [
        Staged(
            ext,
            draw(st.sampled_from(EMAILS)),
            draw(st.sampled_from(["Old", "New"])),
            draw(st.booleans()),
            tuple(sorted(draw(st.sets(st.sampled_from(["Agent", "Other"]))))),
        )
        for ext in exts
    ]
    return linked, known, records, draw(st.booleans())


def by_pages(
    pages: Sequence[Sequence[Staged]],
    linked: Mapping[str, LinkState],
    known: Mapping[str, Known],
    seen: set[str] | None,
    *,
    linkless: bool = False,
    planner: PagePlanner | None = None,
) -> list[ChangeSet]:
    """What the sync service does: per page, the links of its ids and the users of the emails
    the planner asks for, as they were before the pull."""
    planner = planner or PagePlanner(AGENT, linkless=linkless)
    out = []
    for page in pages:
        links = {r.ext: linked[r.ext] for r in page if r.ext in linked}
        asked = planner.emails_to_look_up(page, links)
        users = {e: known[e] for e in asked if e in known}
        out.append(planner.add(page, links, users, asked))
    out.append(planner.finish(seen))
    return out


def merged(sets: Sequence[ChangeSet]) -> dict[str, Any]:
    """Every change of ``sets``, with the orders that matter (seats are offered in ``gained``
    order; users are inserted in ``inserts`` order), and ``agents``: the record each user's agent
    row is written from — a decision's (``touched``) over a set-aside's as it stands
    (``standing``), whichever change set holds either. No user is decided twice in a pull."""
    out: dict[str, Any] = {
        "inserts": [],
        "links": set(),
        "unlinks": set(),
        "updates": set(),
        "link_updates": set(),
        "quarantined": set(),
        "gained": [],
        "touched": {},
        "standing": {},
        "deactivating": set(),
    }
    for cs in sets:
        out["inserts"] += cs.inserts
        out["links"] |= set(cs.links)
        out["unlinks"] |= set(cs.unlinks)
        out["updates"] |= set(cs.updates)
        out["link_updates"] |= set(cs.link_updates)
        out["quarantined"] |= set(cs.quarantined)
        out["gained"] += list(cs.gained.items())
        assert not out["touched"].keys() & cs.touched.keys()  # one decision per user
        out["touched"].update(cs.touched)
        out["standing"].update(cs.standing)
        out["deactivating"] |= cs.deactivating
    out["agents"] = {**out["standing"], **out["touched"]}
    return out


def offered(
    pages: Sequence[Sequence[Staged]],
    linked: Mapping[str, LinkState],
    known: Mapping[str, Known],
    seen: set[str] | None,
    *,
    linkless: bool = False,
) -> list[tuple[str, int]]:
    """The role gain in the order seats are offered (seed 002: pull order), as the sync service
    orders it: by the planner's positions."""
    planner = PagePlanner(AGENT, linkless=linkless)
    gained = merged(by_pages(pages, linked, known, seen, planner=planner))["gained"]
    return sorted(gained, key=lambda item: planner.position(item[0]) or 0)


def unordered(changes: dict[str, Any]) -> dict[str, Any]:
    return {**changes, "inserts": set(changes["inserts"]), "gained": set(changes["gained"])}


def whole_pull(
    records: Sequence[Staged],
    linked: Mapping[str, LinkState],
    known: Mapping[str, Known],
    seen: set[str] | None,
) -> ChangeSet:
    """plan_changes over the whole pull, with what the sync service reads for it: the links of
    the pulled ids, the users of the emails of records not linked or linked to another email."""
    wanted = {r.email for r in records if r.ext not in linked or linked[r.ext].email != r.email}
    return plan_changes(
        records,
        {r.ext: linked[r.ext] for r in records if r.ext in linked},
        {e: k for e, k in known.items() if e in wanted},
        AGENT,
        seen=seen,
    )


@settings(max_examples=400, deadline=None)
@given(worlds(), st.lists(st.integers(0, len(EXTS)), max_size=4))
def test_any_page_split_gives_the_whole_pulls_changes(
    world: tuple[dict[str, LinkState], dict[str, Known], list[Staged], bool], cuts: list[int]
) -> None:
    linked, known, records, full = world
    seen = {r.ext for r in records} if full else None
    bounds = [0, *sorted(c for c in cuts if c <= len(records)), len(records)]
    pages = [records[a:b] for a, b in itertools.pairwise(bounds)]
    split = merged(by_pages(pages, linked, known, seen))
    one_page = merged(by_pages([records], linked, known, seen))
    assert split == one_page  # the same, in the same order, whatever the pages
    whole = whole_pull(records, linked, known, seen)
    assert unordered(split) == unordered(merged([whole]))
    assert offered(pages, linked, known, seen) == list(whole.gained.items())


def test_a_settled_record_wins_over_the_twins_of_later_pages() -> None:
    """An active record linked to its user settles on its page; a later active twin (new) is
    quarantined, as the whole-pull rule says, and nothing is left for the end."""
    sophie = LinkState(
        7, "s@x.example", "Sophie", True, True, ("Agent",), roles=("Agent",), others=()
    )
    planner = PagePlanner(AGENT)
    page = [Staged("r1", "s@x.example", "Sophie", True, ("Agent",))]
    first = planner.add(page, {"r1": sophie}, {})
    assert first.touched == {7: Staged("r1", "s@x.example", "Sophie", True, ("Agent",))}
    later = planner.add([Staged("r2", "s@x.example", "Sophie", True, ())], {}, {})
    assert [(q.ext, q.reason) for q in later.quarantined] == [("r2", "duplicate_email")]
    assert planner.finish(None) == ChangeSet()


def test_an_inactive_first_record_waits_for_the_whole_pull() -> None:
    planner = PagePlanner(AGENT)
    asked = planner.emails_to_look_up([Staged("r1", "s@x.example", "S", False, ())], {})
    assert asked == ["s@x.example"]
    assert planner.add([Staged("r1", "s@x.example", "S", False, ())], {}, {}, asked) == ChangeSet()
    page = [Staged("r2", "s@x.example", "S", True, ("Agent",))]
    assert planner.emails_to_look_up(page, {}) == []  # looked up already
    assert planner.add(page, {}, {}) == ChangeSet()  # its email waits with the first record
    rest = planner.finish({"r1", "r2"})
    assert [r.ext for r in rest.inserts] == ["r2"] and rest.gained == {"s@x.example": 0}
    assert [(q.ext, q.reason) for q in rest.quarantined] == [("r1", "duplicate_email")]


@settings(max_examples=400, deadline=None)
@given(worlds(), st.lists(st.integers(0, len(EXTS)), max_size=4))
def test_a_first_sync_settles_early_and_any_page_split_gives_the_whole_pulls_changes(
    world: tuple[dict[str, LinkState], dict[str, Known], list[Staged], bool], cuts: list[int]
) -> None:
    """The connector's first sync (``linkless``: no link of it yet; the account's users may be
    another product's): the first active record of an email settles on its page, and the
    changes are still the whole pull's."""
    _, known, records, full = world
    known = {e: attrs.evolve(k, link=None) for e, k in known.items()}
    seen = {r.ext for r in records} if full else None
    bounds = [0, *sorted(c for c in cuts if c <= len(records)), len(records)]
    pages = [records[a:b] for a, b in itertools.pairwise(bounds)]
    split = merged(by_pages(pages, {}, known, seen, linkless=True))
    assert split == merged(by_pages([records], {}, known, seen, linkless=True))
    whole = plan_changes(records, {}, known, AGENT, seen=seen)
    assert unordered(split) == unordered(merged([whole]))
    assert offered(pages, {}, known, seen, linkless=True) == list(whole.gained.items())
    # What waits for the end of the pull: only the emails whose first record is inactive.
    planner = PagePlanner(AGENT, linkless=True)
    planner.add(records, {}, known, planner.emails_to_look_up(records, {}))
    firsts = {}
    for r in records:
        firsts.setdefault(r.email, r)
    left = planner.finish(seen)
    assert {r.email for r in left.inserts} | {known_email(known, u) for u, _ in left.updates} <= {
        e for e, r in firsts.items() if not r.active
    }


def known_email(known: Mapping[str, Known], user_id: int) -> str:
    return next(e for e, k in known.items() if k.user_id == user_id)


def test_a_first_sync_settles_a_new_active_record_on_its_page() -> None:
    planner = PagePlanner(AGENT, linkless=True)
    page = [Staged("r1", "s@x.example", "S", True, ("Agent",))]
    asked = planner.emails_to_look_up(page, {})
    first = planner.add(page, {}, {}, asked)
    assert first.inserts == page and first.gained == {"s@x.example": 0}
    later = planner.add([Staged("r2", "s@x.example", "S", True, ())], {}, {})
    assert [(q.ext, q.reason) for q in later.quarantined] == [("r2", "duplicate_email")]
    assert planner.finish({"r1", "r2"}) == ChangeSet()


def test_a_linkless_planner_refuses_a_linked_record() -> None:
    planner = PagePlanner(AGENT, linkless=True)
    # her email changed
    sophie = LinkState(7, "old@x.example", "Sophie", True, True, (), roles=(), others=())
    with pytest.raises(ValueError, match="'r1' is linked"):
        planner.add([Staged("r1", "s@x.example", "Sophie", True, ())], {"r1": sophie}, {})


def after(
    linked: Mapping[str, LinkState], known: Mapping[str, Known], plan: ChangeSet
) -> tuple[dict[int, tuple[str, str, bool, tuple[str, ...]]], dict[str, int]]:
    """The user rows (id -> email, name, active, roles) and the links (external id -> user id)
    once ``plan`` is applied; inserted users get ids from 100."""
    rows = {k.user_id: (e, k.name, k.active, k.roles) for e, k in known.items()}
    rows.update({f.user_id: (f.email, f.name, f.active, f.roles) for f in linked.values()})
    links = {ext: f.user_id for ext, f in linked.items()}
    links.update({k.link[0]: k.user_id for k in known.values() if k.link is not None})
    for ext in plan.unlinks:
        links.pop(ext, None)
    links.update(dict(plan.links))
    for n, rec in enumerate(plan.inserts, start=100):
        rows[n] = (rec.email, rec.name, rec.active, rec.roles)
        links[rec.ext] = n
    for uid, rec in plan.updates:
        rows[uid] = (rec.email, rec.name, rec.active, rec.roles)
    return rows, links


@settings(max_examples=400, deadline=None)
@given(worlds(), st.lists(st.integers(0, len(EXTS)), max_size=4))
def test_after_any_pull_the_users_of_its_applied_records_hold_their_state(
    world: tuple[dict[str, LinkState], dict[str, Known], list[Staged], bool], cuts: list[int]
) -> None:
    """Whatever the user rows held before (stale roles under a current link, another name, the
    other activity), every record the pull applies leaves its user row with the record's email,
    name, activity and roles (with those of the user's records in other connectors: user_roles),
    and no two applied records share a user; a second pull of the same records changes nothing."""
    linked, known, records, full = world
    seen = {r.ext for r in records} if full else None
    bounds = [0, *sorted(c for c in cuts if c <= len(records)), len(records)]
    pages = [records[a:b] for a, b in itertools.pairwise(bounds)]
    sets = by_pages(pages, linked, known, seen)
    plan = ChangeSet()
    for cs in sets:
        for field in ("inserts", "links", "unlinks", "updates", "link_updates", "quarantined"):
            getattr(plan, field).extend(getattr(cs, field))
    rows, links = after(linked, known, plan)
    others = {f.user_id: f.others for f in linked.values()}
    others.update({k.user_id: k.others for k in known.values()})
    set_aside = {q.ext for q in plan.quarantined}
    applied = [r for r in records if r.ext not in set_aside]
    assert len({links[r.ext] for r in applied}) == len(applied)
    for rec in applied:
        uid = links[rec.ext]
        want = (rec.email, rec.name, rec.active, user_roles(rec.roles, others.get(uid, ())))
        assert rows[uid] == want, rec


@settings(max_examples=400, deadline=None)
@given(worlds(), st.lists(st.integers(0, len(EXTS)), max_size=4))
def test_the_agent_row_of_a_user_follows_the_record_the_pull_applied_to_it(
    world: tuple[dict[str, LinkState], dict[str, Known], list[Staged], bool], cuts: list[int]
) -> None:
    """Every record a pull applies to a user it knew writes that user's agent row (and the link's
    state), whatever another record set aside for that user (``email_taken``, as it stands) and
    whatever the order of the pull and its pages; the users of set-aside records no record was
    applied to are written as they stand."""
    linked, known, records, full = world
    seen = {r.ext for r in records} if full else None
    bounds = [0, *sorted(c for c in cuts if c <= len(records)), len(records)]
    pages = [records[a:b] for a, b in itertools.pairwise(bounds)]
    whole = whole_pull(records, linked, known, seen)
    for sets in ([whole], by_pages(pages, linked, known, seen)):
        changes = merged(sets)
        set_aside = {q.ext for q in changes["quarantined"]}
        _, links = after(linked, known, ChangeSet(links=list(changes["links"])))
        applied = {links[r.ext]: r for r in records if r.ext not in set_aside and r.ext in links}
        assert {uid: changes["agents"][uid] for uid in applied} == applied
        assert changes["agents"].keys() - applied.keys() == changes["standing"].keys() - (
            changes["touched"].keys()
        )


def replanned_whole(
    records: Sequence[Staged],
    linked: Mapping[str, LinkState],
    known: Mapping[str, Known],
    seen: set[str] | None,
) -> ChangeSet:
    """The freed-email fixed point as first written: the whole pull planned again each round
    until the moves assumed applied are the moves applied (quadratic in a chain of moves)."""
    groups: dict[str, list[Staged]] = {}
    for rec in records:
        groups.setdefault(rec.email, []).append(rec)
    moves = {
        r.ext: linked[r.ext].email
        for r in records
        if r.ext in linked and linked[r.ext].email != r.email
    }
    freed = set(moves.values())
    while True:
        out = sync_rules._plan(groups, linked, known, AGENT, seen, freed)
        set_aside = {q.ext for q in out.quarantined}
        applied = {email for ext, email in moves.items() if ext not in set_aside}
        if applied >= freed:
            return out
        freed &= applied


@settings(max_examples=400, deadline=None)
@given(worlds())
def test_the_freed_emails_are_the_fixed_point_of_replanning_the_whole_pull(
    world: tuple[dict[str, LinkState], dict[str, Known], list[Staged], bool],
) -> None:
    """plan_changes re-weighs only the emails a round takes back; the changes are those of
    planning the whole pull again each round, in the same order."""
    linked, known, records, full = world
    seen = {r.ext for r in records} if full else None
    linked = {r.ext: linked[r.ext] for r in records if r.ext in linked}
    assert attrs.asdict(plan_changes(records, linked, known, AGENT, seen=seen)) == attrs.asdict(
        replanned_whole(records, linked, known, seen)
    )


def chain_of_moves(n: int) -> tuple[list[Staged], dict[str, LinkState], dict[str, Known]]:
    """A pull where record i moves to user i+1's email and the last email is a user's outside
    the pull: the records, their links, the users of their emails."""
    records, linked, known = [], {}, {}
    for i in range(n):
        records.append(Staged(f"c{i}", f"e{i + 1}@x.example", "N", True, ("Agent",)))
        linked[f"c{i}"] = LinkState(
            i, f"e{i}@x.example", "N", True, True, ("Agent",), roles=("Agent",), others=()
        )
        link = (f"c{i + 1}", True, ("Agent",)) if i + 1 < n else None
        known[f"e{i + 1}@x.example"] = Known(
            i + 1 if link else 10**7, "N", True, link, roles=("Agent",), others=()
        )
    return records, linked, known


def test_a_long_chain_of_moves_set_aside_costs_rounds_over_the_chain() -> None:
    """Record i moves to user i+1's email and the last email is a user's outside the pull: each
    round sets one move aside. 5,000 of them were 25 million group weighings when every round
    planned the whole pull again; now each round weighs the one email it took back."""
    n = 5000
    records, linked, known = chain_of_moves(n)
    weighed = 0
    real = sync_rules._plan

    def counting(groups: Mapping[str, list[Staged]], *rest: Any) -> ChangeSet:
        nonlocal weighed
        weighed += len(groups)
        return real(groups, *rest)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sync_rules, "_plan", counting)
        out = plan_changes(records, linked, known, AGENT)
    assert len(out.quarantined) == n  # every move set aside, email_taken down the chain
    assert weighed <= 4 * n


def test_a_twin_taking_over_a_user_whose_record_moved_to_a_taken_email_writes_its_agent() -> None:
    """r0, the inactive record of user 3 (c@), moves to a@, another user's: set aside
    (``email_taken``). r3, new and active, carries c@ and takes user 3 over. User 3's agent row
    and r3's link follow r3, active, whatever the pull's order and pages: the set-aside's row as
    it stands never overrides the decision (it had when r3 came before r0 in one change set)."""
    user3 = LinkState(3, "c@x.example", "Old", False, False, (), roles=(), others=())
    linked = {"r0": user3}
    known = {
        "a@x.example": Known(1, "Old", True, None, roles=(), others=()),
        "c@x.example": Known(3, "Old", False, ("r0", False, ()), roles=(), others=()),
    }
    r0 = Staged("r0", "a@x.example", "New", False, ())
    r3 = Staged("r3", "c@x.example", "New", True, ("Agent",))
    for records in ([r3, r0], [r0, r3]):
        for seen in ({"r0", "r3"}, None):
            whole = merged([plan_changes(records, linked, known, AGENT, seen=seen)])
            for pages in ([records], [records[:1], records[1:]]):
                assert merged(by_pages(pages, linked, known, seen)) == whole
            assert whole["agents"] == {3: r3}
            assert whole["links"] == {("r3", 3)} and whole["unlinks"] == {"r0"}
            assert whole["quarantined"] == {Quarantined("r0", "a@x.example", "email_taken")}


def test_the_final_plan_beats_in_each_round_and_every_so_many_emails() -> None:
    """PagePlanner.finish hands its ``beat`` to plan_changes, which calls it before each round of
    weighing and every BEAT_EVERY emails: the sync service renews its run's lease there, as
    between its other steps (a chain of moves set aside one per round is a round each; a pull
    of new users is one round over all of their emails)."""
    n = 300
    records, linked, known = chain_of_moves(n)
    planner = PagePlanner(AGENT)
    planner.add(records, linked, known, planner.emails_to_look_up(records, linked))
    beats: list[None] = []
    out = planner.finish(None, lambda: beats.append(None))
    assert len(out.quarantined) == n and len(beats) >= n
    new = [
        Staged(f"n{i}", f"n{i}@x.example", "N", True, ()) for i in range(3 * sync_rules.BEAT_EVERY)
    ]
    beats.clear()
    out = plan_changes(new, {}, {}, AGENT, beat=lambda: beats.append(None))
    assert len(out.inserts) == len(new) and len(beats) == 3
