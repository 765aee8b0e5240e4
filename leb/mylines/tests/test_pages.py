from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from leb.lines.models import Line
from leb.testing import topup

pytestmark = pytest.mark.django_db


def test_owner_sees_their_lines(
    owner_client: Client, owner: Any, make_line: Callable[..., Any], hkd_plan: Any, now: datetime
) -> None:
    # given
    line = make_line(owner=owner)
    topup(line, hkd_plan, now=now)
    other = make_line()

    # when
    response = owner_client.get(reverse("mylines:list"))

    # then
    body = response.content.decode()
    assert response.status_code == 200
    assert line.iccid not in body
    assert "+852 94" in body
    assert "HK$50.00" in body
    assert reverse("mylines:line", args=[line.pk]) in body
    assert reverse("mylines:line", args=[other.pk]) not in body
    assert "Active" in body
    assert "days left" in body


def test_the_list_says_when_there_are_no_lines(owner_client: Client) -> None:
    # when
    response = owner_client.get(reverse("mylines:list"))

    # then
    assert "No line is linked to your account yet." in response.content.decode()


def test_list_query_budget(
    owner_client: Client,
    owner: Any,
    make_line: Callable[..., Any],
    django_assert_max_num_queries: Any,
) -> None:
    # given
    for _ in range(6):
        make_line(owner=owner)

    # when / then: session, user, profile, the lines with number/policy/wallet,
    # and one spare for the announcement banner when its cache is cold
    with django_assert_max_num_queries(5 + 1):
        response = owner_client.get(reverse("mylines:list"))
    assert response.content.decode().count('class="mylines-item') == 6


def test_owner_sees_the_line_page(
    owner_client: Client, owner: Any, make_line: Callable[..., Any], hkd_plan: Any, now: datetime
) -> None:
    # given
    line = make_line(owner=owner)
    order = topup(line, hkd_plan, now=now)

    # when
    response = owner_client.get(reverse("mylines:line", args=[line.pk]))

    # then
    body = response.content.decode()
    assert response.status_code == 200
    assert "Active" in body
    assert "HK$50.00" in body
    assert order.receipt_number in body
    assert "Completed" in body
    assert "If you do not top up, the number will be reclaimed on" in body
    assert "If you do not top up, the number will be suspended on" in body


def test_the_line_page_shows_the_activation_qr_until_installed(
    owner_client: Client, owner: Any, make_line: Callable[..., Any], now: datetime
) -> None:
    # given
    line = make_line(owner=owner)
    url = reverse("mylines:line", args=[line.pk])

    # when
    before = owner_client.get(url).content.decode()
    Line.objects.filter(pk=line.pk).update(installed_at=now)
    after = owner_client.get(url).content.decode()

    # then
    assert "<svg" in before
    assert f"LPA:{line.activation_code}" in before
    # the QR code is drawn by the server: no inline script
    assert not re.search(r"<script(?![^>]*\bsrc=)", before)
    assert "style=" not in before
    assert "<svg" not in after
    assert line.activation_code not in after


def test_the_line_page_in_simplified_chinese(
    owner_client: Client, owner: Any, make_line: Callable[..., Any]
) -> None:
    # given
    line = make_line(owner=owner)

    # when
    response = owner_client.get(
        reverse("mylines:line", args=[line.pk]), HTTP_ACCEPT_LANGUAGE="zh-hans"
    )

    # then
    body = response.content.decode()
    assert response.status_code == 200
    assert '<html lang="zh-hans">' in body
    assert "2026年9月29日" in body  # validity + grace + suspension, in Chinese date format


def test_the_timeline_of_a_line_in_grace(
    owner_client: Client, owner: Any, make_line: Callable[..., Any], now: datetime
) -> None:
    # given: validity (30 days from activation) ran out 5 days ago
    line = make_line(owner=owner, at=now - timedelta(days=35))

    # when
    body = owner_client.get(reverse("mylines:line", args=[line.pk])).content.decode()

    # then
    assert "Grace (receive-only)" in body
    assert "Validity ended on" in body
    assert "the number will be reclaimed on" in body


def test_line_page_query_budget(
    owner_client: Client,
    owner: Any,
    make_line: Callable[..., Any],
    hkd_plan: Any,
    now: datetime,
    django_assert_max_num_queries: Any,
) -> None:
    # given
    line = make_line(owner=owner)
    for _ in range(3):
        topup(line, hkd_plan, now=now)

    # when / then: session, user, profile, line, top-ups, one spare for the
    # announcement banner when its cache is cold; the keep planner (plans,
    # promotions and a running promotion's plans), auto-keep (rule, last run)
    # and the calendar feed
    with django_assert_max_num_queries(5 + 1 + 3 + 2 + 1):
        response = owner_client.get(reverse("mylines:line", args=[line.pk]))
    assert response.status_code == 200


def test_outsider_gets_404_for_someone_elses_line(
    outsider_client: Client, owner: Any, make_line: Callable[..., Any]
) -> None:
    # given
    line = make_line(owner=owner)

    # when
    response = outsider_client.get(reverse("mylines:line", args=[line.pk]))

    # then
    assert response.status_code == 404
    assert line.activation_code not in response.content.decode()


def test_outsider_gets_404_for_an_unowned_line(
    outsider_client: Client, make_line: Callable[..., Any]
) -> None:
    # given
    line = make_line()

    # when / then
    assert outsider_client.get(reverse("mylines:line", args=[line.pk])).status_code == 404


def test_outsider_list_does_not_show_others_lines(
    outsider_client: Client, owner: Any, make_line: Callable[..., Any]
) -> None:
    # given
    line = make_line(owner=owner)

    # when
    body = outsider_client.get(reverse("mylines:list")).content.decode()

    # then
    assert reverse("mylines:line", args=[line.pk]) not in body


@pytest.mark.parametrize(
    ("name", "args", "method"),
    [
        ("mylines:list", [], "get"),
        ("mylines:line", [1], "get"),
        ("mylines:unbind", [1], "post"),
        ("mylines:bind_confirm", [1], "get"),
    ],
)
def test_anonymous_is_sent_to_sign_in(
    client: Client, name: str, args: list[int], method: str
) -> None:
    # when
    response = getattr(client, method)(reverse(name, args=args))

    # then
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))
