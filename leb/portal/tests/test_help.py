from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.test import Client

pytestmark = pytest.mark.django_db

SECTIONS = [
    "validity",
    "missed-date",
    "top-up",
    "agents",
    "receipts",
    "reminders",
    "account",
    "support",
]


def help_in(language: str) -> str:
    client = Client()
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    response = client.get("/help/")
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.parametrize("language", ["zh-hans", "zh-hant", "en"])
def test_help_answers_every_question_in_each_language(language: str) -> None:
    # when
    html = help_in(language)

    # then every section is there with its anchor, listed in the contents
    assert f'<html lang="{language}">' in html
    for anchor in SECTIONS:
        assert f'id="{anchor}"' in html
        assert f'href="#{anchor}"' in html
    assert html.index('data-testid="help-toc"') < html.index('id="validity"')


def test_help_in_english_says_the_things_people_need() -> None:
    # when
    html = " ".join(help_in("en").split())

    # then
    for phrase in (
        "How long does my number last?",
        "grace period",
        "suspension",
        "quarantine",
        "What happens if I miss the date?",
        "How do I top up?",
        "With a voucher",
        "USSD",
        "authorised agent",
        "Is this agent genuine?",
        "ever ask for your password, a voucher PIN",
        "How do I get a receipt or prove a top-up?",
        "verification code",
        "How do reminders and auto-keep work?",
        "How do I reach support?",
    ):
        assert phrase in html, phrase


def test_help_links_to_the_places_it_talks_about() -> None:
    html = help_in("en")
    for url in ("/topup/", "/vouchers/redeem/", "/receipts/", "/autokeep/", "/support/"):
        assert f'href="{url}' in html, url


def test_help_shows_each_card_types_stages(hk_policy: Any) -> None:
    # given a card type with its own timers
    html = help_in("en")

    # then its numbers are on the page
    table = html[html.index('data-testid="help-policies"') :]
    assert hk_policy.name in table
    for days in (hk_policy.grace_days, hk_policy.suspension_days, hk_policy.quarantine_days):
        assert f"<td>{days}</td>" in table


def test_help_without_card_types_has_no_empty_table() -> None:
    assert 'data-testid="help-policies"' not in help_in("en")
