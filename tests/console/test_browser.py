"""The console in a real browser: Debian's chromium, driven by Playwright, against a real
``seatgate serve`` on 127.0.0.1 (see conftest). Each test saves a screenshot; those docs/console.md
shows go to docs/console/, the others to the test's temporary directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import ACME, DOCS_SHOTS, USERS, World, make_world


@pytest.fixture
def world(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """The browser tests run on SQLite only (the pages' reads run on both in test_pages)."""
    with make_world(sqlite_url, monkeypatch) as made:
        yield made


SEATS = f"/console/accounts/{ACME}/products/salesforce/seats"
OVERAGE = f"/console/accounts/{ACME}/products/servicenow/seats"


def shot(page: Any, where: Path, name: str, *, full_page: bool = True) -> None:
    """A screenshot; durations measured by the run are masked, so the same pages give the same
    image (docs/console/ does not change with each run)."""
    where.mkdir(parents=True, exist_ok=True)
    page.screenshot(
        path=str(where / f"{name}.png"),
        full_page=full_page,
        mask=[page.locator("td.seconds")],
        animations="disabled",
        caret="hide",
    )


def sign_in(page: Any, token: str, path: str = "/console/login") -> None:
    page.goto(path)
    page.get_by_label("Admin token of your account").fill(token)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()


def row_of(page: Any, email: str) -> Any:
    return page.locator(f'tr[data-email="{email}"]')


def search(page: Any, prefix: str) -> None:
    page.get_by_label("Search users by email (starts with)").fill(prefix)
    with page.expect_navigation():
        page.keyboard.press("Enter")


def assign(page: Any, email: str) -> None:
    with page.expect_navigation():
        page.get_by_role("button", name=f"Seat of {email}: none; assign one").click()


def test_sign_in_shows_my_apps(page: Any, world: World) -> None:
    page.goto("/console/")
    assert page.url.endswith("/console/login")
    shot(page, DOCS_SHOTS, "login")
    sign_in(page, world.tokens["admin"])
    assert page.url.endswith(f"/console/accounts/{ACME}/apps")
    assert page.get_by_role("heading", name="My Apps").is_visible()
    salesforce = page.get_by_role("row").filter(has_text="salesforce").first
    assert "order_form" in salesforce.inner_text() and "25.00 USD" in salesforce.inner_text()
    # numbers are right-aligned in their cells
    cell = page.locator("td.num").first
    assert cell.evaluate("e => getComputedStyle(e).textAlign") == "right"
    shot(page, DOCS_SHOTS, "apps")


def test_assign_until_capacity_then_refused(page: Any, world: World) -> None:
    sign_in(page, world.tokens["admin"], SEATS)
    assert page.url.endswith(SEATS)  # back where the sign-in started
    assert page.locator("#assigned").inner_text() == "0"
    search(page, "u00")
    assert page.locator("tbody tr[data-email]").count() == 9  # u001..u009
    assign(page, USERS[0])
    assert page.locator("#assigned").inner_text() == "1"
    assert page.locator("#available").inner_text() == "2"
    assert page.get_by_role("status").inner_text() == f"Seat assigned to {USERS[0]}."
    assign(page, USERS[1])
    assign(page, USERS[2])
    assert page.locator("#assigned").inner_text() == "3"
    assign(page, USERS[3])
    refusal = row_of(page, USERS[3]).locator(".refused")
    assert refusal.get_attribute("data-reason") == "capacity_reached"
    assert "capacity_reached" in refusal.inner_text()
    assert page.locator("#assigned").inner_text() == "3"
    assert world.core.seats.seated_emails(ACME, "salesforce") == USERS[:3]
    shot(page, DOCS_SHOTS, "seats")


def test_overage_banner_refuses_then_buying_two_seats_lets_one_in(page: Any, world: World) -> None:
    sign_in(page, world.tokens["admin"], OVERAGE)
    banner = page.locator("#overage")
    assert banner.is_visible()
    text = banner.inner_text()
    assert "3 seats are assigned and 2 contracted" in text
    assert "reduce to the contracted count" in text and "buy more seats" in text
    search(page, "u01")
    assign(page, USERS[10])
    refusal = row_of(page, USERS[10]).locator(".refused")
    assert refusal.get_attribute("data-reason") == "in_overage"
    shot(page, DOCS_SHOTS, "overage")
    # Buy two: the price for the rest of the term first, then the confirmation.
    page.get_by_role("link", name="Buy seats").click()
    page.get_by_label("Seats to add").fill("2")
    page.get_by_role("button", name="Show the price").click()
    price = page.locator("#rest-of-term").inner_text()
    assert price.endswith(" USD") and float(price.split()[0].replace(",", "")) > 0
    assert world.core.contracts.get(ACME, "servicenow").quantity == 2  # nothing bought yet
    shot(page, DOCS_SHOTS, "buy")
    page.get_by_role("button", name="Confirm the purchase").click()
    assert "4 are contracted now" in page.get_by_role("status").inner_text()
    page.get_by_role("link", name="Back to Manage Seats").click()
    assert page.locator("#overage").count() == 0
    assign(page, USERS[10])
    assert page.locator("#assigned").inner_text() == "4"
    assert USERS[10] in world.core.seats.seated_emails(ACME, "servicenow")


def test_uninstall_shows_the_term_end_first(page: Any, world: World, tmp_path: Path) -> None:
    sign_in(page, world.tokens["admin"])
    page.get_by_role("link", name="Uninstall salesforce").click()
    summary = page.locator(".summary").inner_text()
    assert "2027-01-01" in summary and "billing cancellation ticket" in summary
    assert world.core.installs.get(ACME, "salesforce").uninstall_effective is None
    shot(page, DOCS_SHOTS, "uninstall")
    page.get_by_role("button", name="Confirm: uninstall at the end of the term").click()
    assert "2027-01-01" in page.get_by_role("status").inner_text()
    assert str(world.core.installs.get(ACME, "salesforce").uninstall_effective) == "2027-01-01"
    shot(page, tmp_path, "uninstalled")


def test_another_accounts_page_is_404(page: Any, world: World, tmp_path: Path) -> None:
    sign_in(page, world.tokens["admin"])
    answer = page.goto("/console/accounts/other/products/salesforce/seats")
    assert answer.status == 404
    assert page.get_by_role("heading", name="Not found").is_visible()
    shot(page, tmp_path, "foreign")


def test_a_form_without_its_csrf_token_is_refused(page: Any, world: World, tmp_path: Path) -> None:
    sign_in(page, world.tokens["admin"], SEATS)
    row_of(page, USERS[0]).locator('input[name="csrf"]').evaluate("e => e.remove()")
    assign(page, USERS[0])
    assert page.get_by_role("heading", name="Form refused").is_visible()
    assert world.core.seats.seated_emails(ACME, "salesforce") == []
    shot(page, tmp_path, "csrf")


def test_no_page_contains_a_secret(page: Any, world: World, tmp_path: Path) -> None:
    sign_in(page, world.tokens["admin"])
    session = next(c["value"] for c in page.context.cookies() if c["name"] == "seatgate_session")
    secrets = [*world.secrets(), session]
    run = world.core.listings.runs(ACME).items[0]["id"]
    for path in (
        f"/console/accounts/{ACME}/apps",
        SEATS,
        OVERAGE,
        f"{SEATS}/buy?quantity=1",
        f"/console/accounts/{ACME}/apps/salesforce/plan?plan=premium",
        f"/console/accounts/{ACME}/apps/salesforce/uninstall",
        f"/console/accounts/{ACME}/billing",
        f"/console/accounts/{ACME}/syncs",
        f"/console/accounts/{ACME}/syncs/{run}",
        world.link,
    ):
        page.goto(path)
        html = page.content()
        assert not [s[:6] for s in secrets if s in html], path
        # the session cookie is HttpOnly: no script on the page can read it
        assert session not in page.evaluate("document.cookie")
    shot(page, tmp_path, "secrets")


def test_billing_and_syncs_pages(page: Any, world: World) -> None:
    sign_in(page, world.tokens["admin"])
    page.get_by_role("link", name="Billing").click()
    assert page.get_by_role("heading", name="Billing", exact=True).is_visible()
    total = page.locator("tfoot td.num").inner_text()
    assert total.endswith(" USD")
    shot(page, DOCS_SHOTS, "billing")
    page.get_by_role("link", name="Syncs").click()
    assert "succeeded" in page.locator("tbody").first.inner_text()
    page.get_by_label("Connector").select_option("salesforce")
    with page.expect_navigation():
        page.get_by_role("button", name="Show").click()
    assert "not an email" in page.locator("tbody").nth(1).inner_text()  # quarantined now
    shot(page, DOCS_SHOTS, "syncs")
    page.get_by_role("link", name="Details of run").first.click()
    quarantined = page.locator("tbody").nth(1).inner_text()
    assert "not an email" in quarantined
    shot(page, DOCS_SHOTS, "run")


def test_an_install_link_installs_under_the_order_form(page: Any, world: World) -> None:
    # Opened before signing in: the sign-in page brings the admin back to the link.
    sign_in(page, world.tokens["admin"], world.link)
    assert "installs hubspot on account acme" in page.locator("main").inner_text()
    shot(page, DOCS_SHOTS, "install_link")
    settings = (
        '{"base_url": "' + world.hs.url + '", "access_token": "${SEATGATE_ACCOUNT_acme__HS_TOKEN}"}'
    )
    page.get_by_label("Connector settings").fill(settings)
    page.get_by_role("button", name="Install hubspot").click()
    assert (
        "installed on acme under your order-form contract"
        in page.get_by_role("status").inner_text()
    )
    assert world.core.installs.get(ACME, "hubspot").enabled
    # Used: the same link again is one line, and changes nothing.
    page.goto(world.link)
    assert "was used on" in page.get_by_role("alert").inner_text()


def test_a_foreign_or_tampered_install_link_is_one_line(
    page: Any, world: World, tmp_path: Path
) -> None:
    sign_in(page, world.tokens["other"], world.link)
    assert "for another account" in page.get_by_role("alert").inner_text()
    tampered = world.link[:-3] + ("AAA" if not world.link.endswith("AAA") else "BBB")
    page.goto(tampered)
    line = page.get_by_role("alert").inner_text()
    assert "malformed, altered or signed by another server" in line and "\n" not in line
    shot(page, tmp_path, "tampered")
    assert world.core.install_links.list(ACME)[0].state == "active"


def test_keyboard_only(page: Any, world: World, tmp_path: Path) -> None:
    page.goto("/console/login")
    page.keyboard.press("Tab")  # the skip link
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "token"
    page.keyboard.type(world.tokens["admin"])
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/console/accounts/{ACME}/apps")
    page.goto(SEATS)
    button = page.get_by_role("button", name=f"Seat of {USERS[0]}: none; assign one")
    button.focus()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.locator("#assigned").inner_text() == "1"
    shot(page, tmp_path, "keyboard")
