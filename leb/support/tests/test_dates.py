"""Support pages show dates in the viewer's own time zone."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.urls import reverse

from leb.accounts.actions import do_save_preferences
from leb.common.formatting import format_local_date, format_local_datetime
from leb.support.actions import do_open_ticket
from leb.topups.models import TopUpOrder

pytestmark = pytest.mark.django_db
# 20:00 UTC is already the next morning in Hong Kong, still the evening in London.
LATE = datetime(2026, 6, 1, 20, 0, tzinfo=UTC)


def client_in_zone(user: Any, zone: str) -> Client:
    do_save_preferences(user, language="en", time_zone=zone)
    client = Client()
    # Signing in carries the account's zone into the session.
    client.force_login(user, backend="leb.accounts.backends.EmailOrPhoneBackend")
    return client


@pytest.fixture
def late_ticket(owner: Any) -> Any:
    return do_open_ticket(user=owner, subject="Late", category="other", body="Hello", now=LATE)


@pytest.mark.parametrize("zone", ["Asia/Hong_Kong", "Europe/London", "America/New_York"])
def test_ticket_list_and_thread_use_the_viewers_zone(
    owner: Any, late_ticket: Any, zone: str
) -> None:
    # given
    client = client_in_zone(owner, zone)
    expected = format_local_datetime(LATE, ZoneInfo(zone), "en")

    # when
    listing = client.get(reverse("support:tickets")).content.decode()
    thread = client.get(reverse("support:ticket", args=[late_ticket.public_id])).content.decode()

    # then
    assert expected in listing
    assert expected in thread


def test_the_zones_really_differ(owner: Any, late_ticket: Any) -> None:
    hong_kong = client_in_zone(owner, "Asia/Hong_Kong").get(reverse("support:tickets"))
    london = client_in_zone(owner, "Europe/London").get(reverse("support:tickets"))
    assert "Jun 2, 2026" in hong_kong.content.decode()
    assert "Jun 2, 2026" not in london.content.decode()
    assert "Jun 1, 2026" in london.content.decode()


def test_order_choices_on_the_contact_form_use_the_viewers_date(
    owner: Any, failed_order: Any
) -> None:
    # given an order paid late in the UTC evening
    TopUpOrder.objects.filter(pk=failed_order.pk).update(created_at=LATE)

    # when the owner opens the contact form in two zones
    pages = {
        zone: client_in_zone(owner, zone).get(reverse("support:contact")).content.decode()
        for zone in ("Asia/Hong_Kong", "Europe/London")
    }

    # then each shows the day it was there
    for zone, html in pages.items():
        day = format_local_date(LATE, ZoneInfo(zone), "en", "medium")
        assert f"{day} · " in html, zone
    assert "Jun 2, 2026 · " in pages["Asia/Hong_Kong"]
    assert "Jun 1, 2026 · " in pages["Europe/London"]


def test_report_page_shows_the_order_time_in_the_viewers_zone(
    owner: Any, failed_order: Any
) -> None:
    TopUpOrder.objects.filter(pk=failed_order.pk).update(created_at=LATE)
    client = client_in_zone(owner, "Europe/London")
    html = client.get(reverse("support:report_topup", args=[failed_order.public_id])).content
    assert format_local_datetime(LATE, ZoneInfo("Europe/London"), "en") in html.decode()


def test_without_a_chosen_zone_the_operators_zone_is_used(
    owner: Any, late_ticket: Any, owner_client: Client, settings: Any
) -> None:
    html = owner_client.get(reverse("support:tickets")).content.decode()
    assert format_local_datetime(LATE, ZoneInfo(settings.TIME_ZONE), "en") in html
