"""Plans, free-amount rules and promotions change only through the catalog's
actions: each checks its input (a translated message per field, nothing
written when refused), writes in one transaction and leaves an audit entry.
The back office's pages drive the same actions."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from django.utils import translation

from leb.audit.actions import verify_chain
from leb.audit.models import AuditEntry
from leb.backoffice.roles import ADMIN
from leb.catalog.actions import (
    CatalogError,
    do_create_free_amount_rule,
    do_create_plan,
    do_create_promotion,
    do_end_promotion,
    do_retire_plan,
    do_update_free_amount_rule,
    do_update_plan,
    do_update_promotion,
)
from leb.catalog.models import FreeAmountRule, Plan, Promotion
from leb.testing import topup

pytestmark = pytest.mark.django_db

ACTOR = "staff:cat"


def plan_fields(**overrides: Any) -> dict[str, Any]:
    return {
        "code": "hk-100",
        "name_en": "HK$100 / 365 days",
        "name_zh_hans": "100港元 / 365天",
        "name_zh_hant": "100港元 / 365日",
        "currency": "hkd",
        "price": 10000,
        "credit": 10000,
        "validity_days": 365,
        "channels": ["web", "ivr"],
        **overrides,
    }


def promo_fields(now: datetime, **overrides: Any) -> dict[str, Any]:
    return {
        "code": "summer",
        "promo_code": " summer10 ",
        "name_en": "Summer",
        "name_zh_hans": "夏季",
        "name_zh_hant": "夏季",
        "currency": "HKD",
        "bonus_credit_percent": 10,
        "starts_at": now - timedelta(days=1),
        "ends_at": now + timedelta(days=30),
        **overrides,
    }


def entries(action: str) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(action=action).order_by("pk"))


# --- Plans -----------------------------------------------------------------------------


def test_a_new_plan_is_written_with_its_currency_in_capitals_and_audited() -> None:
    # when
    plan = do_create_plan(plan_fields(), actor=ACTOR)
    # then
    plan.refresh_from_db()
    assert plan.currency == "HKD"
    [entry] = entries("plan.add")
    assert entry.actor == ACTOR
    assert entry.target == f"plan:{plan.pk}"
    assert "price" in entry.data["fields"]
    assert verify_chain() == []


@pytest.mark.parametrize(
    ("overrides", "field", "english", "chinese"),
    [
        ({"currency": "XYZ"}, "currency", "is not an ISO 4217 currency code", "ISO 4217"),
        ({"price": 0}, "price", "The price must be more than zero.", "价格必须大于零"),
        ({"channels": []}, "channels", "Choose at least one channel.", "至少选择一个渠道"),
        ({"channels": ["fax"]}, "channels", "Choose channels from the list.", "从列表中选择渠道"),
    ],
)
def test_a_bad_plan_is_refused_with_a_translated_message_and_nothing_is_written(
    overrides: dict[str, Any], field: str, english: str, chinese: str
) -> None:
    # when the plan is refused, in English and in Simplified Chinese
    with pytest.raises(CatalogError) as refused:
        do_create_plan(plan_fields(**overrides), actor=ACTOR)
    with translation.override("zh-hans"):
        with pytest.raises(CatalogError) as refused_zh:
            do_create_plan(plan_fields(**overrides), actor=ACTOR)
        in_chinese = " ".join(refused_zh.value.message_dict[field])
    # then it names the field at fault in the staff member's language
    assert english in " ".join(refused.value.message_dict[field])
    assert chinese in in_chinese
    # and nothing was written
    assert not Plan.objects.exists()
    assert not AuditEntry.objects.exists()


def test_a_sale_window_that_ends_before_it_starts_is_refused(now: datetime) -> None:
    fields = plan_fields(active_from=now, active_until=now - timedelta(days=1))
    with pytest.raises(CatalogError) as refused:
        do_create_plan(fields, actor=ACTOR)
    assert refused.value.message_dict["active_until"] == ["The sale must end after it starts."]
    assert not Plan.objects.exists()


def test_a_taken_code_is_refused(hkd_plan: Any) -> None:
    with pytest.raises(CatalogError) as refused:
        do_create_plan(plan_fields(code=hkd_plan.code), actor=ACTOR)
    assert "code" in refused.value.message_dict
    assert Plan.objects.count() == 1


def test_a_plan_change_records_what_it_was_and_what_it_is(hkd_plan: Any) -> None:
    # when the price changes and the credit is "changed" to what it already is
    do_update_plan(hkd_plan, {"price": 5500, "credit": 5000}, actor=ACTOR)
    # then only the price is written and recorded, with both values
    hkd_plan.refresh_from_db()
    assert hkd_plan.price == 5500
    [entry] = entries("plan.change")
    assert entry.data["fields"] == ["price"]
    assert entry.data["before"] == {"price": 5000}
    assert entry.data["after"] == {"price": 5500}


def test_a_plan_change_that_changes_nothing_writes_nothing(hkd_plan: Any) -> None:
    do_update_plan(hkd_plan, {"price": hkd_plan.price}, actor=ACTOR)
    assert not AuditEntry.objects.exists()


def test_a_refused_plan_change_leaves_the_plan_as_it_was(hkd_plan: Any) -> None:
    with pytest.raises(CatalogError):
        do_update_plan(hkd_plan, {"price": 7000, "currency": "nope"}, actor=ACTOR)
    hkd_plan.refresh_from_db()
    assert (hkd_plan.price, hkd_plan.currency) == (5000, "HKD")
    assert not AuditEntry.objects.exists()


def test_a_plan_with_orders_is_taken_off_sale_never_deleted(
    hkd_plan: Any, make_line: Callable[..., Any], now: datetime, ledger_ok: Callable[[], None]
) -> None:
    # given a plan someone bought
    order = topup(make_line(), hkd_plan, now=now)
    # when it is retired
    result = do_retire_plan(hkd_plan, actor=ACTOR, now=now)
    # then the row stays, the order still points at it, and it no longer sells
    assert not result.deleted
    hkd_plan.refresh_from_db()
    assert not hkd_plan.is_active
    assert hkd_plan.active_until == now
    order.refresh_from_db()
    assert order.plan_id == hkd_plan.pk
    [entry] = entries("plan.retire")
    assert entry.data["after"]["is_active"] is False
    ledger_ok()


def test_a_plan_nobody_used_is_removed_when_retired(hkd_plan: Any, now: datetime) -> None:
    result = do_retire_plan(hkd_plan, actor=ACTOR, now=now)
    assert result.deleted
    assert not Plan.objects.filter(pk=hkd_plan.pk).exists()
    [entry] = entries("plan.delete")
    assert entry.data == {"code": "hk-50"}


# --- Free-amount rules -----------------------------------------------------------------


def test_a_free_amount_rule_is_created_with_sorted_tiers_and_changed_audited() -> None:
    # when
    rule = do_create_free_amount_rule(
        {
            "currency": "HKD",
            "min_amount": 1000,
            "max_amount": 50000,
            "tiers": [[5000, 180], [1000, 30]],
            "channels": ["web"],
        },
        actor=ACTOR,
    )
    do_update_free_amount_rule(rule, {"max_amount": 80000}, actor=ACTOR)
    # then
    rule.refresh_from_db()
    assert rule.tiers == [[1000, 30], [5000, 180]]
    assert rule.max_amount == 80000
    assert [e.action for e in AuditEntry.objects.order_by("pk")] == [
        "freeamountrule.add",
        "freeamountrule.change",
    ]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"tiers": [[1000]]}, "tiers"),
        ({"tiers": "lots"}, "tiers"),
        ({"min_amount": 0}, "min_amount"),
        ({"max_amount": 500}, "max_amount"),
    ],
)
def test_a_bad_free_amount_rule_is_refused_and_nothing_is_written(
    overrides: dict[str, Any], field: str
) -> None:
    fields = {
        "currency": "HKD",
        "min_amount": 1000,
        "max_amount": 50000,
        "tiers": [[1000, 30]],
        "channels": ["web"],
        **overrides,
    }
    with pytest.raises(CatalogError) as refused:
        do_create_free_amount_rule(fields, actor=ACTOR)
    assert field in refused.value.message_dict
    assert not FreeAmountRule.objects.exists()
    assert not AuditEntry.objects.exists()


# --- Promotions ------------------------------------------------------------------------


def test_a_promotion_is_created_for_its_plans_and_its_code_cleaned(
    hkd_plan: Any, now: datetime
) -> None:
    promo = do_create_promotion(promo_fields(now), plans=[hkd_plan], actor=ACTOR, now=now)
    promo.refresh_from_db()
    assert promo.promo_code == "SUMMER10"
    assert list(promo.plans.all()) == [hkd_plan]
    [entry] = entries("promotion.add")
    assert entry.data["plans"] == ["hk-50"]


def test_a_promotion_for_plans_in_another_currency_is_refused(gbp_plan: Any, now: datetime) -> None:
    with translation.override("zh-hant"):
        with pytest.raises(CatalogError) as refused:
            do_create_promotion(promo_fields(now), plans=[gbp_plan], actor=ACTOR, now=now)
        message = refused.value.message_dict["plans"][0]
    assert "uk-10" in message
    assert "HKD" in message
    assert "這些套餐" in message or "不是" in message
    assert not Promotion.objects.exists()
    assert not AuditEntry.objects.exists()


def test_a_promotion_that_ends_before_it_starts_is_refused(now: datetime) -> None:
    with pytest.raises(CatalogError) as refused:
        do_create_promotion(promo_fields(now, ends_at=now - timedelta(days=2)), actor=ACTOR)
    assert refused.value.message_dict["ends_at"] == ["The promotion must end after it starts."]
    assert not Promotion.objects.exists()


def test_a_promotion_change_of_plans_is_recorded(hkd_plan: Any, now: datetime, db: Any) -> None:
    # given a promotion for every plan and a second plan
    promo = do_create_promotion(promo_fields(now), actor=ACTOR, now=now)
    other = do_create_plan(plan_fields(), actor=ACTOR)
    # when it is limited to the two plans and its bonus changed
    do_update_promotion(promo, {"bonus_days": 30}, plans=[hkd_plan, other], actor=ACTOR, now=now)
    # then
    [entry] = entries("promotion.change")
    assert entry.data["fields"] == ["bonus_days"]
    assert entry.data["plans_before"] == []
    assert entry.data["plans_after"] == ["hk-100", "hk-50"]
    assert set(promo.plans.values_list("code", flat=True)) == {"hk-50", "hk-100"}


def test_ending_a_running_promotion_stops_it_now(now: datetime) -> None:
    promo = do_create_promotion(promo_fields(now), actor=ACTOR, now=now)
    do_end_promotion(promo, actor=ACTOR, now=now)
    promo.refresh_from_db()
    assert not promo.is_active
    assert promo.ends_at == now
    [entry] = entries("promotion.end")
    assert entry.data["fields"] == ["is_active", "ends_at"]
    # and ending it again changes nothing
    do_end_promotion(promo, actor=ACTOR, now=now + timedelta(hours=1))
    assert len(entries("promotion.end")) == 1


def test_ending_a_promotion_that_has_not_started_keeps_its_window(now: datetime) -> None:
    fields = promo_fields(now, starts_at=now + timedelta(days=1))
    promo = do_create_promotion(fields, actor=ACTOR, now=now)
    do_end_promotion(promo, actor=ACTOR, now=now)
    promo.refresh_from_db()
    assert not promo.is_active
    assert promo.starts_at == now + timedelta(days=1)


# --- The back office's pages drive the actions -----------------------------------------


@pytest.fixture
def admin_client(django_user_model: Any) -> Client:
    user = django_user_model.objects.create_user(
        "catalog-admin", password="x-unused-9", is_staff=True
    )
    user.groups.add(Group.objects.get(name=ADMIN))
    client = Client()
    client.force_login(user)
    return client


def plan_form(**overrides: Any) -> dict[str, Any]:
    return {
        "code": "hk-200",
        "name_en": "HK$200",
        "name_zh_hans": "200港元",
        "name_zh_hant": "200港元",
        "currency": "hkd",
        "price": "20000",
        "credit": "20000",
        "validity_days": "365",
        "channels": ["web", "agent"],
        "is_active": "on",
        "active_from_0": "",
        "active_from_1": "",
        "active_until_0": "",
        "active_until_1": "",
        "sort_order": "0",
        **overrides,
    }


def test_the_plan_page_adds_through_the_action(admin_client: Client) -> None:
    # when an admin saves the add form
    response = admin_client.post(reverse("admin:catalog_plan_add"), plan_form())
    # then the plan exists and the action's audit entry names the admin
    assert response.status_code == 302
    plan = Plan.objects.get(code="hk-200")
    assert plan.currency == "HKD"
    assert plan.channels == ["web", "agent"]
    [entry] = entries("plan.add")
    assert entry.actor == "staff:catalog-admin"


def test_the_plan_page_says_what_is_wrong_and_writes_nothing(admin_client: Client) -> None:
    # when the sale window is backwards
    response = admin_client.post(
        reverse("admin:catalog_plan_add"),
        plan_form(
            active_from_0="2026-07-01",
            active_from_1="00:00:00",
            active_until_0="2026-06-01",
            active_until_1="00:00:00",
        ),
        HTTP_ACCEPT_LANGUAGE="zh-hans",
    )
    # then the form comes back with the message beside the field
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["active_until"]
    assert not Plan.objects.exists()
    assert not AuditEntry.objects.exists()


def test_the_plan_page_changes_through_the_action(admin_client: Client, hkd_plan: Any) -> None:
    data = plan_form(code=hkd_plan.code, price="6000", credit="5000", validity_days="180")
    data["name_en"] = hkd_plan.name_en
    data["name_zh_hans"] = hkd_plan.name_zh_hans
    data["name_zh_hant"] = hkd_plan.name_zh_hant
    data["channels"] = hkd_plan.channels
    response = admin_client.post(reverse("admin:catalog_plan_change", args=[hkd_plan.pk]), data)
    assert response.status_code == 302
    hkd_plan.refresh_from_db()
    assert hkd_plan.price == 6000
    [entry] = entries("plan.change")
    assert entry.data["before"] == {"price": 5000}


def test_the_plan_list_takes_plans_off_sale(
    admin_client: Client, hkd_plan: Any, make_line: Callable[..., Any], now: datetime
) -> None:
    topup(make_line(), hkd_plan, now=now)
    response = admin_client.post(
        reverse("admin:catalog_plan_changelist"),
        {"action": "retire_plans", "_selected_action": [hkd_plan.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert "1 plan is off sale" in response.content.decode()
    hkd_plan.refresh_from_db()
    assert not hkd_plan.is_active
    assert len(entries("plan.retire")) == 1


def test_the_plan_page_offers_no_delete(admin_client: Client, hkd_plan: Any) -> None:
    response = admin_client.get(reverse("admin:catalog_plan_delete", args=[hkd_plan.pk]))
    assert response.status_code == 403
    assert Plan.objects.filter(pk=hkd_plan.pk).exists()


def test_the_free_amount_page_adds_and_refuses_through_the_action(admin_client: Client) -> None:
    url = reverse("admin:catalog_freeamountrule_add")
    form = {
        "currency": "HKD",
        "min_amount": "1000",
        "max_amount": "500",
        "tiers": "[[1000, 30]]",
        "channels": ["web"],
        "is_active": "on",
    }
    refused = admin_client.post(url, form)
    assert refused.status_code == 200
    assert refused.context["adminform"].form.errors["max_amount"] == [
        "The maximum must not be below the minimum."
    ]
    assert not FreeAmountRule.objects.exists()
    saved = admin_client.post(url, {**form, "max_amount": "50000"})
    assert saved.status_code == 302
    assert FreeAmountRule.objects.get().max_amount == 50000
    assert len(entries("freeamountrule.add")) == 1


def promo_form(now: datetime, **overrides: Any) -> dict[str, Any]:
    return {
        "code": "autumn",
        "promo_code": "fall",
        "name_en": "Autumn",
        "name_zh_hans": "秋季",
        "name_zh_hant": "秋季",
        "is_active": "on",
        "currency": "HKD",
        "bonus_credit_percent": "0",
        "bonus_credit_fixed": "0",
        "bonus_days": "30",
        "discount_percent": "0",
        "discount_fixed": "0",
        "starts_at_0": now.strftime("%Y-%m-%d"),
        "starts_at_1": "00:00:00",
        "ends_at_0": (now + timedelta(days=30)).strftime("%Y-%m-%d"),
        "ends_at_1": "00:00:00",
        "per_line_limit": "",
        "budget": "",
        **overrides,
    }


def test_the_promotion_page_adds_with_its_plans_through_the_action(
    admin_client: Client, hkd_plan: Any, gbp_plan: Any, now: datetime
) -> None:
    url = reverse("admin:catalog_promotion_add")
    # a plan in another currency is refused, beside the plans
    refused = admin_client.post(url, promo_form(now, plans=[gbp_plan.pk]))
    assert refused.status_code == 200
    assert "uk-10" in str(refused.context["adminform"].form.errors["plans"])
    assert not Promotion.objects.exists()
    # the right plan is accepted and written by the action
    saved = admin_client.post(url, promo_form(now, plans=[hkd_plan.pk]))
    assert saved.status_code == 302
    promo = Promotion.objects.get()
    assert promo.promo_code == "FALL"
    assert list(promo.plans.all()) == [hkd_plan]
    [entry] = entries("promotion.add")
    assert entry.data["plans"] == ["hk-50"]


def test_the_promotion_page_changes_and_ends_through_the_actions(
    admin_client: Client, hkd_plan: Any, now: datetime
) -> None:
    promo = do_create_promotion(promo_fields(now), actor=ACTOR, now=now)
    data = promo_form(
        now,
        code=promo.code,
        promo_code=promo.promo_code,
        name_en=promo.name_en,
        name_zh_hans=promo.name_zh_hans,
        name_zh_hant=promo.name_zh_hant,
        bonus_credit_percent="10",
        bonus_days="0",
        starts_at_0=promo.starts_at.strftime("%Y-%m-%d"),
        starts_at_1=promo.starts_at.strftime("%H:%M:%S"),
        ends_at_0=promo.ends_at.strftime("%Y-%m-%d"),
        ends_at_1=promo.ends_at.strftime("%H:%M:%S"),
        budget="100000",
        plans=[hkd_plan.pk],
    )
    changed = admin_client.post(reverse("admin:catalog_promotion_change", args=[promo.pk]), data)
    assert changed.status_code == 302
    [entry] = entries("promotion.change")
    assert "budget" in entry.data["fields"]
    assert entry.data["plans_after"] == ["hk-50"]
    ended = admin_client.post(
        reverse("admin:catalog_promotion_changelist"),
        {"action": "end_promotions", "_selected_action": [promo.pk]},
        follow=True,
    )
    assert "1 promotion ended" in ended.content.decode()
    promo.refresh_from_db()
    assert not promo.is_active
