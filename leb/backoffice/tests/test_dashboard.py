"""The dashboard on the back office's first page: its figures count what the
database holds, each bar and row opens the list behind it, each role sees
what its permissions allow, and its query count does not grow with the rows."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from html import unescape
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from leb.backoffice.dashboard import build
from leb.backoffice.roles import ADMIN, FINANCE, SUPPORT
from leb.common import clock
from leb.lines.models import Line, LineStatus
from leb.notifications.models import Notification
from leb.payments.models import PaymentAttempt
from leb.support.actions import do_open_ticket
from leb.testing import topup

pytestmark = pytest.mark.django_db

INDEX = "/ops/"


@pytest.fixture(autouse=True)
def _clock(now: datetime) -> Iterator[None]:
    with clock.frozen(now):
        yield


def staff(django_user_model: Any, role: str) -> Any:
    user = django_user_model.objects.create_user(
        f"staff-{role}", password="x-unused-9", is_staff=True
    )
    user.groups.add(Group.objects.get(name=role))
    return user


def signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def figure(page: str, key: str) -> str:
    """The HTML of one figure of the dashboard ("" when it is not shown)."""
    match = re.search(rf'<figure class="leb-figure" id="figure-{key}">(.*?)</figure>', page, re.S)
    return match.group(1) if match else ""


def table_rows(html: str) -> list[tuple[str, list[str]]]:
    """(link, cells) of each row of a figure's table."""
    rows = []
    for row in re.findall(r"<tr><th scope=\"row\">(.*?)</tr>", html, re.S):
        link = unescape(re.search(r'href="([^"]*)"', row).group(1))  # type: ignore[union-attr]
        cells = [
            unescape(re.sub(r"<[^>]+>", "", c))
            for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", "<th>" + row)
        ]
        rows.append((link, [c.strip() for c in cells if c.strip()]))
    return rows


def listed(client: Client, url: str) -> int:
    """How many rows the admin list at `url` shows."""
    response = client.get(url)
    assert response.status_code == 200, url
    return int(response.context["cl"].result_count)


@pytest.fixture
def seeded(
    make_line: Callable[..., Any],
    hkd_plan: Any,
    gbp_plan: Any,
    uk_policy: Any,
    now: datetime,
) -> dict[str, Any]:
    """Top-ups in two currencies on two days, lines in several states,
    reminders sent and failed, payments failed and waiting, open tickets."""
    hk_line = make_line()
    uk_line = make_line(policy=uk_policy, currency="GBP")
    yesterday = now - timedelta(days=1)
    topup(hk_line, hkd_plan, now=yesterday)
    topup(hk_line, hkd_plan, now=now)
    topup(uk_line, gbp_plan, now=now, channel="ivr")
    lost = make_line()
    Line.objects.filter(pk=lost.pk).update(
        status=LineStatus.TERMINATED, terminated_at=now - timedelta(days=2)
    )
    make_line(activate=False)
    # activated 25 days ago with 30 days to its first top-up: 5 days left
    make_line(at=now - timedelta(days=25))
    for i, (channel, status) in enumerate(
        [("sms", "sent"), ("sms", "sent"), ("sms", "failed"), ("email", "sent")]
    ):
        Notification.objects.create(
            recipient=f"line:{hk_line.pk}",
            line=hk_line,
            channel=channel,
            language="en",
            time_zone="Asia/Hong_Kong",
            kind="expiry_reminder",
            dedupe_key=f"reminder:{i}",
            status=status,
            created_at=now - timedelta(hours=i),
        )
    order = hk_line.orders.order_by("pk").first()
    for status, age in [("failed", 1), ("failed", 40), ("pending", 3)]:
        PaymentAttempt.objects.create(
            order=order,
            provider="stripe",
            amount=5000,
            currency="HKD",
            status=status,
            created_at=now - timedelta(days=age),
            updated_at=now,
        )
    for age in (0, 2, 10):
        do_open_ticket(
            user=None,
            contact_email="someone@example.com",
            subject="Where is my top-up?",
            category="topup",
            body="It did not arrive.",
            now=now - timedelta(days=age, hours=1),
        )
    return {"hk_line": hk_line, "uk_line": uk_line}


def test_support_sees_counts_but_no_revenue(django_user_model: Any, seeded: Any) -> None:
    # given a member of support
    client = signed_in(staff(django_user_model, SUPPORT))

    # when they open the back office
    page = client.get(INDEX).content.decode()

    # then the top-up counts, lines, reminders, payments and tickets are there,
    # money is not, and the app list is still below
    for key in (
        "topups-per-day",
        "topups-by-channel",
        "lines-by-status",
        "lines-expiring",
        "lines-lost",
        "reminder-delivery",
        "payments-attention",
        "tickets-by-age",
    ):
        assert figure(page, key), key
    assert not figure(page, "revenue-hkd")
    assert "HKD\xa050.00" not in page
    assert "Revenue is shown to the finance and admin roles." in page
    assert 'id="content-main"' in page and reverse("admin:lines_line_changelist") in page


def test_finance_sees_revenue_per_currency_and_no_tickets(
    django_user_model: Any, seeded: Any, now: datetime
) -> None:
    # given a member of finance (who may not open tickets)
    client = signed_in(staff(django_user_model, FINANCE))

    # when
    page = client.get(INDEX).content.decode()

    # then revenue is shown per currency, never added across currencies
    hkd = table_rows(figure(page, "revenue-hkd"))
    gbp = table_rows(figure(page, "revenue-gbp"))
    assert [cells[1:] for _link, cells in hkd] == [["HKD\xa050.00", "1"], ["HKD\xa050.00", "1"]]
    assert [cells[1:] for _link, cells in gbp] == [["GBP\xa010.00", "1"]]
    assert "GBP" not in figure(page, "revenue-hkd") and "HKD" not in figure(page, "revenue-gbp")
    assert not figure(page, "tickets-by-age")
    # and today's row lists exactly today's HKD top-up
    assert listed(client, hkd[-1][0]) == 1
    assert listed(client, gbp[0][0]) == 1


def test_admin_sees_every_figure(django_user_model: Any, seeded: Any) -> None:
    page = signed_in(staff(django_user_model, ADMIN)).get(INDEX).content.decode()
    assert figure(page, "revenue-hkd") and figure(page, "tickets-by-age")


def test_every_bar_and_row_opens_the_list_it_counts(admin_client: Client, seeded: Any) -> None:
    # given the dashboard as a superuser
    page = admin_client.get(INDEX).content.decode()

    # then each table row's first number is what its link lists
    checks = {
        "lines-by-status": {"Active": 3, "Not activated": 1, "Terminated": 1},
        "lines-expiring": {"in the next 7 days": 1, "in the next 30 days": 1},
        "tickets-by-age": {"under 1 day": 1, "1 to 3 days": 1, "7 days or more": 1},
    }
    for key, expected in checks.items():
        rows = {cells[0]: (link, cells) for link, cells in table_rows(figure(page, key))}
        for label, count in expected.items():
            link, cells = rows[label]
            assert cells[1] == str(count), (key, label, cells)
            assert listed(admin_client, link) == count, (key, label, link)
    # the lost-lines week with the terminated line
    lost = [
        (link, cells) for link, cells in table_rows(figure(page, "lines-lost")) if cells[1] != "0"
    ]
    assert len(lost) == 1 and listed(admin_client, lost[0][0]) == 1
    # bars link to the same lists: every bar's link opens a list
    bars = re.findall(r'<a href="([^"]+)"><rect', page)
    assert len(bars) > 50
    for url in set(bars[:: max(1, len(bars) // 15)]):
        assert admin_client.get(unescape(url)).status_code == 200


def test_channels_reminders_and_payments_are_counted(admin_client: Client, seeded: Any) -> None:
    page = admin_client.get(INDEX).content.decode()

    by_channel = {cells[0]: cells for _l, cells in table_rows(figure(page, "topups-by-channel"))}
    assert by_channel["Web"][1:] == ["HKD", "2", "HKD\xa0100.00"]
    assert by_channel["Phone (IVR)"][1:] == ["GBP", "1", "GBP\xa010.00"]

    reminders = {
        cells[0]: (link, cells) for link, cells in table_rows(figure(page, "reminder-delivery"))
    }
    link, cells = reminders["SMS"]
    # sent, failed, not sent, waiting, delivery rate
    assert cells[1:] == ["2", "1", "0", "0", "66.7%"]
    assert listed(admin_client, link) == 3
    assert "75.0%" in figure(page, "reminder-delivery")  # 3 of the 4 tried went out

    payments = table_rows(figure(page, "payments-attention"))
    # the 40-day-old failure is outside the period; the waiting one counts however old
    assert [cells for _l, cells in payments] == [["Card", "1", "1"]]
    failed_bar = re.search(
        r'<a href="([^"]*status__exact=failed[^"]*)"><rect', figure(page, "payments-attention")
    )
    assert failed_bar and listed(admin_client, unescape(failed_bar.group(1))) == 1


def _seed_topups(line: Any, plan: Any, now: datetime, n: int) -> None:
    for i in range(n):
        topup(
            line, plan, now=now - timedelta(days=i % 20, minutes=i), channel=("web", "ivr")[i % 2]
        )


def _seed_settlement(now: datetime, *, days: int) -> None:
    """Reconciled days, each with a mismatch of every kind."""
    from leb.finance.models import Mismatch, MismatchKind, SettlementRun

    for back in range(days):
        run, _created = SettlementRun.objects.get_or_create(
            date=now.date() - timedelta(days=back + 1),
            provider="sandbox",
            currency="HKD",
            defaults={"created_at": now, "actor": "test", "mismatch_count": len(MismatchKind)},
        )
        Mismatch.objects.bulk_create([Mismatch(run=run, kind=kind) for kind in MismatchKind])


def test_the_query_count_does_not_grow_with_the_rows(
    django_user_model: Any, make_line: Callable[..., Any], hkd_plan: Any, now: datetime
) -> None:
    # given a superuser (every figure), 3 top-ups and a reconciled day
    user = django_user_model.objects.create_superuser("root", password="x-unused-9")
    line = make_line()
    _seed_topups(line, hkd_plan, now, 3)
    _seed_settlement(now, days=1)
    build(user)  # content types, permissions cache
    with CaptureQueriesContext(connection) as few:
        dashboard = build(user)
    assert dashboard is not None

    # when there are ten times as many rows
    _seed_topups(line, hkd_plan, now - timedelta(minutes=30), 27)
    for _ in range(27):
        make_line()
    _seed_settlement(now, days=10)
    with CaptureQueriesContext(connection) as many:
        build(user)

    # then the same, small number of queries reads the dashboard
    assert len(few.captured_queries) == len(many.captured_queries) == 10
    # one query per figure read, none per row
    assert all("GROUP BY" in q["sql"] or "COUNT(" in q["sql"] for q in many.captured_queries)


def test_the_page_as_a_whole_has_a_fixed_budget(
    admin_client: Client, make_line: Callable[..., Any], hkd_plan: Any, now: datetime
) -> None:
    line = make_line()
    _seed_topups(line, hkd_plan, now, 3)
    admin_client.get(INDEX)
    with CaptureQueriesContext(connection) as few:
        assert admin_client.get(INDEX).status_code == 200
    _seed_topups(line, hkd_plan, now - timedelta(hours=1), 27)
    with CaptureQueriesContext(connection) as many:
        assert admin_client.get(INDEX).status_code == 200
    assert len(few.captured_queries) == len(many.captured_queries) <= 14


def test_a_bad_filter_in_a_linked_list_is_reported_not_a_500(admin_client: Client) -> None:
    # when staff edit a dashboard link by hand into nonsense
    url = reverse("admin:topups_topuporder_changelist") + "?fulfilled_at__gte=yesterday-ish"
    response = admin_client.get(url, follow=True)

    # then the list says the filter cannot be applied
    assert response.status_code == 200
    page = response.content.decode()
    assert "This filter cannot be applied" in page
    assert "yesterday-ish" in page


def test_a_bad_filter_value_on_the_line_list_is_reported(admin_client: Client) -> None:
    url = reverse("admin:lines_line_changelist") + "?valid_until__lt=2026-13-45"
    response = admin_client.get(url, follow=True)
    assert response.status_code == 200
    assert "This filter cannot be applied" in response.content.decode()


def test_the_dashboard_speaks_chinese(admin_client: Client, seeded: Any) -> None:
    page = admin_client.get(INDEX, headers={"accept-language": "zh-hant"}).content.decode()
    assert 'lang="zh-hant"' in page
    assert "每日增值數" in page and "以表格顯示數據" in page
    assert "Top-ups per day" not in page


def test_svg_charts_are_accessible(admin_client: Client, seeded: Any) -> None:
    page = admin_client.get(INDEX).content.decode()
    svgs = re.findall(r"<svg ([^>]*)>\s*<title id=\"([^\"]+)\">", page)
    assert len(svgs) >= 9
    for attributes, title_id in svgs:
        assert 'role="img"' in attributes
        assert f'aria-labelledby="{title_id}"' in attributes
    assert page.count('<caption class="visually-hidden">') == len(svgs)
