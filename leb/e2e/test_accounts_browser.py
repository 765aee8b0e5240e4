"""Sign-up with email verification, the signed-in redirect, the phone menu and
the Help page, in a real browser at phone width, in each language."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core import mail

from leb.accounts.models import Profile
from leb.e2e.helpers import shot
from leb.notifications.delivery import deliver_due_notifications

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "a long sandbox passphrase 9"
LANGUAGES = ["zh-hans", "zh-hant", "en"]


def nav_links_visible(page: Any) -> bool:
    return bool(page.locator("nav.site-nav a[href='/help/']").is_visible())


@pytest.mark.parametrize("language", LANGUAGES)
def test_sign_up_verify_email_and_go_to_lines(
    page_for: Any, live_server: Any, settings: Any, language: str
) -> None:
    # given a visitor signing up with an email address
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    mail.outbox.clear()
    address = f"verify-{language}@example.com"
    page = page_for(language)
    page.goto(f"{live_server.url}/account/register/")
    assert page.locator("html").get_attribute("lang") == language
    page.fill("input[name=identifier]", address)
    page.fill("input[name=password1]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    page.click("main form button[type=submit]")
    page.wait_for_url(f"{live_server.url}/account/")

    # then the account page says the address is not verified yet
    contact = page.locator("[data-testid=contact-email]")
    assert contact.get_attribute("data-verified") == "no"
    assert page.locator("form[action='/account/verify/email/send/'] button").is_visible()
    shot(page, f"accounts-unverified-{language}")

    # when the outbox delivers the email and its link is opened
    deliver_due_notifications()
    assert [m.to for m in mail.outbox] == [[address]]
    match = re.search(r"(http://\S+/account/verify/email/\S+/)", str(mail.outbox[0].body))
    assert match is not None
    page.goto(match.group(1))

    # then the address is verified
    assert page.locator("[data-testid=verify-email-result]").get_attribute("data-result") == (
        "verified"
    )
    shot(page, f"accounts-verified-{language}")
    assert Profile.objects.get(user__email=address).email_verified_at is not None
    page.goto(f"{live_server.url}/account/")
    assert page.locator("[data-testid=contact-email]").get_attribute("data-verified") == "yes"

    # and opening the sign-in or sign-up page again leads to the lines
    page.goto(f"{live_server.url}/account/login/")
    page.wait_for_url(f"{live_server.url}/my/lines/")
    page.goto(f"{live_server.url}/account/register/?next=/receipts/")
    page.wait_for_url(f"{live_server.url}/receipts/")


@pytest.mark.parametrize("language", LANGUAGES)
def test_phone_menu_opens_and_closes(page_for: Any, live_server: Any, language: str) -> None:
    # given a phone-sized screen
    page = page_for(language, width=390)
    page.goto(f"{live_server.url}/help/")
    button = page.locator("[data-testid=nav-menu-button]")

    # then the long navigation is folded behind the menu button
    assert button.is_visible()
    assert not nav_links_visible(page)
    box = button.bounding_box()
    assert box is not None and box["y"] < 80 and box["height"] >= 40
    shot(page, f"accounts-menu-closed-{language}")

    # when the button is tapped, the links show; tapping again folds them
    button.click()
    assert nav_links_visible(page)
    assert page.locator("[data-testid=nav-menu]").get_attribute("open") is not None
    shot(page, f"accounts-menu-open-{language}")
    button.click()
    assert not nav_links_visible(page)

    # and with a keyboard: Enter opens, Escape closes and keeps focus on the button
    button.focus()
    page.keyboard.press("Enter")
    assert nav_links_visible(page)
    page.keyboard.press("Escape")
    assert not nav_links_visible(page)
    assert page.evaluate("document.activeElement.tagName") == "SUMMARY"

    # and a tap outside the open menu closes it
    button.click()
    page.locator("main h1").click()
    assert not nav_links_visible(page)


def test_wide_screens_show_the_navigation_without_a_button(page_for: Any, live_server: Any) -> None:
    page = page_for("en", width=1024)
    page.goto(f"{live_server.url}/help/")
    assert not page.locator("[data-testid=nav-menu-button]").is_visible()
    assert nav_links_visible(page)
    shot(page, "accounts-menu-wide-en")


@pytest.mark.parametrize("language", LANGUAGES)
def test_help_page_on_a_phone(page_for: Any, live_server: Any, language: str) -> None:
    # given
    page = page_for(language, width=390)

    # when
    page.goto(f"{live_server.url}/help/")

    # then every answer is there, and the contents link to them
    assert page.locator("html").get_attribute("lang") == language
    for anchor in (
        "validity",
        "missed-date",
        "top-up",
        "agents",
        "receipts",
        "reminders",
        "account",
        "support",
    ):
        assert page.locator(f"section#{anchor} h2").is_visible()
    page.click("[data-testid=help-toc] a[href='#agents']")
    assert page.evaluate("location.hash") == "#agents"
    # nothing is wider than the phone
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, f"accounts-help-{language}")
    if language == "en":
        assert "Is this agent genuine?" in page.inner_text("section#agents")
