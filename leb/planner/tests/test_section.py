"""The keep-plan section of a subscriber's line page."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.template import Context, Template
from django.test import RequestFactory
from django.urls import reverse

from leb.catalog.models import Plan, Promotion
from leb.common import clock
from leb.lines.models import Line
from leb.planner.templatetags import planner_tags

pytestmark = pytest.mark.django_db


def page(client: Any, line: Line, **query: str) -> Any:
    return client.get(reverse("mylines:line", args=[line.pk]), query)


def test_owner_sees_the_cheapest_plan_for_three_years(
    owner: Any, owner_client: Any, make_line: Any, hkd_plan: Plan
) -> None:
    # given an owned line and a 180-day plan
    line = make_line(owner=owner)
    # when
    response = page(owner_client, line)
    # then: the default target, the steps, prices and total
    html = response.content.decode()
    assert response.status_code == 200
    assert "Cheapest way to keep this number" in html
    assert 'value="2029-06-01"' in html
    assert "<td>June 30, 2026</td><td>HK$50 / 180 days</td>" in html
    assert "HK$300.00" in html
    assert "6 top-ups keep the number until June 1, 2029." in html


def test_the_form_plans_to_the_chosen_date_with_grace(
    owner: Any, owner_client: Any, make_line: Any, hkd_plan: Plan
) -> None:
    line = make_line(owner=owner)
    # when
    response = page(owner_client, line, **{"keep-until": "2028-09-01", "keep-allow_grace": "on"})
    strict = page(owner_client, line, **{"keep-until": "2028-09-01"})
    # then
    html = response.content.decode()
    assert "4 top-ups keep the number until September 1, 2028." in html
    assert "5 top-ups keep the number until September 1, 2028." in strict.content.decode()
    assert "receive-only (grace) on up to 76 days" in html
    assert "(after up to 30 receive-only days)" in html
    assert 'name="allow_grace" value="1"' in html
    assert 'name="until" value="2028-09-01"' in html


def test_the_auto_keep_button_posts_the_plan(
    owner: Any, owner_client: Any, make_line: Any, hkd_plan: Plan
) -> None:
    line = make_line(owner=owner)
    response = page(owner_client, line, **{"keep-until": "2027-06-01"})
    html = response.content.decode()
    url = planner_tags._from_plan_url(line.pk)
    if url:
        assert f'action="{url}"' in html
        assert "Turn this into auto-keep" in html
        assert 'name="allow_grace" value="0"' in html
        assert "csrfmiddlewaretoken" in html


def test_without_auto_keep_the_button_is_left_out(
    owner: Any, make_line: Any, hkd_plan: Plan, monkeypatch: Any
) -> None:
    # given auto-keep's URL cannot be built
    monkeypatch.setattr(planner_tags, "reverse", _no_reverse)
    line = make_line(owner=owner)
    # when
    html = _render(line, RequestFactory().get("/"))
    # then
    assert "Turn this into auto-keep" not in html
    assert "top-ups keep the number" in html


def _no_reverse(*args: Any, **kwargs: Any) -> str:
    from django.urls import NoReverseMatch

    raise NoReverseMatch("autokeep")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("31/12/2030", "Enter a date as YYYY-MM-DD, for example 2030-12-31."),
        ("2030-02-30", "Enter a date as YYYY-MM-DD, for example 2030-12-31."),
        ("", "Enter the date until which to keep the number."),
        ("2026-05-31", "Choose a date from today on; this date is in the past."),
        ("2056-06-02", "Choose a date at most 30 years from today."),
    ],
)
def test_bad_dates_are_explained(
    owner: Any, owner_client: Any, make_line: Any, hkd_plan: Plan, value: str, message: str
) -> None:
    line = make_line(owner=owner)
    # when
    response = page(owner_client, line, **{"keep-until": value})
    # then
    html = response.content.decode()
    assert response.status_code == 200
    assert message in html
    assert "top-ups keep the number" not in html


def test_infeasible_plan_says_why(owner: Any, owner_client: Any, make_line: Any) -> None:
    # given no plan on sale
    line = make_line(owner=owner)
    # when
    html = page(owner_client, line).content.decode()
    # then
    assert "No plan for this line is on sale for automatic or online top-ups." in html
    assert "Turn this into auto-keep" not in html


def test_inventory_and_terminated_lines_have_no_section(
    owner: Any, make_line: Any, hkd_plan: Plan, now: datetime
) -> None:
    inventory = make_line(owner=owner, activate=False)
    assert "Cheapest way" not in _render(inventory, RequestFactory().get("/"))
    line = make_line(owner=owner)
    with clock.frozen(now + timedelta(days=400)):
        assert "Cheapest way" not in _render(line, RequestFactory().get("/"))


def test_outsider_gets_404(outsider_client: Any, owner: Any, make_line: Any) -> None:
    line = make_line(owner=owner)
    assert page(outsider_client, line, **{"keep-until": "2030-01-01"}).status_code == 404


def test_in_chinese(owner: Any, owner_client: Any, make_line: Any, hkd_plan: Plan) -> None:
    line = make_line(owner=owner)
    response = owner_client.get(
        reverse("mylines:line", args=[line.pk]), HTTP_ACCEPT_LANGUAGE="zh-hant"
    )
    assert "50港元 / 180日" in response.content.decode()


def _render(line: Line, request: Any) -> str:
    template = Template("{% load planner_tags %}{% keep_plan_section line %}")
    return template.render(Context({"line": line, "request": request}))


def test_section_queries_do_not_grow_with_the_catalog(
    make_line: Any, now: datetime, django_assert_num_queries: Any
) -> None:
    # given a line with one plan, then with ten plans and promotions
    line = Line.objects.select_related("policy").get(pk=make_line().pk)
    request = RequestFactory().get("/", {"keep-until": "2031-06-01"})
    Plan.objects.create(
        code="p0",
        name_en="p0",
        name_zh_hans="p0",
        name_zh_hant="p0",
        currency="HKD",
        price=1000,
        credit=1000,
        validity_days=30,
    )
    with django_assert_num_queries(2):
        _render(line, request)
    plans = [
        Plan.objects.create(
            code=f"p{i}",
            name_en=f"p{i}",
            name_zh_hans=f"p{i}",
            name_zh_hant=f"p{i}",
            currency="HKD",
            price=1000 + i,
            credit=1000,
            validity_days=30 * i,
        )
        for i in range(1, 10)
    ]
    for i in range(5):
        promo = Promotion.objects.create(
            code=f"promo{i}",
            name_en="x",
            name_zh_hans="x",
            name_zh_hant="x",
            currency="HKD",
            starts_at=now,
            ends_at=now + timedelta(days=100 * i + 1),
            discount_percent=i,
            per_line_limit=i or None,
        )
        promo.plans.set(plans[:i])
    # when / then: still plans, promotions (with uses), promotion plans
    with django_assert_num_queries(3):
        html = _render(line, request)
    assert "top-ups keep the number" in html


def test_line_page_queries_do_not_grow_with_the_catalog(
    owner: Any, owner_client: Any, make_line: Any, hkd_plan: Plan, now: datetime
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    # given an owned line, planned with one plan
    line = make_line(owner=owner)
    with CaptureQueriesContext(connection) as one_plan:
        assert page(owner_client, line, **{"keep-until": "2031-06-01"}).status_code == 200
    # when ten more plans and an automatic promotion are on sale
    for i in range(10):
        Plan.objects.create(
            code=f"more-{i}",
            name_en=f"m{i}",
            name_zh_hans=f"m{i}",
            name_zh_hant=f"m{i}",
            currency="HKD",
            price=6000 + i,
            credit=1000,
            validity_days=30 + i,
        )
    Promotion.objects.create(
        code="auto",
        name_en="x",
        name_zh_hans="x",
        name_zh_hant="x",
        currency="HKD",
        starts_at=now,
        ends_at=now + timedelta(days=100),
        discount_percent=5,
    )
    with CaptureQueriesContext(connection) as many_plans:
        assert page(owner_client, line, **{"keep-until": "2031-06-01"}).status_code == 200
    # then: only the promotions' plans are one more query
    assert len(many_plans.captured_queries) <= len(one_plan.captured_queries) + 1


def test_each_step_shows_the_days_it_really_adds(
    owner: Any, owner_client: Any, make_line: Any, hkd_plan: Plan
) -> None:
    # given a 365-day plan, which the 365-day cap shortens when bought a day early
    Plan.objects.create(
        code="hk-365",
        name_en="HK$60 / 365 days",
        name_zh_hans="60港元 / 365天",
        name_zh_hant="60港元 / 365日",
        currency="HKD",
        price=6000,
        credit=6000,
        validity_days=365,
    )
    line = make_line(owner=owner)
    # when
    html = page(owner_client, line).content.decode()
    # then the column says the days added, and "of 365" where fewer
    assert "Days added" in html
    assert '<span class="planner-fewer">364 of 365</span>' in html
    assert "validity cap (or its rule that days count from the day of the top-up)" in html
