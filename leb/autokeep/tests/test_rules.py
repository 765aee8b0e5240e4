from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.urls import reverse

from leb.autokeep.actions import AutoKeepError, do_rule_from_plan, do_set_rule
from leb.autokeep.models import AutoKeepRule, RuleMode

pytestmark = pytest.mark.django_db


def test_threshold_rule_is_saved_and_checked_at_once(
    owner: Any, line: Any, card: Any, hkd_plan: Any, now: datetime
) -> None:
    rule = do_set_rule(
        user=owner, line=line, mode="threshold", method=card, plan=hkd_plan, days_before=7, now=now
    )
    assert (rule.mode, rule.plan, rule.days_before, rule.paused) == (
        "threshold",
        hkd_plan,
        7,
        False,
    )
    assert rule.next_check_at == now
    # setting again replaces the one rule of the line
    do_set_rule(user=owner, line=line, mode="cheapest", method=card, now=now)
    rule = AutoKeepRule.objects.get()
    assert (rule.mode, rule.plan, rule.days_before) == (RuleMode.CHEAPEST, None, None)


@pytest.mark.parametrize("days", [0, -1, 61, 1000, None])
def test_days_out_of_range_are_refused(
    owner: Any, line: Any, card: Any, hkd_plan: Any, now: datetime, days: Any
) -> None:
    with pytest.raises(AutoKeepError) as info:
        do_set_rule(
            user=owner,
            line=line,
            mode="threshold",
            method=card,
            plan=hkd_plan,
            days_before=days,
            now=now,
        )
    assert info.value.code == "days_out_of_range"
    assert "Choose between 1 and 60 days." in info.value.messages[0]
    assert not AutoKeepRule.objects.exists()


def test_plan_of_another_currency_is_refused(
    owner: Any, line: Any, card: Any, gbp_plan: Any, now: datetime
) -> None:
    with pytest.raises(AutoKeepError) as info:
        do_set_rule(
            user=owner,
            line=line,
            mode="threshold",
            method=card,
            plan=gbp_plan,
            days_before=7,
            now=now,
        )
    assert info.value.code == "plan_currency"
    assert "GBP" in info.value.messages[0]
    assert not AutoKeepRule.objects.exists()


def test_plan_not_sold_automatically_is_refused(
    owner: Any, line: Any, card: Any, hkd_plan: Any, now: datetime
) -> None:
    hkd_plan.channels = ["web"]
    hkd_plan.save()
    with pytest.raises(AutoKeepError) as info:
        do_set_rule(
            user=owner,
            line=line,
            mode="threshold",
            method=card,
            plan=hkd_plan,
            days_before=7,
            now=now,
        )
    assert info.value.code == "plan_unavailable"


def test_rule_for_a_line_you_do_not_own_is_refused(
    outsider: Any, line: Any, save_card: Any, hkd_plan: Any, now: datetime
) -> None:
    their_card = save_card(user=outsider)
    with pytest.raises(AutoKeepError) as info:
        do_set_rule(
            user=outsider,
            line=line,
            mode="threshold",
            method=their_card,
            plan=hkd_plan,
            days_before=7,
            now=now,
        )
    assert info.value.code == "line_not_found"
    assert not AutoKeepRule.objects.exists()


def test_someone_elses_card_or_an_expired_card_is_refused(
    owner: Any, outsider: Any, line: Any, save_card: Any, hkd_plan: Any, now: datetime
) -> None:
    their_card = save_card(user=outsider)
    with pytest.raises(AutoKeepError) as info:
        do_set_rule(user=owner, line=line, mode="cheapest", method=their_card, now=now)
    assert info.value.code == "no_method"
    old = save_card(exp=(6, 2026))
    with pytest.raises(AutoKeepError) as info:
        do_set_rule(
            user=owner, line=line, mode="cheapest", method=old, now=now + timedelta(days=40)
        )
    assert info.value.code == "card_expired"


def test_from_plan_needs_a_card(owner: Any, line: Any, now: datetime) -> None:
    with pytest.raises(AutoKeepError) as info:
        do_rule_from_plan(user=owner, line=line, until=(now + timedelta(days=200)).date(), now=now)
    assert info.value.code == "no_method"


@pytest.mark.parametrize("days", [0, -5, 5 * 366 + 10])
def test_from_plan_with_a_bad_date_is_refused(
    owner: Any, line: Any, card: Any, now: datetime, days: int
) -> None:
    with pytest.raises(AutoKeepError) as info:
        do_rule_from_plan(user=owner, line=line, until=(now + timedelta(days=days)).date(), now=now)
    assert info.value.code in ("until_past", "until_too_far")
    assert not AutoKeepRule.objects.exists()


# --- pages ------------------------------------------------------------------------


def test_rule_page_sets_a_rule(owner_client: Any, line: Any, card: Any, hkd_plan: Any) -> None:
    url = reverse("autokeep:rule", args=[line.pk])
    page = owner_client.get(url)
    assert page.status_code == 200
    assert "hk-50" in page.content.decode()
    response = owner_client.post(
        url, {"mode": "threshold", "plan": "hk-50", "days_before": "7", "method": card.pk}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("mylines:line", args=[line.pk])
    rule = AutoKeepRule.objects.get()
    assert (rule.plan, rule.days_before) == (hkd_plan, 7)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"mode": "threshold", "plan": "hk-50", "days_before": "99"},
            "Choose between 1 and 60 days.",
        ),
        ({"mode": "threshold", "plan": "uk-10", "days_before": "7"}, "priced in GBP"),
        ({"mode": "threshold", "plan": "", "days_before": "7"}, "Choose a plan to top up."),
        ({"mode": "cheapest", "until": "2026-13-40"}, "Enter the end date as YYYY-MM-DD."),
        ({"mode": "cheapest", "until": "2020-01-01"}, "The end date must be in the future."),
    ],
)
def test_rule_page_shows_clear_errors(
    owner_client: Any,
    line: Any,
    card: Any,
    hkd_plan: Any,
    gbp_plan: Any,
    data: dict[str, str],
    message: str,
) -> None:
    response = owner_client.post(
        reverse("autokeep:rule", args=[line.pk]), {**data, "method": card.pk}
    )
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not AutoKeepRule.objects.exists()


def test_rule_page_without_a_card_asks_to_save_one(owner_client: Any, line: Any) -> None:
    response = owner_client.get(reverse("autokeep:rule", args=[line.pk]))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("autokeep:add_method"))


@pytest.mark.parametrize("name", ["rule", "pause", "resume", "from_plan"])
def test_someone_elses_line_is_not_found(
    outsider_client: Any,
    save_card: Any,
    outsider: Any,
    line: Any,
    card: Any,
    make_rule: Any,
    name: str,
) -> None:
    make_rule(line, card)
    save_card(user=outsider)
    url = reverse(f"autokeep:{name}", args=[line.pk])
    assert outsider_client.post(url, {"until": "2026-12-31", "allow_grace": "0"}).status_code == 404
    assert AutoKeepRule.objects.get().paused is False


def test_pause_and_resume_from_the_line_page(
    owner_client: Any, line: Any, card: Any, make_rule: Any
) -> None:
    rule = make_rule(line, card)
    line_url = reverse("mylines:line", args=[line.pk])
    page = owner_client.get(line_url).content.decode()
    assert "•••• 4242" in page
    assert reverse("autokeep:pause", args=[line.pk]) in page
    response = owner_client.post(reverse("autokeep:pause", args=[line.pk]), {"next": line_url})
    assert response["Location"] == line_url
    rule.refresh_from_db()
    assert rule.paused
    page = owner_client.get(line_url).content.decode()
    assert reverse("autokeep:resume", args=[line.pk]) in page
    owner_client.post(reverse("autokeep:resume", args=[line.pk]))
    rule.refresh_from_db()
    assert not rule.paused


def test_line_page_offers_auto_keep_when_off(owner_client: Any, line: Any) -> None:
    page = owner_client.get(reverse("mylines:line", args=[line.pk])).content.decode()
    assert "Turn on auto-keep" in page
    assert reverse("autokeep:rule", args=[line.pk]) in page
    assert "style=" not in page.split('id="autokeep-title"')[1].split("</section>")[0]


def test_from_plan_creates_a_lowest_cost_rule(
    owner_client: Any, line: Any, card: Any, now: datetime
) -> None:
    until = (now + timedelta(days=300)).date().isoformat()
    response = owner_client.post(
        reverse("autokeep:from_plan", args=[line.pk]), {"until": until, "allow_grace": "1"}
    )
    assert response.status_code == 302
    rule = AutoKeepRule.objects.get()
    assert (rule.mode, str(rule.until), rule.allow_grace) == ("cheapest", until, True)
    assert rule.method == card


def test_from_plan_without_a_card_goes_to_save_one(owner_client: Any, line: Any) -> None:
    response = owner_client.post(
        reverse("autokeep:from_plan", args=[line.pk]), {"until": "2026-12-31", "allow_grace": "0"}
    )
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("autokeep:add_method"))
    assert not AutoKeepRule.objects.exists()


@pytest.mark.parametrize("until", ["", "31/12/2026", "2026-02-30", "2020-01-01"])
def test_from_plan_with_a_bad_date_shows_an_error(
    owner_client: Any, line: Any, card: Any, until: str
) -> None:
    response = owner_client.post(
        reverse("autokeep:from_plan", args=[line.pk]),
        {"until": until, "allow_grace": "0"},
        follow=True,
    )
    body = response.content.decode()
    assert (
        "Enter the end date as YYYY-MM-DD." in body or "The end date must be in the future." in body
    )
    assert not AutoKeepRule.objects.exists()


def test_from_plan_is_post_only(owner_client: Any, line: Any) -> None:
    assert owner_client.get(reverse("autokeep:from_plan", args=[line.pk])).status_code == 405


def test_pages_show_the_last_failure(
    owner_client: Any, line: Any, save_card: Any, make_rule: Any
) -> None:
    from leb.autokeep.actions import do_run_autokeep

    from .helpers import DECLINED_CARD

    # given a run that was declined
    make_rule(line, save_card(DECLINED_CARD))
    do_run_autokeep(line.valid_until - timedelta(days=1))
    # then the overview and the line page say why
    overview = owner_client.get(reverse("autokeep:overview")).content.decode()
    assert "Your card was declined." in overview
    assert "HK$50.00" in overview
    page = owner_client.get(reverse("mylines:line", args=[line.pk])).content.decode()
    assert "Your card was declined." in page
    assert "Last run" in page
