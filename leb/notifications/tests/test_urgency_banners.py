"""The notification centre opens with a banner for each of the user's lines
that is urgent or has lapsed."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.test import Client

from leb.common import clock

pytestmark = pytest.mark.django_db


def _centre(client: Client, at: datetime) -> str:
    with clock.frozen(at):
        response = client.get("/notifications/")
    assert response.status_code == 200
    return response.content.decode()


def test_each_urgent_or_lapsed_line_has_a_banner_with_its_top_up_button(
    owner: Any, owner_client: Client, make_line: Any, now: datetime
) -> None:
    # given, at `at`: one urgent, one in grace, one suspended, one fine line
    at = now + timedelta(days=70)
    urgent = make_line(owner=owner, at=now + timedelta(days=45))
    grace = make_line(owner=owner, at=now + timedelta(days=30))
    suspended = make_line(owner=owner)
    fine = make_line(owner=owner, at=now + timedelta(days=75))

    # when
    html = _centre(owner_client, at)

    # then a banner each, most pressing first, each with "Top up now"
    banners = re.findall(r'data-testid="urgency-banner" data-line="(\d+)"', html)
    assert banners == [str(suspended.pk), str(grace.pk), str(urgent.pk)]
    assert str(fine.pk) not in banners
    levels = re.findall(r'data-testid="urgency" data-level="(\w+)"', html)
    assert levels == ["suspended", "grace", "urgent"]
    assert html.count("Top up now") == 3
    assert html.index('data-testid="urgency-banners"') < html.index("<h1>")


def test_no_banner_when_every_line_is_fine(
    owner: Any, owner_client: Client, make_line: Any, now: datetime
) -> None:
    # given a line with 20 days left (only "soon")
    make_line(owner=owner)

    # when
    html = _centre(owner_client, now + timedelta(days=10))

    # then
    assert 'data-testid="urgency-banners"' not in html


def test_someone_elses_urgent_line_has_no_banner(
    owner: Any, outsider_client: Client, make_line: Any, now: datetime
) -> None:
    # given the owner's urgent line
    make_line(owner=owner)

    # when the outsider opens their centre
    html = _centre(outsider_client, now + timedelta(days=25))

    # then
    assert 'data-testid="urgency-banner"' not in html


def test_the_banners_cost_one_query_whatever_the_number_of_lines(
    owner: Any,
    owner_client: Client,
    make_line: Any,
    now: datetime,
    django_assert_max_num_queries: Any,
) -> None:
    # given six urgent lines
    for _ in range(6):
        make_line(owner=owner)

    # when / then: the centre's own budget plus one query for the lines
    with clock.frozen(now + timedelta(days=25)), django_assert_max_num_queries(10 + 1):
        html = owner_client.get("/notifications/").content.decode()
    assert html.count('data-testid="urgency-banner"') == 6
