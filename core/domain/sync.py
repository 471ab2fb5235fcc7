"""The rules of a sync run, as pure functions over what a pull returned and what is known
(DESIGN.md "One sync run"; issue 12). The sync service feeds them; storage applies what they
decide.

- :func:`validate_page` — which records of a page are usable, and why the others are quarantined;
- :func:`plan_changes` — the diff of the pull against what is known: a :class:`ChangeSet` of users
  to create, update and link, links to move, records to quarantine and users gaining an activated
  role. It holds **the duplicate-record rule** (issue 12 item 1: more than one CRM record for one
  person) and **the per-product role gain** (seed 002 auto install, issue 12 item 2);
- :class:`PagePlanner` — the same diff, page by page as the pull goes: it settles at once the
  records whose decision no later record can change, and leaves the others to the end of the
  pull (issue 12 item 8: the reconcile's reads and decisions overlap the pull);
- :func:`deletion_guard` — whether a pull may deactivate what it would (issue 12 item 3);
- :func:`incremental_since` — where an incremental pull starts: the cursor less the adapter's
  lookback window (issue 12 item 4);
- :func:`next_cursor` — where the cursor moves after a run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence

import attrs

from ..errors import BadInput
from .records import ExternalUser
from .vocabulary import QuarantineReason, normalize_email

__all__ = [
    "NAME_MAX",
    "ChangeSet",
    "Known",
    "LinkState",
    "PagePlanner",
    "Quarantined",
    "Staged",
    "deletion_guard",
    "gains_role",
    "incremental_since",
    "interrupted_message",
    "next_cursor",
    "plan_changes",
    "rename_batches",
    "run_outcome",
    "user_roles",
    "validate_page",
]

NAME_MAX = 200  # integration_users.name
#: Groups of one email weighed between two calls of a plan's ``beat``.
BEAT_EVERY = 4096
ID_MAX = 100  # external_ids.external_id
EMAIL_MAX = 254  # RFC 5321
DETAIL_MAX = 200  # what a malformed record's problem is cut to, for the log


@attrs.frozen(slots=True)
class Staged:
    """A usable CRM record, normalised: what the rest of the run works on."""

    ext: str
    email: str  # normalised (lower case)
    name: str
    active: bool
    roles: tuple[str, ...]  # sorted, without repeats


@attrs.frozen(slots=True)
class Quarantined:
    """A record the run could not use, and why (:class:`QuarantineReason`)."""

    ext: str
    email: str
    reason: str
    # ``malformed_record``: the adapter's ExternalUser.problem (logged, not stored: the
    # quarantine table keeps the reason alone).
    detail: str = ""


@attrs.frozen(slots=True)
class LinkState:
    """A link of this connector (external id -> user) as stored: the user's state and the
    record's own (``link_active``, ``link_roles``) as the last pull that applied it saw them.

    ``roles`` is what the user row holds and ``others`` the roles of the user's records in the
    account's other connectors: the planner compares the user row with what it should hold
    (:func:`user_roles`), not with the link, so a user row left stale — by an older release that
    updated only the link, or by a crash between the two writes — is repaired by the next pull
    that returns its record."""

    user_id: int
    email: str
    name: str
    active: bool  # the user's
    link_active: bool
    link_roles: tuple[str, ...]
    roles: tuple[str, ...] = attrs.field(kw_only=True)  # the user's
    others: tuple[str, ...] = attrs.field(kw_only=True)


@attrs.frozen(slots=True)
class Known:
    """A user of the account known by email, with this connector's link to it, if any."""

    user_id: int
    name: str
    active: bool
    link: tuple[str, bool, tuple[str, ...]] | None = None  # (external id, active, roles)
    roles: tuple[str, ...] = attrs.field(kw_only=True)  # the user's (see LinkState)
    others: tuple[str, ...] = attrs.field(kw_only=True)  # its records' in other connectors


@attrs.define
class ChangeSet:
    """What a pull changes (:func:`plan_changes`). Storage applies it in the run's transaction.

    ``inserts`` are new users (linked to their record once they have an id); ``links`` new links
    ``(external id, user id)``; ``unlinks`` links whose record lost its user to a twin;
    ``updates`` users whose state changed ``(user id, record)``, the record carrying the roles
    its user row shows (:func:`user_roles`); ``link_updates`` records whose
    own state changed ``(external id, active, roles)``; ``quarantined`` records set aside;
    ``gained`` the emails of users gaining an activated role, in pull order, with their user id
    (0 for a user still to be inserted); ``touched`` every user the pull applied, id -> record;
    ``standing`` the users of records set aside as ``email_taken``, id -> the user as it stands
    (its agent row is still written). A user is in ``touched`` of one change set of a pull at
    most; its entry there wins over a ``standing`` one, of this change set or another: a twin may
    take over the user whose record moved into a taken email (a whole pull had let the set-aside
    override the twin when the twin came first, and the twin's link was written inactive).
    """

    inserts: list[Staged] = attrs.field(factory=list)
    links: list[tuple[str, int]] = attrs.field(factory=list)
    unlinks: list[str] = attrs.field(factory=list)
    updates: list[tuple[int, Staged]] = attrs.field(factory=list)
    link_updates: list[tuple[str, bool, tuple[str, ...]]] = attrs.field(factory=list)
    quarantined: list[Quarantined] = attrs.field(factory=list)
    gained: dict[str, int] = attrs.field(factory=dict)
    touched: dict[int, Staged] = attrs.field(factory=dict)
    standing: dict[int, Staged] = attrs.field(factory=dict)
    deactivating: set[int] = attrs.field(factory=set)  # active users the pull makes inactive
    # Users of ``updates`` whose email changes: written before the inserts and other updates, as
    # an email one of them leaves may be another user's in the same pull (see plan_changes).
    renamed: dict[int, str] = attrs.field(factory=dict)  # user id -> the email it leaves


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def validate_page(
    users: Iterable[ExternalUser], seen_ids: set[str]
) -> tuple[list[Staged], list[Quarantined], dt.datetime | None, int]:
    """``(usable records, quarantined records, newest change stamp, records read)`` of one page.

    A record is quarantined for a missing or bad id (not a string, blank, longer than 100
    characters), an id already seen in the run (``seen_ids``, updated here), a field value its
    adapter could not read (``malformed_record``: :attr:`ExternalUser.problem`, kept as the
    quarantine's ``detail``), a missing or bad email. An id is *seen* even when its record is
    quarantined for a field value or its email: a bad record never makes its user look deleted
    (a full pull does not deactivate it). A record the adapter could not read never moves the
    newest stamp: its stamp may be what was unreadable. Two records with one email are not
    decided here but by :func:`plan_changes`, over the whole pull.
    """
    valid: list[Staged] = []
    bad: list[Quarantined] = []
    newest: dt.datetime | None = None
    read = 0
    for user in users:
        read += 1
        stamp = user.modified_at
        problem = user.problem
        if stamp is not None and problem is None and (newest is None or stamp > newest):
            newest = stamp
        ext = user.external_id
        if not isinstance(ext, str) or not ext.strip():
            reason = QuarantineReason.MISSING_ID if not ext else QuarantineReason.BAD_ID
            bad.append(Quarantined("", _text(user.email)[:EMAIL_MAX], reason))
            continue
        if len(ext) > ID_MAX:
            bad.append(Quarantined("", _text(user.email)[:EMAIL_MAX], QuarantineReason.BAD_ID))
            continue
        if ext in seen_ids:
            bad.append(
                Quarantined(ext, _text(user.email)[:EMAIL_MAX], QuarantineReason.DUPLICATE_ID)
            )
            continue
        seen_ids.add(ext)
        if problem is not None:
            detail = problem if isinstance(problem, str) else "unreadable"
            bad.append(
                Quarantined(
                    ext,
                    _text(user.email)[:EMAIL_MAX],
                    QuarantineReason.MALFORMED_RECORD,
                    detail[:DETAIL_MAX],
                )
            )
            continue
        raw = user.email
        if not raw or not isinstance(raw, str):
            bad.append(Quarantined(ext, "", QuarantineReason.MISSING_EMAIL))
            continue
        try:
            email = normalize_email(raw)
        except BadInput:
            bad.append(Quarantined(ext, raw[:EMAIL_MAX], QuarantineReason.BAD_EMAIL))
            continue
        roles = tuple(sorted(set(user.roles)))
        valid.append(Staged(ext, email, (user.name or "")[:NAME_MAX], bool(user.active), roles))
    return valid, bad, newest, read


def gains_role(
    active: bool,
    roles: Iterable[str],
    activated: frozenset[str],
    *,
    had_role: bool,
) -> bool:
    """Seed 002 auto install, per product: an active record holding one of the connector's
    activated roles, whose link to the user did not hold one before (a new link, or a record that
    was inactive or without the role), gains the product's seat."""
    return active and not had_role and bool(activated) and not activated.isdisjoint(roles)


def user_roles(record_roles: tuple[str, ...], others: Iterable[str]) -> tuple[str, ...]:
    """The roles a user row shows (``users list``): those of its records in every connector of
    the account that links it, sorted, without repeats. One person linked to two CRMs (two
    products) holds both CRMs' roles; had the row shown the latest pull's record alone, two
    connectors would overwrite each other's roles at every run and the row would never settle."""
    extra = set(others).difference(record_roles)
    return tuple(sorted(extra.union(record_roles))) if extra else record_roles


def _held_role(active: bool, roles: Iterable[str], activated: frozenset[str]) -> bool:
    return active and not activated.isdisjoint(roles)


def plan_changes(
    staged: Sequence[Staged],
    linked: Mapping[str, LinkState],
    known: Mapping[str, Known],
    activated: frozenset[str],
    *,
    seen: set[str] | None = None,
    beat: Callable[[], None] = lambda: None,
) -> ChangeSet:
    """The diff of a pull (``staged``, in pull order) against what is known: ``linked`` (this
    connector's links of the pulled external ids) and ``known`` (the account's users by the
    emails of records not linked yet, or linked to a user of another email).

    **More than one CRM record for one person** (issue 12 item 1), decided the same way whatever
    the pull (full or incremental) and whatever the order the CRM returns them in. The records of
    one email are weighed with the connector's established link to that email's user, pulled or
    not (its stored state stands for it):

    1. an active record wins over an inactive one;
    2. between two of the same activity, the established link stays;
    3. between two new records of the same activity, the first in the pull wins.

    The others are quarantined (``duplicate_email``) and change nothing: a quarantined record
    never changes another record's user. When a new active record wins over an inactive
    established one, the user's link moves to it.

    In a full pull (``seen``: every external id the pull returned) an established record the
    pull did not return is gone, so it counts as inactive.

    A linked record whose email became another user's is quarantined (``email_taken``).
    An email whose user's record carries another email in this pull, and moves to it, is no
    longer that user's: the records carrying it in the pull are weighed without it (a twin
    takes an email its established record left in the same pull, in full and incremental pulls
    alike).
    The role gain is :func:`gains_role` on this connector's link.

    ``beat`` is called now and then while the plan goes on — before each round of weighing and
    every :data:`BEAT_EVERY` emails of one — so that the sync service renews its run's lease
    during a long plan as it does between its other steps.
    """
    groups: dict[str, list[Staged]] = {}
    for rec in staged:
        group = groups.get(rec.email)
        if group is None:
            groups[rec.email] = [rec]
        else:
            group.append(rec)
    # Linked records that carry another email in this pull: their users leave their emails, which
    # other records of the pull may then take. Assume every move is applied, then drop the moves
    # the plan set aside (a move into a taken email, a move that lost to a twin) and weigh again,
    # until what is assumed is what is applied. Setting a move aside only takes an email back
    # from the records that counted on it, so the set only shrinks and the loop ends; a pull
    # with no move (nearly all) is planned once.
    moves = {
        rec.ext: found.email
        for rec in staged
        if (found := linked.get(rec.ext)) is not None and found.email != rec.email
    }
    if not moves:
        return _plan(groups, linked, known, activated, seen, set(), beat)
    freed = set(moves.values())
    leaving: dict[str, list[str]] = {}  # email -> the moving records that leave it
    for ext, email in moves.items():
        leaving.setdefault(email, []).append(ext)

    def set_aside_of(emails: Iterable[str]) -> set[str]:
        weighed = {e: groups[e] for e in emails if e in groups}
        plan = _plan(weighed, linked, known, activated, seen, freed, beat)
        return {q.ext for q in plan.quarantined}

    # Each email's records are weighed on their own (nothing one email's weighing writes is read
    # by another's), and only an email's own membership of ``freed`` changes its weighing. So a
    # round re-weighs only the emails it took back, and asks only about the moves whose records
    # it set aside or let through: a chain of moves set aside one per round costs rounds over the
    # chain, not over the pull and the moves (measured: a chain of 10,000 moves had taken 260 s).
    set_aside = set_aside_of(groups)
    changed = set(moves)
    while True:
        taken_back = {
            email
            for email in {moves[ext] for ext in changed if ext in moves}
            if email in freed and all(ext in set_aside for ext in leaving[email])
        }
        if not taken_back:
            return _plan(groups, linked, known, activated, seen, freed, beat)
        freed -= taken_back
        before = {rec.ext for e in taken_back for rec in groups.get(e, ()) if rec.ext in set_aside}
        after = set_aside_of(taken_back)
        set_aside = (set_aside - before) | after
        changed = before ^ after


def rename_batches(renames: Sequence[tuple[int, str, str]], size: int) -> list[list[int]]:
    """Users changing emails ``(user id, old email, new email)``, in batches of about ``size``
    (positions in ``renames``) to write one transaction each, in order, such that the account's
    emails stay unique after every batch: a user whose new email another of them leaves comes
    in that user's batch or a later one, and users trading emails in a cycle share a batch
    (inside a batch the store passes through placeholders). One transaction for every rename of a
    pull had held SQLite's write lock 748 ms for 25,000 of them (a domain move of the directory).

    The users form chains (each wants the email of at most one other, and each email is wanted by
    at most one) and cycles: a chain is written from its end, a cycle as one unit. ``size`` >= 1.
    """
    holder = {old: i for i, (_, old, _) in enumerate(renames)}
    wants: list[int | None] = [holder.get(new) for _, _, new in renames]
    wanted = {j for j in wants if j is not None}
    placed = [False] * len(renames)

    def walk(start: int) -> list[int]:
        """The users from ``start`` on, each wanting the next one's email, until none or one
        already placed."""
        path: list[int] = []
        at: int | None = start
        while at is not None and not placed[at]:
            placed[at] = True
            path.append(at)
            at = wants[at]
        return path

    units: list[list[int]] = []
    for start in range(len(renames)):
        if start not in wanted and not placed[start]:  # a chain's head: nobody wants its email
            units.extend([i] for i in reversed(walk(start)))  # whom it waits for, first
    for start in range(len(renames)):
        if not placed[start]:  # what no chain reached: cycles
            units.append(walk(start))
    batches: list[list[int]] = []
    for unit in units:
        if batches and len(batches[-1]) + len(unit) <= size:
            batches[-1].extend(unit)
        else:
            batches.append(list(unit))
    return batches


def _plan(
    groups: Mapping[str, list[Staged]],
    linked: Mapping[str, LinkState],
    known: Mapping[str, Known],
    activated: frozenset[str],
    seen: set[str] | None,
    freed: set[str],
    beat: Callable[[], None] = lambda: None,
) -> ChangeSet:
    out = ChangeSet()
    for n, (email, group) in enumerate(groups.items()):
        if not n % BEAT_EVERY:
            beat()
        if len(group) == 1:
            rec = group[0]
            found = linked.get(rec.ext)
            if found is not None and found.email == email:
                _apply_linked(out, rec, found, activated)  # the common case: nothing to weigh
                continue
        if email in freed:
            # Its user's record moves to another email in this pull: the user no longer holds
            # this one, nor does its link; the records carrying it are weighed as new to it.
            _weigh(out, email, group, linked, {}, activated, seen)
        else:
            _weigh(out, email, group, linked, known, activated, seen)
    return out


def _weigh(
    out: ChangeSet,
    email: str,
    group: list[Staged],
    linked: Mapping[str, LinkState],
    known: Mapping[str, Known],
    activated: frozenset[str],
    seen: set[str] | None,
) -> None:
    # Records linked to another user (whose email changed to this one) are not twins of the
    # established record: they keep their own user, unless this email is taken.
    mine: list[Staged] = []
    for rec in group:
        found = linked.get(rec.ext)
        if found is not None and found.email != email and email in known:
            _email_taken(out, rec, found)
            continue
        mine.append(rec)
    if not mine:
        return
    established: str | None = None
    established_active = False
    for rec in mine:
        found = linked.get(rec.ext)
        if found is not None and found.email == email:
            established = rec.ext
            established_active = found.link_active
            break
    user = known.get(email)
    pulled_established = established is not None
    if established is None and user is not None and user.link is not None:
        established, established_active = user.link[0], user.link[1]
        if seen is not None and established not in seen:
            established_active = False  # a full pull did not return it: gone
    order = {id(rec): i for i, rec in enumerate(mine)}
    best = min(mine, key=lambda r: (not r.active, r.ext != established, order[id(r)]))
    winner: Staged | None = best
    # An established record the pull did not return keeps the user unless this one is active and
    # it is not.
    if (
        established is not None
        and not pulled_established
        and not (best.active and not established_active)
    ):
        winner = None
    for rec in mine:
        if rec is not winner:
            out.quarantined.append(Quarantined(rec.ext, email, QuarantineReason.DUPLICATE_EMAIL))
            if rec.ext == established and winner is not None:
                out.unlinks.append(rec.ext)  # its user moves to the winner
    if winner is None:
        return
    if established is not None and winner.ext != established and not pulled_established:
        out.unlinks.append(established)
    found = linked.get(winner.ext)
    if found is not None:  # the established record, or an email change to a free address
        _apply_linked(out, winner, found, activated)
        return
    if user is None and pulled_established and established is not None:
        est = linked[established]
        user = Known(
            est.user_id,
            est.name,
            est.active,
            (established, established_active, ()),
            roles=est.roles,
            others=est.others,
        )
    _adopt(out, winner, user, activated)


def _adopt(out: ChangeSet, winner: Staged, user: Known | None, activated: frozenset[str]) -> None:
    """A winning record not linked yet: a new user, or a new link to the user of its email."""
    if user is None:
        out.inserts.append(winner)
        if gains_role(winner.active, winner.roles, activated, had_role=False):
            out.gained[winner.email] = 0
        return
    out.links.append((winner.ext, user.user_id))
    out.touched[user.user_id] = winner
    # A link that moved from an inactive twin held no role; a new link of this connector never
    # did (another product's roles are that product's).
    if gains_role(winner.active, winner.roles, activated, had_role=False):
        out.gained[winner.email] = user.user_id
    if user.active and not winner.active:
        out.deactivating.add(user.user_id)
    roles = user_roles(winner.roles, user.others)
    if user.name != winner.name or user.active != winner.active or user.roles != roles:
        # (a user known alike is linked, not changed)
        out.updates.append((user.user_id, _with_roles(winner, roles)))


def _email_taken(out: ChangeSet, rec: Staged, found: LinkState) -> None:
    """A linked record whose new email is another user's: quarantined, its user unchanged (its
    agent row is still written, as it stands, unless a decision of the pull touches the user)."""
    out.quarantined.append(Quarantined(rec.ext, rec.email, QuarantineReason.EMAIL_TAKEN))
    out.standing[found.user_id] = Staged(
        rec.ext, found.email, found.name, found.active, found.link_roles
    )


def _apply_linked(out: ChangeSet, rec: Staged, found: LinkState, activated: frozenset[str]) -> None:
    uid = found.user_id
    out.touched[uid] = rec
    had = _held_role(found.link_active, found.link_roles, activated)
    if gains_role(rec.active, rec.roles, activated, had_role=had):
        out.gained[rec.email] = uid
    if found.active and not rec.active:
        out.deactivating.add(uid)
    # The user row against what it should hold, not against the link: the link may be current
    # while the row is stale (before bca24ab a role-only change updated the link alone).
    roles = user_roles(rec.roles, found.others)
    if (
        found.email != rec.email
        or found.name != rec.name
        or found.active != rec.active
        or found.roles != roles
    ):
        out.updates.append((uid, _with_roles(rec, roles)))
        if found.email != rec.email:
            out.renamed[uid] = found.email
    if found.link_active != rec.active or found.link_roles != rec.roles:
        out.link_updates.append((rec.ext, rec.active, rec.roles))


def _with_roles(rec: Staged, roles: tuple[str, ...]) -> Staged:
    """``rec`` as its user row is written: with the user's roles (:func:`user_roles`)."""
    return rec if roles == rec.roles else attrs.evolve(rec, roles=roles)


class PagePlanner:
    """:func:`plan_changes`, page by page while the pull goes on (issue 12 item 8: a full sync's
    writes overlap its pull instead of following it).

    :meth:`add` takes a page's usable records (in pull order) with what is known of them — the
    links of their external ids and the users of the emails :meth:`emails_to_look_up` names —
    and returns the changes of the records it could **settle**: those whose decision no record
    still to come can change under the duplicate-record rule. The first record of an email
    settles when it is active and linked to the user of that email (the established link,
    active: rules 1 and 2 keep it whatever comes). A record with no link of its own never
    settles early: a linked record later in the pull may change its email to this one and win it
    as the established link.

    Every later record of a settled email loses to it: quarantined ``duplicate_email``, or
    ``email_taken`` when it is linked to another user. The other emails — an inactive first
    record, a record with no link, a linked record whose email changed — wait for
    :meth:`finish`, which weighs them over the whole pull with :func:`plan_changes` (``seen``:
    in a full pull, every external id it returned).

    Whatever the pages a pull comes in, the changes are the same, and the same as
    :func:`plan_changes` over the whole pull; ``gained`` (the role gain) lists the settled records
    in pull order, then those :meth:`finish` decides: seats are offered in the pull order of
    :meth:`position`.

    ``linkless``: the connector had no link before the run (its first sync). Then no record of
    the pull is linked, so none can take an email as the established link, and the first active
    record of an email wins it whatever comes (rules 1 and 3): it settles at once too, a new user
    or a new link to the account's user of that email. Only emails whose first record is
    inactive wait.

    Settled changes never deactivate anyone. What was read for a settled email is never asked
    again, so what was read stays what :func:`plan_changes` would have read before the pull.
    """

    def __init__(self, activated: frozenset[str], *, linkless: bool = False) -> None:
        self.activated = activated
        self.linkless = linkless
        self.linked: dict[str, LinkState] = {}
        self.known: dict[str, Known] = {}
        self._asked: set[str] = set()  # emails looked up, found or not
        self._settled: set[str] = set()  # emails whose winner is settled
        self._waiting: dict[str, list[Staged]] = {}  # email -> its records, in pull order
        self._position: dict[str, int] = {}  # email -> where it first came in the pull

    def emails_to_look_up(
        self, records: Iterable[Staged], linked: Mapping[str, LinkState]
    ) -> list[str]:
        """The emails of ``records`` (with ``linked``: the links of their external ids) whose
        users :meth:`add` needs: those of records not linked, or linked to a user of another
        email, and not settled nor looked up before."""
        out: dict[str, None] = {}
        for rec in records:
            email = rec.email
            if email in self._settled or email in self._asked:
                continue
            found = linked.get(rec.ext)
            if found is None or found.email != email:
                out[email] = None
        return list(out)

    def add(
        self,
        records: Sequence[Staged],
        linked: Mapping[str, LinkState],
        known: Mapping[str, Known],
        asked: Iterable[str] = (),
    ) -> ChangeSet:
        """Take a page: ``linked`` the links of its external ids, ``known`` the users found among
        ``asked`` (the emails :meth:`emails_to_look_up` named). Returns what it settles."""
        self.linked.update(linked)
        self.known.update(known)
        self._asked.update(asked)
        out = ChangeSet()
        activated, settled, waiting = self.activated, self._settled, self._waiting
        position = self._position
        for rec in records:
            email = rec.email
            if email not in position:
                position[email] = len(position)
            found = linked.get(rec.ext)
            if email in settled:  # it loses to the settled record
                if found is not None and found.email != email:
                    _email_taken(out, rec, found)
                else:
                    out.quarantined.append(
                        Quarantined(rec.ext, email, QuarantineReason.DUPLICATE_EMAIL)
                    )
                continue
            group = waiting.get(email)
            if group is not None:
                group.append(rec)
                continue
            if rec.active and found is not None and found.email == email:
                settled.add(email)
                _apply_linked(out, rec, found, activated)
                continue
            if rec.active and self.linkless:
                if found is not None:
                    raise ValueError(f"record {rec.ext!r} is linked, but the planner is linkless")
                settled.add(email)
                _adopt(out, rec, self.known.get(email), activated)
                continue
            waiting[email] = [rec]
        return out

    def position(self, email: str) -> int | None:
        """Where ``email`` first came in the pull (0, 1, ...), or None if it did not. Seats are
        offered in this order (seed 002 auto install: in pull order up to capacity), the order
        :func:`plan_changes` lists ``gained`` in over the whole pull; the pages' change sets list
        their own, settled early, before those :meth:`finish` decides."""
        return self._position.get(email)

    def finish(self, seen: set[str] | None, beat: Callable[[], None] = lambda: None) -> ChangeSet:
        """The changes of the records left waiting, weighed over the whole pull (``seen``: every
        external id a full pull returned; None for an incremental pull). ``beat`` is called now
        and then while they are weighed (:func:`plan_changes`): a pull whose records mostly wait
        (new users, moves) is one plan of the whole pull, after the pull's last heartbeat."""
        records = [rec for group in self._waiting.values() for rec in group]
        self._waiting = {}
        return plan_changes(records, self.linked, self.known, self.activated, seen=seen, beat=beat)


def deletion_guard(
    *,
    removing: int,
    active_before: int,
    usable_pulled: int,
    full: bool,
    share: float,
    minimum: int,
    force: bool,
) -> str | None:
    """Why a pull must halt before it deactivates ``removing`` of the connector's
    ``active_before`` active users, or None to go on (forced runs always go on).

    It halts, whatever ``minimum`` (issue 12 item 3):

    - a full pull that returned no usable user while the connector has active users (a renamed
      team, a scope that lost its grant: the CRM answered, but not with the people);
    - any pull that would remove every active user;

    and otherwise (DESIGN.md "Deletion guard") when at least ``minimum`` users would go and they
    are more than ``share`` of the active users. The message says how to proceed.
    """
    if force or not active_before:
        return None
    remedy = (
        "nothing was written; check the connector's scope in the CRM, and if these users "
        "really are gone, run the sync again with force"
    )
    if full and usable_pulled == 0:
        return (
            f"deletion guard: the full pull returned no user while {active_before} are active; "
            + remedy
        )
    if removing >= active_before:
        return (
            f"deletion guard: the pull would deactivate every active user "
            f"({removing} of {active_before}); " + remedy
        )
    if removing >= minimum and removing > share * active_before:
        return (
            f"deletion guard: the full pull would deactivate {removing} of {active_before} "
            f"active users ({removing / active_before:.0%} > {share:.0%}); " + remedy
        )
    return None


def incremental_since(cursor: dt.datetime, lookback_seconds: int) -> dt.datetime:
    """Where an incremental pull starts: ``lookback_seconds`` before the cursor, so a change
    committed late with an older stamp is still read (issue 12 item 4). Re-reading a record
    already applied changes nothing (:func:`plan_changes` finds no difference)."""
    return cursor - dt.timedelta(seconds=max(0, lookback_seconds))


def next_cursor(
    old: dt.datetime | None, newest: dt.datetime | None, started: dt.datetime
) -> dt.datetime | None:
    """The cursor after a run: the newest stamp read, never past the run's start (a change
    stamped later — clock skew, a change during the run — would otherwise be skipped), never
    backwards."""
    if newest is None:
        return old
    stamp = min(newest, started)
    return stamp if old is None or stamp > old else old


def run_outcome(outcome: str, lease_expires_at: dt.datetime | None, now: dt.datetime) -> str:
    """How a run is shown at ``now``: a ``running`` run whose lease has expired (or that has
    none) is ``interrupted`` — its process died (issue 13 item 10); any other outcome as
    recorded."""
    if outcome == "running" and (lease_expires_at is None or lease_expires_at <= now):
        return "interrupted"
    return outcome


def interrupted_message(started_at: dt.datetime) -> str:
    """The message of an interrupted run that recorded none."""
    return f"interrupted: its process stopped (started {started_at.isoformat()})"
