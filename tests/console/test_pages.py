"""The console in process (the ASGI test client): sign-in and the session cookie, CSRF refusals,
another account's pages, no secret on any page, and each page's content from the services."""

from __future__ import annotations

import html
import json
import re
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient

from seatgate.core.clock import FixedClock
from seatgate.core.entrypoints.http.console.session import COOKIE, SESSION_SECONDS
from seatgate.core.errors import NotFound

from .conftest import ACME, ADMIN, USERS, World, csrf_of, sign_in

SEATS = f"/console/accounts/{ACME}/products/salesforce/seats"
OVERAGE = f"/console/accounts/{ACME}/products/servicenow/seats"


def test_pages_need_a_session(client: TestClient) -> None:
    for path in (f"/console/accounts/{ACME}/apps", SEATS, f"/console/accounts/{ACME}/billing"):
        answer = client.get(path, follow_redirects=False)
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/console/login?next=")


def test_sign_in_sets_a_strict_httponly_cookie_and_keeps_no_token(
    client: TestClient, world: World
) -> None:
    page = client.get("/console/login")
    answer = client.post(
        "/console/login",
        data={"token": world.tokens["admin"], "csrf": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/console/accounts/{ACME}/apps"
    cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith(COOKIE))
    flags = {part.strip().lower() for part in cookie.split(";")}
    assert {"httponly", "samesite=strict", "path=/"} <= flags
    assert "secure" not in flags  # loopback: a browser would not send a Secure cookie over http
    # The session is a token of its own: the pasted one is in no cookie.
    assert world.tokens["admin"] not in cookie
    made = [t for t in world.core.tokens.list(ACME) if (t.created_by or "").startswith("console")]
    assert len(made) == 1 and made[0].actor == ADMIN and made[0].role == "admin"


def test_the_cookie_is_secure_off_loopback(world: World) -> None:
    from seatgate.core.entrypoints.http.app import create_app
    from seatgate.core.entrypoints.http.settings import Settings

    app = create_app(world.core, Settings(db_url=world.url))
    with TestClient(app, base_url="https://console.example.com") as remote:
        page = remote.get("/console/login")
        login_cookie = page.headers["set-cookie"].lower()
        assert "secure" in login_cookie and "samesite=strict" in login_cookie
        answer = remote.post(
            "/console/login",
            data={"token": world.tokens["admin"], "csrf": csrf_of(page.text)},
            follow_redirects=False,
        )
        cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith(COOKIE))
        assert "secure" in cookie.lower()


@pytest.mark.parametrize(
    ("name", "expected"),
    [("billing", "billing token"), ("nope", "unknown or revoked token")],
)
def test_only_an_admin_token_signs_in(
    client: TestClient, world: World, name: str, expected: str
) -> None:
    token = world.tokens.get(name, "sgt_" + "x" * 43)
    page = client.get("/console/login")
    answer = client.post("/console/login", data={"token": token, "csrf": csrf_of(page.text)})
    assert answer.status_code == 401
    assert expected in answer.text
    assert token not in answer.text
    assert COOKIE not in answer.headers.get("set-cookie", "")


def test_sign_in_without_its_csrf_token_is_refused(client: TestClient, world: World) -> None:
    client.get("/console/login")
    answer = client.post("/console/login", data={"token": world.tokens["admin"]})
    assert answer.status_code == 403
    assert "CSRF" in answer.text
    assert COOKIE not in answer.headers.get("set-cookie", "")


def test_a_form_without_its_csrf_token_changes_nothing(client: TestClient, world: World) -> None:
    sign_in(client, world.tokens["admin"])
    for data in (
        {"email": USERS[0], "action": "assign"},
        {"email": USERS[0], "action": "assign", "csrf": "0" * 64},
    ):
        answer = client.post(SEATS, data=data)
        assert answer.status_code == 403
        assert "nothing was done" in answer.text
    assert world.core.seats.seated_emails(ACME, "salesforce") == []
    # and with it, the same form assigns
    page = client.get(SEATS)
    answer = client.post(
        SEATS, data={"email": USERS[0], "action": "assign", "csrf": csrf_of(page.text)}
    )
    assert answer.status_code == 200
    assert world.core.seats.seated_emails(ACME, "salesforce") == [USERS[0]]


def test_another_accounts_pages_answer_404(client: TestClient, world: World) -> None:
    sign_in(client, world.tokens["admin"])
    for path in (
        "/console/accounts/other/apps",
        "/console/accounts/other/products/salesforce/seats",
        "/console/accounts/other/billing",
        "/console/accounts/other/syncs",
        "/console/accounts/nobody/apps",
    ):
        answer = client.get(path)
        assert answer.status_code == 404, path
        assert "other" not in answer.text.split("<main", 1)[1] or "no such page" in answer.text
    csrf = csrf_of(client.get(SEATS).text)
    answer = client.post(
        "/console/accounts/other/products/salesforce/seats",
        data={"email": "x@other.example", "action": "assign", "csrf": csrf},
    )
    assert answer.status_code == 404
    assert world.core.seats.seated_emails("other", "salesforce") == []


def test_an_unknown_console_path_is_the_consoles_html_page_not_a_json_problem(
    client: TestClient, world: World
) -> None:
    for signed_in in (False, True):
        if signed_in:
            sign_in(client, world.tokens["admin"])
        for method, path in (
            ("GET", "/console/nope"),
            ("GET", "/console/accounts/acme/apps/salesforce/nope"),
            ("POST", "/console/nope"),
            ("GET", "/install/a/b"),
        ):
            answer = client.request(method, path, follow_redirects=False)
            assert answer.status_code == 404, (method, path)
            assert answer.headers["content-type"].startswith("text/html"), (method, path)
            assert "no such page" in answer.text
            # The navigation of a signed-in person; none before signing in.
            assert ("Sign out" in answer.text) == signed_in, (path, signed_in)
    # The console's own routes and files still answer, and the API keeps its problem documents.
    assert client.get("/console/static/console.css").status_code == 200
    assert client.get("/v1/nope").headers["content-type"] == "application/problem+json"


def test_a_control_character_in_a_path_is_a_400_never_a_500(
    client: TestClient, world: World
) -> None:
    sign_in(client, world.tokens["admin"])
    for path in (
        "/console/accounts/%00/apps",
        "/console/accounts/acme/products/%00/seats",
        "/install/%00",
    ):
        answer = client.get(path)
        assert answer.status_code == 400, (path, answer.status_code)
        assert "Traceback" not in answer.text


def test_sign_out_ends_the_session_everywhere(client: TestClient, world: World) -> None:
    sign_in(client, world.tokens["admin"])
    stolen = client.cookies.get(COOKIE)
    page = client.get(f"/console/accounts/{ACME}/apps")
    answer = client.post(
        "/console/logout", data={"csrf": csrf_of(page.text)}, follow_redirects=False
    )
    assert answer.status_code == 303
    # A copy of the cookie kept somewhere no longer opens anything: the session token is revoked.
    client.cookies.set(COOKIE, stolen or "")
    assert client.get(SEATS, follow_redirects=False).status_code == 303


def test_revoking_the_admin_token_ends_the_sessions_signed_in_with_it(
    client: TestClient, world: World
) -> None:
    sign_in(client, world.tokens["admin"])
    assert client.get(SEATS, follow_redirects=False).status_code == 200
    pasted = world.core.tokens.authenticate(world.tokens["admin"])
    assert pasted is not None
    world.core.tokens.revoke(pasted.token_id, by=ADMIN)
    # The session's own token was revoked with it (and is listed so), and the cookie opens nothing.
    assert client.get(SEATS, follow_redirects=False).status_code == 303
    sessions = [t for t in world.core.tokens.list(ACME) if t.parent == pasted.token_id]
    assert len(sessions) == 1 and sessions[0].revoked_at is not None
    # Signing in again with the revoked token is refused, as any revoked token is.
    page = client.get("/console/login")
    answer = client.post(
        "/console/login",
        data={"token": world.tokens["admin"], "csrf": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert answer.status_code != 303 and "unknown or revoked token" in answer.text


def test_a_session_ends_after_its_length_by_the_clock(client: TestClient, world: World) -> None:
    sign_in(client, world.tokens["admin"])
    assert client.get(SEATS, follow_redirects=False).status_code == 200
    assert isinstance(world.core.clock, FixedClock)
    world.core.clock.advance(seconds=SESSION_SECONDS + 1)
    assert client.get(SEATS, follow_redirects=False).status_code == 303
    session = [
        t for t in world.core.tokens.list(ACME) if (t.created_by or "").startswith("console")
    ]
    assert session[0].revoked_at is not None  # a copied cookie opens nothing either


def test_pages_are_not_cached_framed_or_referred(client: TestClient, world: World) -> None:
    sign_in(client, world.tokens["admin"])
    for path in (SEATS, world.link, "/console/login"):
        headers = client.get(path).headers
        assert headers["cache-control"] == "no-store"
        assert headers["referrer-policy"] == "no-referrer"
        assert "frame-ancestors 'none'" in headers["content-security-policy"]


def test_no_page_contains_a_secret(client: TestClient, world: World) -> None:
    sign_in(client, world.tokens["admin"])
    session_secret = client.cookies.get(COOKIE)
    assert session_secret
    pages = [
        f"/console/accounts/{ACME}/apps",
        SEATS,
        OVERAGE,
        f"{SEATS}/buy?quantity=2",
        f"/console/accounts/{ACME}/apps/salesforce/uninstall",
        f"/console/accounts/{ACME}/apps/salesforce/plan?plan=premium",
        f"/console/accounts/{ACME}/apps/pega/install",
        f"/console/accounts/{ACME}/billing",
        f"/console/accounts/{ACME}/syncs",
        world.link,
        "/console/accounts/other/apps",
    ]
    runs = world.core.listings.runs(ACME).items
    pages.append(f"/console/accounts/{ACME}/syncs/{runs[0]['id']}")
    for path in pages:
        html = client.get(path).text
        for secret in [*world.secrets(), session_secret]:
            assert secret not in html, (path, secret[:6])
        assert "Traceback" not in html


def test_manage_seats_pages_users_by_email_with_search(client: TestClient, world: World) -> None:
    sign_in(client, world.tokens["admin"])
    first = client.get(SEATS).text
    shown = re.findall(r'data-email="([^"]+)"', first)
    assert len(shown) == 50 and shown == sorted(shown)
    nxt = re.search(r'href="([^"]*cursor=[^"]+)">Next page', first)
    assert nxt is not None
    second = client.get(nxt.group(1).replace("&amp;", "&")).text
    more = re.findall(r'data-email="([^"]+)"', second)
    assert more and more[0] > shown[-1]
    found = client.get(SEATS, params={"q": "U11"}).text
    assert re.findall(r'data-email="([^"]+)"', found) == [f"u11{i}@acme.example" for i in range(10)]
    none = client.get(SEATS, params={"q": "u1_"}).text  # _ is a character, not a wildcard
    assert re.findall(r'data-email="([^"]+)"', none) == []


def test_manage_seats_shows_counts_phase_and_refusals(client: TestClient, world: World) -> None:
    sign_in(client, world.tokens["admin"])
    page = client.get(SEATS).text
    assert 'id="contracted">3<' in page and 'id="assigned">0<' in page
    assert "restricted" in page and "2026-03-16" in page and "2026-05-04" in page
    csrf = csrf_of(page)
    for email in USERS[:3]:
        client.post(SEATS, data={"email": email, "action": "assign", "csrf": csrf})
    refused = client.post(SEATS, data={"email": USERS[3], "action": "assign", "csrf": csrf}).text
    assert 'data-reason="capacity_reached"' in refused
    assert 'id="assigned">3<' in refused and 'id="available">0<' in refused
    over = client.get(OVERAGE).text
    assert 'id="overage"' in over and "buy more seats" in over
    refused = client.post(OVERAGE, data={"email": USERS[5], "action": "assign", "csrf": csrf}).text
    assert 'data-reason="in_overage"' in refused


def test_an_actor_without_authority_is_refused_next_to_the_user(
    client: TestClient, world: World
) -> None:
    sign_in(client, world.tokens["clerk"])
    csrf = csrf_of(client.get(SEATS).text)
    answer = client.post(SEATS, data={"email": USERS[0], "action": "assign", "csrf": csrf})
    assert 'data-reason="not_authorized"' in answer.text
    assert world.core.seats.seated_emails(ACME, "salesforce") == []


def test_bad_input_is_one_line_and_nothing_is_bought(client: TestClient, world: World) -> None:
    sign_in(client, world.tokens["admin"])
    answer = client.get(f"{SEATS}/buy", params={"quantity": "lots"})
    assert answer.status_code == 400
    assert "bad quantity 'lots': expected a whole number from 1 to 1,000,000" in html.unescape(
        answer.text
    )
    csrf = csrf_of(answer.text)
    answer = client.post(f"{SEATS}/buy", data={"quantity": "0", "csrf": csrf})
    assert answer.status_code == 400 and "Traceback" not in answer.text
    assert world.core.contracts.get(ACME, "salesforce").quantity == 3


APPS = f"/console/accounts/{ACME}/apps"


def test_a_plan_change_shows_the_price_for_all_selected_users_first(
    client: TestClient, world: World
) -> None:
    sign_in(client, world.tokens["admin"])
    csrf = csrf_of(client.get(SEATS).text)
    client.post(SEATS, data={"email": USERS[0], "action": "assign", "csrf": csrf})
    client.post(SEATS, data={"email": USERS[1], "action": "assign", "csrf": csrf})
    page = client.get(f"{APPS}/salesforce/plan", params={"plan": "premium"})
    expected = world.core.purchases.plan_change_summary(ACME, "salesforce", "premium")
    text = html.unescape(page.text)
    assert f"{Decimal(expected['price_per_period']):,.2f} USD" in text
    assert f'Selected users</dt><dd class="num">{expected["users"]}<' in text
    assert world.core.purchases.plans_in_force(ACME)["salesforce"] == "standard"  # not yet
    done = client.post(f"{APPS}/salesforce/plan", data={"plan": "premium", "csrf": csrf})
    assert done.status_code == 200 and "is now <strong>premium</strong>" in done.text
    apps = client.get(APPS).text
    assert 'premium <span class="muted">(contracted: standard)</span>' in apps
    bad = client.get(f"{APPS}/salesforce/plan", params={"plan": "analytics"})
    assert bad.status_code == 400 and "analytics" in html.unescape(bad.text)


def test_enable_and_disable(client: TestClient, world: World) -> None:
    sign_in(client, world.tokens["admin"])
    csrf = csrf_of(client.get(APPS).text)
    answer = client.post(f"{APPS}/salesforce/disable", data={"csrf": csrf})
    assert "salesforce is disabled." in answer.text
    assert world.core.installs.get(ACME, "salesforce").enabled is False
    answer = client.post(f"{APPS}/salesforce/enable", data={"csrf": csrf})
    assert "salesforce is enabled." in answer.text
    assert world.core.installs.get(ACME, "salesforce").enabled is True


def test_a_self_serve_install_shows_the_summary_then_commits(
    client: TestClient, world: World
) -> None:
    sign_in(client, world.tokens["admin"])
    form = f"{APPS}/salesforce_voice/install"
    page = client.get(form)
    assert "self-serve purchase" in page.text
    settings = json.dumps(
        {
            **world.sf.settings(),
            "password": "${SEATGATE_ACCOUNT_acme__SF_PASSWORD}",
            "security_token": "${SEATGATE_ACCOUNT_acme__SF_TOKEN}",
        }
    )
    data = {"plan": "premium", "users": "4", "settings": settings, "csrf": csrf_of(page.text)}
    summary = client.post(form, data={**data, "step": "review"})
    assert summary.status_code == 200
    assert "Purchase summary" in summary.text and "180.00 USD" in summary.text  # 4 x 45.00
    assert [v.contract.product for v in world.core.contracts.list(ACME)].count(
        "salesforce_voice"
    ) == 0
    done = client.post(form, data={**data, "step": "confirm"})
    assert done.status_code == 200 and "salesforce_voice is installed" in done.text
    contract = world.core.contracts.get(ACME, "salesforce_voice")
    assert contract.channel == "self_serve" and contract.quantity == 4
    commitments = world.core.billing.commitments(ACME)
    assert any(c["product"] == "salesforce_voice" and c["actor"] == ADMIN for c in commitments)


def test_a_secret_in_clear_is_refused_in_one_line(client: TestClient, world: World) -> None:
    sign_in(client, world.tokens["admin"])
    form = f"{APPS}/salesforce_voice/install"
    page = client.get(form)
    clear = json.dumps(world.sf.settings())
    answer = client.post(
        form,
        data={
            "plan": "standard",
            "users": "1",
            "settings": clear,
            "step": "review",
            "csrf": csrf_of(page.text),
        },
    )
    assert answer.status_code == 400
    assert "a ${ENV_VAR} reference" in html.unescape(answer.text)
    # the form comes back with the settings as typed, the secrets masked
    for field in ("password", "security_token"):
        assert str(world.sf.settings()[field]) not in answer.text
        assert f"&#34;{field}&#34;: &#34;***&#34;" in answer.text
    assert "salesforce_voice" not in [v.contract.product for v in world.core.contracts.list(ACME)]


def test_syncs_show_runs_a_runs_details_and_what_is_quarantined_now(
    client: TestClient, world: World
) -> None:
    sign_in(client, world.tokens["admin"])
    page = client.get(f"/console/accounts/{ACME}/syncs").text
    run = world.core.listings.runs(ACME).items[0]
    assert f"#{run['id']}" in page and "succeeded" in page
    assert "Quarantined now" not in page  # per connector only
    page = client.get(f"/console/accounts/{ACME}/syncs", params={"product": "salesforce"}).text
    assert "Quarantined now · salesforce" in page and "not an email" in html.unescape(page)
    details = client.get(f"/console/accounts/{ACME}/syncs/{run['id']}").text
    assert "not an email" in html.unescape(details)
    for bad in ("999999", "x1"):
        assert client.get(f"/console/accounts/{ACME}/syncs/{bad}").status_code == 404
    assert (
        client.get(f"/console/accounts/{ACME}/syncs", params={"product": "nope"}).status_code == 400
    )


def test_an_install_under_a_contract_shows_the_contract_then_commits(
    client: TestClient, world: World
) -> None:
    sign_in(client, world.tokens["admin"])
    form = f"{APPS}/hubspot/install"
    page = client.get(form)
    settings = json.dumps(
        {"base_url": world.hs.url, "access_token": "${SEATGATE_ACCOUNT_acme__HS_TOKEN}"}
    )
    data = {"settings": settings, "csrf": csrf_of(page.text)}
    review = client.post(form, data={**data, "step": "review"})
    assert review.status_code == 200 and "Your contract applies" in review.text
    assert "Purchase summary" not in review.text
    with pytest.raises(NotFound):
        world.core.installs.get(ACME, "hubspot")  # nothing installed by the review
    done = client.post(form, data={**data, "step": "confirm"})
    assert done.status_code == 200 and "hubspot is installed" in done.text
    assert world.core.installs.get(ACME, "hubspot").enabled
    commitments = world.core.billing.commitments(ACME)
    assert any(c["product"] == "hubspot" and c["actor"] == ADMIN for c in commitments)


def _one_line(answer_text: str) -> str:
    alert = re.search(r'<p class="error" role="alert">(.*?)</p>', answer_text, re.S)
    assert alert is not None
    line = html.unescape(alert.group(1))
    assert "\n" not in line
    return line


def test_a_revoked_or_expired_install_link_is_one_line_and_installs_nothing(
    client: TestClient, world: World
) -> None:
    sign_in(client, world.tokens["admin"])
    csrf = csrf_of(client.get(APPS).text)
    settings = json.dumps(
        {"base_url": world.hs.url, "access_token": "${SEATGATE_ACCOUNT_acme__HS_TOKEN}"}
    )
    link_id = world.core.install_links.list(ACME)[0].id
    assert isinstance(world.core.clock, FixedClock)
    world.core.clock.advance(days=15)  # the link's 14 days are over
    sign_in(client, world.tokens["admin"])  # (and the first session's 8 hours)
    answer = client.get(world.link)
    assert answer.status_code == 400 and "expired on" in _one_line(answer.text)
    world.core.clock.advance(days=-15)
    sign_in(client, world.tokens["admin"])
    csrf = csrf_of(client.get(APPS).text)
    world.core.install_links.revoke(ACME, link_id, ADMIN)
    answer = client.get(world.link)
    assert "was revoked on" in _one_line(answer.text)
    answer = client.post(world.link, data={"settings": settings, "csrf": csrf})
    assert answer.status_code == 400 and "was revoked on" in _one_line(answer.text)
    with pytest.raises(NotFound):
        world.core.installs.get(ACME, "hubspot")


def test_an_install_link_post_needs_its_csrf_token(client: TestClient, world: World) -> None:
    sign_in(client, world.tokens["admin"])
    settings = json.dumps(
        {"base_url": world.hs.url, "access_token": "${SEATGATE_ACCOUNT_acme__HS_TOKEN}"}
    )
    answer = client.post(world.link, data={"settings": settings})
    assert answer.status_code == 403
    assert world.core.install_links.list(ACME)[0].state == "active"
