from __future__ import annotations

import io
from typing import Any

import phonenumbers
import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db.models import Model
from django.test import Client
from stdnum import luhn

from leb.audit.actions import verify_chain
from leb.audit.models import AuditEntry
from leb.catalog.models import FreeAmountRule, Plan, Promotion, PromotionRedemption
from leb.ledger.models import Account, Transfer, TransferGroup
from leb.ledger.queries import verify_ledger
from leb.lines import lifecycle
from leb.lines.models import Line, LineEvent, LineStatus, NumberPolicy, PhoneNumber
from leb.ops.demo import DEMO_EMAIL, demo_logins, load_demo
from leb.testing import LoadedDemo
from leb.topups.models import TopUpOrder

pytestmark = pytest.mark.django_db

COUNTED: list[type[Model]] = [
    NumberPolicy,
    PhoneNumber,
    Line,
    LineEvent,
    Plan,
    FreeAmountRule,
    Promotion,
    PromotionRedemption,
    TopUpOrder,
    Account,
    TransferGroup,
    Transfer,
    AuditEntry,
    get_user_model(),
]


def snapshot() -> dict[str, Any]:
    counts: dict[str, Any] = {
        model._meta.label: model._default_manager.count() for model in COUNTED
    }
    counts["line states"] = sorted(Line.objects.values_list("iccid", "status", "valid_until"))
    counts["number states"] = sorted(PhoneNumber.objects.values_list("msisdn", "status"))
    counts["balances"] = sorted(Account.objects.values_list("code", "balance"))
    return counts


def test_demo_command_prints_summary_and_logins() -> None:
    # given
    out = io.StringIO()

    # when
    call_command("demo", stdout=out)

    # then
    text = out.getvalue()
    for _role, username, password in demo_logins():
        assert username in text and password in text
    assert "terminated" in text


class TestTheLoadedDemo:
    """What the demo holds, each test on the one load of the class."""

    def test_demo_loads_and_a_second_load_changes_nothing(self, demo: LoadedDemo) -> None:
        # given
        first = demo.summary
        before = snapshot()

        # when
        second = load_demo(now=demo.now)

        # then
        assert first.created_lines >= 45
        assert second.created_lines == 0
        assert snapshot() == before
        assert second.lines_by_status == first.lines_by_status

    def test_demo_has_lines_in_every_status(self, demo: LoadedDemo) -> None:
        # given / when
        summary = demo.summary

        # then
        assert set(summary.lines_by_status) == set(LineStatus.values)
        stored = set(Line.objects.values_list("status", flat=True))
        assert stored == set(LineStatus.values)
        # The sweep ran: what is stored is what the dates say.
        for line in Line.objects.select_related("policy"):
            assert lifecycle.effective_status(line, demo.now) == line.status
        assert PhoneNumber.objects.filter(status="available").count() >= 10

    def test_demo_books_and_audit_chain_verify(self, demo: LoadedDemo) -> None:
        # given / when: the demo, loaded

        # then
        report = verify_ledger()
        assert report.ok, report.problems
        assert report.transfers > 50
        assert verify_chain() == []
        assert AuditEntry.objects.filter(action="topup.manual").exists()

    def test_demo_user_owns_an_active_hkd_line_and_a_gbp_line_in_grace(
        self, demo: LoadedDemo
    ) -> None:
        # given / when: the demo, loaded

        # then
        user = get_user_model().objects.get(username="demo")
        assert user.email == DEMO_EMAIL
        lines = {(line.currency, line.status) for line in Line.objects.filter(owner=user)}
        assert lines == {("HKD", LineStatus.ACTIVE), ("GBP", LineStatus.GRACE)}
        assert TopUpOrder.objects.filter(customer=user, status="fulfilled").exists()

    def test_demo_identifiers_are_valid(self, demo: LoadedDemo) -> None:
        # given / when: the demo, loaded

        # then
        for iccid in Line.objects.values_list("iccid", flat=True):
            assert iccid.startswith("8985200") and len(iccid) == 19 and luhn.is_valid(iccid)
        for msisdn in PhoneNumber.objects.values_list("msisdn", flat=True):
            parsed = phonenumbers.parse(msisdn)
            assert phonenumbers.is_valid_number(parsed), msisdn
            assert msisdn.startswith(("+8529", "+447"))

    def test_demo_has_policies_plans_and_promotions(self, demo: LoadedDemo) -> None:
        # given / when: the demo, loaded

        # then
        hk = NumberPolicy.objects.get(code="hk-180")
        assert (hk.first_topup_days, hk.grace_days, hk.suspension_days, hk.quarantine_days) == (
            180,
            30,
            60,
            180,
        )
        assert hk.max_validity_days == 365 and hk.extension_rule == "stack"
        uk = NumberPolicy.objects.get(code="uk-180")
        assert (
            uk.first_topup_days + uk.grace_days,
            uk.first_topup_days + uk.grace_days + uk.suspension_days,
        ) == (
            269,
            273,
        )
        assert uk.extension_rule == "reset"
        au = NumberPolicy.objects.get(code="au-365")
        assert (au.grace_days, au.grace_days + au.suspension_days) == (10, 30)
        assert set(Plan.objects.values_list("currency", flat=True)) == {"HKD", "GBP"}
        assert (
            Plan.objects.exclude(name_zh_hans="").exclude(name_zh_hant="").count()
            == Plan.objects.count()
        )
        auto = Promotion.objects.get(promo_code="")
        assert auto.bonus_credit_percent and auto.budget
        coded = Promotion.objects.exclude(promo_code="").get()
        assert coded.bonus_days and coded.per_line_limit == 1

    def test_demo_logins_work(self, demo: LoadedDemo, client: Client) -> None:
        # given the demo, loaded
        logins = {role: (username, password) for role, username, password in demo_logins()}

        # when
        username, password = logins["admin"]
        logged_in = client.login(username=username, password=password)

        # then
        assert logged_in
        assert client.get("/ops/").status_code == 200
        username, password = logins["subscriber"]
        assert Client().login(username=username, password=password)

    def test_demo_staff_sign_in_to_the_back_office_in_their_roles(self, demo: LoadedDemo) -> None:
        from leb.backoffice.roles import FINANCE, SUPPORT

        # given the demo, loaded
        logins = {role: (username, password) for role, username, password in demo_logins()}

        for role, group in (("support", SUPPORT), ("finance", FINANCE)):
            username, password = logins[role]
            client = Client()
            # when
            assert client.login(username=username, password=password), role
            # then each is in their role and its dashboard opens
            user = get_user_model().objects.get(username=username)
            assert list(user.groups.values_list("name", flat=True)) == [group]
            assert client.get("/ops/").status_code == 200
        # and support may open tickets but not the books; finance the books
        support = get_user_model().objects.get(username=logins["support"][0])
        finance = get_user_model().objects.get(username=logins["finance"][0])
        assert support.has_perm("support.view_ticket")
        assert not support.has_perm("ledger.view_transfer")
        assert finance.has_perm("ledger.view_transfer")
