"""The back office and the validity cap: the order page says the days really
added; a manual top-up that would add nothing is refused with the reason."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from leb.catalog.models import Plan
from leb.common import clock
from leb.topups.actions import do_admin_topup
from leb.topups.admin import manual_topup_notes
from leb.topups.models import TopUpOrder

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(django_user_model: Any) -> Any:
    return django_user_model.objects.create_superuser("boss", "boss@example.com", "pw-boss-1234")


@pytest.fixture
def staff_client(client: Client, staff: Any) -> Client:
    client.force_login(staff)
    return client


def _plan(code: str, *, days: int, credit: int) -> Plan:
    return Plan.objects.create(
        code=code,
        name_en=code,
        name_zh_hans=code,
        name_zh_hant=code,
        currency="HKD",
        price=5000,
        credit=credit,
        validity_days=days,
    )


def test_order_page_shows_the_days_really_added(
    staff_client: Client, staff: Any, make_line: Any, now: datetime
) -> None:
    # given a 180-day manual top-up on a line valid 300 more days (365-day cap)
    line = make_line()
    line.valid_until = now + timedelta(days=300)
    line.save(update_fields=["valid_until"])
    order = do_admin_topup(
        line=line,
        staff=staff,
        reason="counter",
        idempotency_key="t:cap",
        plan=_plan("hk-180", days=180, credit=5000),
        now=now,
    )
    # when staff open the order
    page = staff_client.get(reverse("admin:topups_topuporder_change", args=[order.pk]))
    # then it says 65 days were added, fewer than the plan's 180
    assert "65 (fewer than the plan&#x27;s 180: validity cap or reset rule)" in (
        page.content.decode()
    )
    (note,) = manual_topup_notes(order)
    assert note.startswith("This top-up added 65 days, not 180: the number is now valid until ")
    assert note.endswith("(the most this line allows is 365 days from today).")


def test_a_full_top_up_has_no_note(staff: Any, make_line: Any, now: datetime) -> None:
    order = do_admin_topup(
        line=make_line(),
        staff=staff,
        reason="counter",
        idempotency_key="t:full",
        plan=_plan("hk-180", days=180, credit=5000),
        now=now,
    )
    assert manual_topup_notes(order) == []


def test_manual_top_up_that_would_add_nothing_is_refused_with_the_reason(
    staff_client: Client, make_line: Any, now: datetime
) -> None:
    # given a days-only plan and a line already valid until its cap
    plan = _plan("hk-keep", days=180, credit=0)
    line = make_line()
    line.valid_until = now + timedelta(days=365)
    line.save(update_fields=["valid_until"])
    url = reverse("admin:lines_line_topup", args=[line.pk])
    with clock.frozen(now):
        form = staff_client.get(url)
        key = re.search(r'name="idempotency_key" value="([^"]+)"', form.content.decode())
        assert key is not None
        # when staff top it up
        response = staff_client.post(
            url, {"plan": plan.pk, "reason": "goodwill", "idempotency_key": key.group(1)}
        )
    # then the form says why and nothing is written
    assert response.status_code == 200
    assert "This top-up would add no days" in response.content.decode()
    assert not TopUpOrder.objects.exists()


def test_manual_top_up_that_adds_fewer_days_warns_staff(
    staff_client: Client, make_line: Any, now: datetime
) -> None:
    from django.contrib.messages import get_messages

    # given a 180-day plan and a line valid 300 more days (365-day cap)
    plan = _plan("hk-180", days=180, credit=5000)
    line = make_line()
    line.valid_until = now + timedelta(days=300)
    line.save(update_fields=["valid_until"])
    url = reverse("admin:lines_line_topup", args=[line.pk])
    with clock.frozen(now):
        form = staff_client.get(url)
        key = re.search(r'name="idempotency_key" value="([^"]+)"', form.content.decode())
        assert key is not None
        # when staff top it up
        response = staff_client.post(
            url,
            {"plan": plan.pk, "reason": "goodwill", "idempotency_key": key.group(1)},
            follow=True,
        )
    # then besides the success, a warning says only 65 days were added
    texts = [str(message) for message in get_messages(response.wsgi_request)]
    assert any(text.startswith("This top-up added 65 days, not 180") for text in texts), texts
