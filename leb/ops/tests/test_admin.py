from __future__ import annotations

from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, Permission
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from leb.audit.actions import verify_chain
from leb.audit.models import AuditEntry
from leb.catalog.models import FreeAmountRule, Plan
from leb.ledger.queries import balance_by_code, verify_ledger
from leb.lines.models import Line, LineStatus
from leb.testing import LoadedDemo
from leb.topups.actions import do_admin_topup, do_create_order
from leb.topups.models import OrderStatus, TopUpOrder

pytestmark = pytest.mark.django_db


def messages_of(response: Any) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def topup_url(line: Line) -> str:
    return reverse("admin:lines_line_topup", args=[line.pk])


def fresh_topup_form(client: Client, line: Line) -> dict[str, str]:
    response = client.get(topup_url(line))
    assert response.status_code == 200
    key = response.context["form"]["idempotency_key"].value()
    assert key
    return {"idempotency_key": key}


def wallet_balance(line: Line) -> int:
    return balance_by_code(f"wallet:line:{line.pk}")


# --- Every page opens ------------------------------------------------------------------


MAY_BE_EMPTY = {
    "accounts.Profile",
    "api.PersonalToken",
    "security.Lockout",
    "otp_totp.TOTPDevice",
    "payments.PaymentAttempt",
    "payments.ProviderEvent",
    "jobs.PeriodicJob",
    # the demo's tasks are enqueued on commit, which a test transaction never reaches
    "django_tasks_database.DBTaskResult",
    # made only by the auto-keep job when a rule comes due
    "autokeep.AutoKeepRun",
    # made only when leb's books and a provider's disagree (the demo's agree)
    "finance.Mismatch",
    # made only when a member of staff asks for an export
    "exports.ExportJob",
}


def _request_for(client: Client) -> Any:
    response = client.get(reverse("admin:index"))
    return response.wsgi_request


class TestOnTheDemo:
    """The back office over the demo's data, loaded once for these tests."""

    def test_staff_can_open_every_registered_model(
        self, demo: LoadedDemo, staff_client: Client
    ) -> None:
        # given the demo, loaded
        assert Group.objects.filter(name="support").exists()  # the roles migration made it
        opened = 0
        empty: set[str] = set()

        # when / then
        for model, model_admin in admin.site._registry.items():
            opts = model._meta
            changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
            assert staff_client.get(changelist).status_code == 200, changelist
            if model_admin.search_fields:
                for term in ("+852 9", "8985 200", "zz%_'"):
                    response = staff_client.get(changelist, {"q": term})
                    assert response.status_code == 200, (changelist, term)
            if model_admin.has_add_permission(_request_for(staff_client)):
                add = reverse(f"admin:{opts.app_label}_{opts.model_name}_add")
                assert staff_client.get(add).status_code == 200, add
            obj = model._default_manager.order_by("-pk").first()
            if obj is not None:
                change = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
                assert staff_client.get(change).status_code == 200, change
                opened += 1
            else:
                empty.add(opts.label)
        # Rows the demo does not make: each is created by its own app's tests.
        assert empty <= MAY_BE_EMPTY, empty - MAY_BE_EMPTY
        assert opened == len(admin.site._registry) - len(empty)

    def test_every_line_change_page_of_the_demo_opens(
        self, demo: LoadedDemo, staff_client: Client
    ) -> None:
        # given the demo, loaded

        # when / then
        for line in Line.objects.all():
            response = staff_client.get(reverse("admin:lines_line_change", args=[line.pk]))
            assert response.status_code == 200, line.status

    @pytest.mark.parametrize(
        "url_name",
        [
            "admin:lines_line_changelist",
            "admin:lines_lineevent_changelist",
            "admin:lines_phonenumber_changelist",
            "admin:topups_topuporder_changelist",
            "admin:catalog_promotionredemption_changelist",
        ],
    )
    def test_list_pages_do_not_query_per_row(
        self,
        demo: LoadedDemo,
        staff_client: Client,
        url_name: str,
        django_assert_max_num_queries: Any,
    ) -> None:
        # given the demo, loaded
        staff_client.get(reverse(url_name))  # warm the session and content types

        # when / then
        with django_assert_max_num_queries(12):
            assert staff_client.get(reverse(url_name)).status_code == 200

    def test_line_page_has_a_query_budget(
        self, demo: LoadedDemo, staff_client: Client, django_assert_max_num_queries: Any
    ) -> None:
        # given the demo, loaded
        line = Line.objects.filter(orders__isnull=False).order_by("-pk").first()
        assert line is not None
        url = reverse("admin:lines_line_change", args=[line.pk])
        staff_client.get(url)

        # when / then
        with django_assert_max_num_queries(10):
            assert staff_client.get(url).status_code == 200


def test_catalog_pages_show_money_in_major_units(staff_client: Client, plan: Plan) -> None:
    # given / when
    response = staff_client.get(reverse("admin:catalog_plan_changelist"))

    # then
    assert "HKD\xa050.00" in response.content.decode()


def test_plan_can_be_edited_and_the_edit_is_audited(staff_client: Client, plan: Plan) -> None:
    # given
    url = reverse("admin:catalog_plan_change", args=[plan.pk])
    data = {
        "code": plan.code,
        "name_en": "HK$50 half a year",
        "name_zh_hans": plan.name_zh_hans,
        "name_zh_hant": plan.name_zh_hant,
        "currency": "HKD",
        "price": 5000,
        "credit": 5000,
        "validity_days": 180,
        "channels": ["web", "ivr"],
        "is_active": "on",
        "sort_order": 0,
    }

    # when
    response = staff_client.post(url, data)

    # then
    assert response.status_code == 302
    plan.refresh_from_db()
    assert plan.name_en == "HK$50 half a year" and plan.channels == ["web", "ivr"]
    entry = AuditEntry.objects.get(action="plan.change")
    assert entry.actor == "staff:boss" and "name_en" in entry.data["fields"]


def test_search_finds_a_line_by_the_number_as_printed(
    staff_client: Client, active_line: Line
) -> None:
    # given
    url = reverse("admin:lines_line_changelist")

    # when
    response = staff_client.get(url, {"q": "9123 4567"})

    # then
    assert list(response.context["cl"].result_list) == [active_line]


# --- Line page ------------------------------------------------------------------------------


def test_line_page_shows_status_balance_timeline_and_topup_link(
    staff_client: Client, active_line: Line
) -> None:
    # given
    url = reverse("admin:lines_line_change", args=[active_line.pk])

    # when
    response = staff_client.get(url)

    # then
    page = response.content.decode()
    assert response.status_code == 200
    assert "Validity ends on" in page
    assert "Barred (suspended) from" in page
    assert "unless topped up: the number is lost" in page
    assert "HKD\xa00.00" in page
    assert "+852 9123 4567" in page
    assert topup_url(active_line) in page
    assert "Activated" in page  # the event inline


def test_terminated_line_page_tells_what_happened(
    staff_client: Client, terminated_line: Line
) -> None:
    # given
    url = reverse("admin:lines_line_change", args=[terminated_line.pk])

    # when
    response = staff_client.get(url)

    # then
    page = response.content.decode()
    assert terminated_line.status == LineStatus.TERMINATED
    assert "the number was lost" in page
    assert "goes back to the pool" in page


# --- Activate action --------------------------------------------------------------------------


def test_activate_action_activates_an_inventory_line(
    staff_client: Client, inventory_line: Line
) -> None:
    # given
    url = reverse("admin:lines_line_changelist")

    # when
    response = staff_client.post(
        url, {"action": "activate_lines", "_selected_action": [inventory_line.pk]}, follow=True
    )

    # then
    inventory_line.refresh_from_db()
    assert inventory_line.status == LineStatus.ACTIVE
    assert inventory_line.msisdn == "+85291230000"  # from the pool
    assert "Activated 1 line." in messages_of(response)
    assert AuditEntry.objects.filter(action="line.activate", actor="staff:boss").count() == 1


def test_activate_action_reports_an_already_active_line(
    staff_client: Client, active_line: Line
) -> None:
    # given
    url = reverse("admin:lines_line_changelist")
    valid_until = active_line.valid_until

    # when
    response = staff_client.post(
        url, {"action": "activate_lines", "_selected_action": [active_line.pk]}, follow=True
    )

    # then
    assert response.status_code == 200
    assert messages_of(response) == [f"{active_line.iccid}: This line is already activated."]
    active_line.refresh_from_db()
    assert active_line.valid_until == valid_until
    assert not AuditEntry.objects.exists()


# --- Manual top-up -------------------------------------------------------------------------------


def test_manual_topup_posted_twice_tops_up_once(
    staff_client: Client, active_line: Line, plan: Plan
) -> None:
    # given
    data = {**fresh_topup_form(staff_client, active_line), "plan": plan.pk, "reason": "ticket 42"}

    # when
    first = staff_client.post(topup_url(active_line), data, follow=True)
    second = staff_client.post(topup_url(active_line), data, follow=True)

    # then
    assert first.status_code == second.status_code == 200
    assert TopUpOrder.objects.filter(line=active_line, status=OrderStatus.FULFILLED).count() == 1
    assert wallet_balance(active_line) == 5000
    entry = AuditEntry.objects.get(action="topup.manual")
    assert entry.actor == "staff:boss" and entry.data["reason"] == "ticket 42"
    assert any("Topped up HKD" in text for text in messages_of(first))
    assert any("already done" in text for text in messages_of(second))
    assert verify_ledger().ok
    assert verify_chain() == []


def test_manual_topup_by_free_amount(
    staff_client: Client, active_line: Line, free_amount_rule: FreeAmountRule
) -> None:
    # given
    data = {**fresh_topup_form(staff_client, active_line), "amount": "2000", "reason": "goodwill"}

    # when
    response = staff_client.post(topup_url(active_line), data)

    # then
    assert response.status_code == 302
    assert wallet_balance(active_line) == 2000
    assert verify_ledger().ok


def test_each_form_shows_a_new_key(staff_client: Client, active_line: Line) -> None:
    # given / when
    first = fresh_topup_form(staff_client, active_line)
    second = fresh_topup_form(staff_client, active_line)

    # then
    assert first != second


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"reason": ""}, "reason", "This field is required."),
        ({"plan": "", "amount": "0"}, "amount", "Enter an amount greater than zero."),
        ({"plan": "", "amount": "-5"}, "amount", "Enter an amount greater than zero."),
        ({"plan": "", "amount": ""}, None, "Choose a plan or enter an amount."),
        ({"amount": "5000"}, None, "Choose a plan or an amount, not both."),
        ({"idempotency_key": "admin:1:forged"}, "idempotency_key", "This form has expired"),
    ],
)
def test_manual_topup_refusals_are_form_errors(
    staff_client: Client,
    active_line: Line,
    plan: Plan,
    free_amount_rule: FreeAmountRule,
    changes: dict[str, str],
    field: str | None,
    message: str,
) -> None:
    # given
    data = {
        **fresh_topup_form(staff_client, active_line),
        "plan": plan.pk,
        "reason": "ticket 7",
        **changes,
    }

    # when
    response = staff_client.post(topup_url(active_line), data)

    # then
    assert response.status_code == 200
    form = response.context["form"]
    errors = form.errors.get(field or "__all__", [])
    assert any(message in error for error in errors), form.errors
    assert not TopUpOrder.objects.exists()
    assert not AuditEntry.objects.exists()
    assert wallet_balance(active_line) == 0


def test_manual_topup_of_a_terminated_line_is_a_form_error(
    staff_client: Client, terminated_line: Line, plan: Plan
) -> None:
    # given
    data = {
        **fresh_topup_form(staff_client, terminated_line),
        "plan": plan.pk,
        "reason": "ticket 9",
    }

    # when
    response = staff_client.post(topup_url(terminated_line), data)

    # then
    assert response.status_code == 200
    errors = response.context["form"].non_field_errors()
    assert any("terminated" in error for error in errors)
    assert not TopUpOrder.objects.exists()
    assert not AuditEntry.objects.exists()
    assert verify_ledger().ok


def test_manual_topup_of_a_missing_line_redirects(staff_client: Client, db: None) -> None:
    # given / when
    response = staff_client.get(reverse("admin:lines_line_topup", args=[999999]))

    # then
    assert response.status_code == 302


def test_manual_topup_needs_the_add_order_permission(
    client: Client, django_user_model: Any, active_line: Line
) -> None:
    # given
    clerk = django_user_model.objects.create_user("clerk", password="pw-clerk-1234", is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_line"))
    client.force_login(clerk)

    # when
    page = client.get(reverse("admin:lines_line_change", args=[active_line.pk]))
    topup = client.get(topup_url(active_line))

    # then
    assert page.status_code == 200
    assert topup_url(active_line) not in page.content.decode()
    assert topup.status_code == 403


# --- Refund -----------------------------------------------------------------------------------------


def test_refund_asks_for_a_reason_then_refunds(
    staff_client: Client, staff_user: Any, active_line: Line, plan: Plan
) -> None:
    # given
    order = do_admin_topup(
        line=active_line, staff=staff_user, reason="counter", idempotency_key="t:1", plan=plan
    )
    url = reverse("admin:topups_topuporder_changelist")
    selected = {"action": "refund_orders", "_selected_action": [order.pk]}

    # when
    confirm = staff_client.post(url, selected)
    done = staff_client.post(url, {**selected, "apply": "yes", "reason": "duplicate"}, follow=True)

    # then
    assert confirm.status_code == 200
    assert "Refund top-ups" in confirm.content.decode()
    order.refresh_from_db()
    assert order.status == OrderStatus.REFUNDED and order.failure_reason == "duplicate"
    assert "Refunded 1 top-up." in messages_of(done)
    assert wallet_balance(active_line) == 0
    assert AuditEntry.objects.filter(action="topup.refund", actor="staff:boss").count() == 1
    assert verify_ledger().ok


def test_refund_without_a_reason_asks_again(
    staff_client: Client, staff_user: Any, active_line: Line, plan: Plan
) -> None:
    # given
    order = do_admin_topup(
        line=active_line, staff=staff_user, reason="counter", idempotency_key="t:2", plan=plan
    )
    url = reverse("admin:topups_topuporder_changelist")

    # when
    response = staff_client.post(
        url,
        {"action": "refund_orders", "_selected_action": [order.pk], "apply": "yes", "reason": ""},
    )

    # then
    assert response.status_code == 200
    assert response.context["form"].errors["reason"]
    order.refresh_from_db()
    assert order.status == OrderStatus.FULFILLED


def test_refund_of_an_unpaid_order_is_reported(
    staff_client: Client, active_line: Line, plan: Plan
) -> None:
    # given
    order = do_create_order(line=active_line, channel="web", idempotency_key="w:1", plan=plan)
    url = reverse("admin:topups_topuporder_changelist")

    # when
    response = staff_client.post(
        url,
        {"action": "refund_orders", "_selected_action": [order.pk], "apply": "yes", "reason": "x"},
        follow=True,
    )

    # then
    assert response.status_code == 200
    assert any("Only a completed top-up can be refunded." in text for text in messages_of(response))
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING_PAYMENT
    assert verify_ledger().ok


def test_order_page_shows_the_frozen_quote(
    staff_client: Client, staff_user: Any, active_line: Line, plan: Plan
) -> None:
    # given
    order = do_admin_topup(
        line=active_line, staff=staff_user, reason="counter", idempotency_key="t:3", plan=plan
    )

    # when
    response = staff_client.get(reverse("admin:topups_topuporder_change", args=[order.pk]))

    # then
    page = response.content.decode()
    assert "Price paid" in page and "HKD\xa050.00" in page
    assert reverse("admin:lines_line_change", args=[active_line.pk]) in page


# --- Access -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url_name",
    [
        "admin:lines_line_changelist",
        "admin:topups_topuporder_changelist",
        "admin:catalog_plan_changelist",
    ],
)
def test_non_staff_is_sent_to_login(client: Client, django_user_model: Any, url_name: str) -> None:
    # given
    user = django_user_model.objects.create_user("subscriber", password="pw-sub-1234")
    client.force_login(user)

    # when
    response = client.get(reverse(url_name))

    # then
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_non_staff_cannot_top_up(
    client: Client, django_user_model: Any, active_line: Line, plan: Plan
) -> None:
    # given
    user = django_user_model.objects.create_user("subscriber", password="pw-sub-1234")
    client.force_login(user)

    # when
    response = client.post(
        topup_url(active_line), {"plan": plan.pk, "reason": "x", "idempotency_key": "k"}
    )

    # then
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    assert not TopUpOrder.objects.exists()


# --- Query budgets -------------------------------------------------------------------------------------
