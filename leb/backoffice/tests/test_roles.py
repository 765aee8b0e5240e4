"""The staff roles: each sees and does exactly what its permissions say, on
every page of the back office, and refunds respect the support limit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, Permission
from django.test import Client, RequestFactory
from django.urls import NoReverseMatch, reverse

from leb.backoffice.roles import ADMIN, FINANCE, ROLE_PERMISSIONS, SUPPORT, sync_roles

pytestmark = pytest.mark.django_db

ROLES = (SUPPORT, FINANCE, ADMIN)


def staff(django_user_model: Any, role: str | None, name: str = "") -> Any:
    user = django_user_model.objects.create_user(
        name or f"staff-{role or 'none'}", password="x-unused-9", is_staff=True
    )
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


def signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_migration_made_the_three_roles_with_every_listed_permission() -> None:
    # given the migrated database
    # then the groups exist and no listed permission is unknown
    assert set(Group.objects.filter(name__in=ROLES).values_list("name", flat=True)) == set(ROLES)
    assert sync_roles(Permission, Group) == []
    support = set(
        Group.objects.get(name=SUPPORT).permissions.values_list(
            "content_type__app_label", "codename"
        )
    )
    assert ("topups", "refund_topuporder") in support
    assert ("topups", "refund_any_topuporder") not in support
    assert ("catalog", "change_plan") not in support


def test_a_role_changed_by_hand_is_put_back_by_the_next_sync() -> None:
    # given someone gave support the right to edit plans in the database
    group = Group.objects.get(name=SUPPORT)
    group.permissions.add(Permission.objects.get(codename="change_plan"))
    # when the roles are synced (every migrate does it)
    sync_roles(Permission, Group)
    # then the role is what roles.py says again
    assert not group.permissions.filter(codename="change_plan").exists()


def _pages() -> list[tuple[str, str, str, str]]:
    """(model label, page kind, URL, needed permission) for every registered
    model's list, add and change page (the change page of its first row)."""
    pages = []
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        label = f"{opts.app_label}.{opts.model_name}"
        prefix = f"admin:{opts.app_label}_{opts.model_name}"
        pages.append((label, "list", reverse(f"{prefix}_changelist"), "view"))
        pages.append((label, "add", reverse(f"{prefix}_add"), "add"))
        first = model_admin.get_queryset(RequestFactory().get("/")).order_by("pk").first()
        if first is not None:
            pages.append((label, "change", reverse(f"{prefix}_change", args=[first.pk]), "view"))
    return pages


def _allowed(role: str, label: str, needed: str) -> bool:
    app, model = label.split(".")
    granted = set(ROLE_PERMISSIONS[role])
    if needed == "view":
        return f"{app}.view_{model}" in granted or f"{app}.change_{model}" in granted
    return f"{app}.{needed}_{model}" in granted


@pytest.mark.parametrize("role", ROLES)
def test_every_back_office_page_answers_each_role_as_its_permissions_say(
    role: str, django_user_model: Any, make_line: Callable[..., Any], hkd_plan: Any, now: Any
) -> None:
    from .disputes import disputed

    # given some rows to open (a line, a dispute with a refund), a superuser
    # as the measure of what exists at all, and a member of staff in the role
    make_line()
    disputed(make_line(), hkd_plan, now, refund=1000)
    root = signed_in(django_user_model.objects.create_superuser("root", password="x-unused-9"))
    client = signed_in(staff(django_user_model, role))
    wrong = []
    for label, kind, url, needed in _pages():
        baseline = root.get(url).status_code
        if baseline != 200:
            # The page does not exist for anyone (e.g. no adding to a read-only log).
            assert baseline == 403, f"{url}: superuser got {baseline}"
            continue
        # when the role opens the page
        status = client.get(url).status_code
        # then it is served exactly when the role has the permission
        expected = 200 if _allowed(role, label, needed) else 403
        if status != expected:
            wrong.append(f"{kind} {label} {url}: {status}, expected {expected}")
    assert not wrong, "\n".join(wrong)


def test_staff_without_a_role_see_nothing(django_user_model: Any) -> None:
    client = signed_in(staff(django_user_model, None))
    index = client.get(reverse("admin:index"))
    assert index.status_code == 200
    assert "permission to view or edit anything" in index.content.decode()
    assert client.get(reverse("admin:lines_line_changelist")).status_code == 403


def test_only_finance_and_admin_open_the_manual_top_up(
    django_user_model: Any, make_line: Callable[..., Any]
) -> None:
    line = make_line()
    try:
        url = reverse("admin:lines_line_topup", args=[line.pk])
    except NoReverseMatch:  # pragma: no cover - the page is part of the top-ups admin
        pytest.fail("the manual top-up page is not registered")
    assert signed_in(staff(django_user_model, SUPPORT)).get(url).status_code == 403
    assert signed_in(staff(django_user_model, FINANCE)).get(url).status_code == 200
    assert signed_in(staff(django_user_model, ADMIN)).get(url).status_code == 200


# The dashboard's figures and the list each links to: a role sees a figure
# exactly when it may open that list; revenue also needs the books.
DASHBOARD_FIGURES = {
    "topups-per-day": "topups.topuporder",
    "topups-by-channel": "topups.topuporder",
    "lines-by-status": "lines.line",
    "lines-expiring": "lines.line",
    "lines-lost": "lines.line",
    "reminder-delivery": "notifications.notification",
    "payments-attention": "payments.paymentattempt",
    "tickets-by-age": "support.ticket",
    "settlement-mismatches": "finance.mismatch",
}


@pytest.mark.parametrize("role", ROLES)
def test_the_dashboard_shows_each_role_the_figures_its_permissions_allow(
    role: str,
    django_user_model: Any,
    make_line: Callable[..., Any],
    hkd_plan: Any,
    now: Any,
) -> None:
    from leb.backoffice.dashboard import REVENUE_PERMISSION
    from leb.common import clock
    from leb.testing import topup

    # given a completed top-up (so there is revenue to show or hide)
    topup(make_line(), hkd_plan, now=now)
    client = signed_in(staff(django_user_model, role))

    # when the role opens the back office's first page
    with clock.frozen(now):
        page = client.get(reverse("admin:index")).content.decode()

    # then each figure is there exactly when the role may open its list
    wrong = []
    for key, label in DASHBOARD_FIGURES.items():
        shown = f'id="figure-{key}"' in page
        if shown != _allowed(role, label, "view"):
            wrong.append(f"{key}: shown={shown}")
    revenue = 'id="figure-revenue-hkd"' in page
    if revenue != (REVENUE_PERMISSION in ROLE_PERMISSIONS[role]):
        wrong.append(f"revenue: shown={revenue}")
    assert not wrong, "\n".join(wrong)
    # and the app list is still on the page
    assert reverse("admin:lines_line_changelist") in page


def test_staff_without_a_role_get_no_dashboard(django_user_model: Any) -> None:
    page = signed_in(staff(django_user_model, None)).get(reverse("admin:index")).content.decode()
    assert "leb-dashboard" not in page


@pytest.mark.parametrize("role", (*ROLES, None))
def test_the_line_story_answers_each_role_as_its_permissions_say(
    role: str | None, django_user_model: Any, make_line: Callable[..., Any]
) -> None:
    # given a line and a member of staff in the role (or in none)
    line = make_line()
    client = signed_in(staff(django_user_model, role))

    # when they open the line's story
    status = client.get(reverse("admin:lines_line_story", args=[line.pk])).status_code

    # then it is served exactly when the role may see lines
    allowed = role is not None and _allowed(role, "lines.line", "view")
    assert status == (200 if allowed else 403)


@pytest.mark.parametrize("role", (*ROLES, None))
def test_the_lines_import_answers_each_role_as_its_permissions_say(
    role: str | None, django_user_model: Any
) -> None:
    # given a member of staff in the role (or in none)
    client = signed_in(staff(django_user_model, role))
    allowed = role is not None and "lines.add_line" in ROLE_PERMISSIONS[role]

    # when they open the import form and post a confirmation
    form = client.get(reverse("admin:lines_line_import")).status_code
    confirm = client.post(reverse("admin:lines_line_import_confirm"), {"token": "x"}).status_code

    # then both are served exactly when the role may add lines (a bad token
    # just goes back to the form)
    assert form == (200 if allowed else 403)
    assert confirm == (302 if allowed else 403)
    assert allowed == (role == ADMIN)


@pytest.mark.parametrize("role", (*ROLES, None))
def test_the_liability_report_answers_each_role_as_its_permissions_say(
    role: str | None, django_user_model: Any
) -> None:
    # given a member of staff in the role (or in none)
    client = signed_in(staff(django_user_model, role))
    allowed = role is not None and "ledger.view_liability_report" in ROLE_PERMISSIONS[role]

    # when they open the report and the back office's first page
    status = client.get(reverse("admin:liability_report")).status_code
    index = client.get(reverse("admin:index")).content.decode()

    # then the report (and the link to it) is there exactly for finance and admin
    assert status == (200 if allowed else 403)
    assert ('id="liability-report-link"' in index) == allowed
    assert allowed == (role in (FINANCE, ADMIN))


@pytest.mark.parametrize("role", (*ROLES, None))
def test_the_dispute_pages_answer_each_role_as_its_permissions_say(
    role: str | None,
    django_user_model: Any,
    make_line: Callable[..., Any],
    hkd_plan: Any,
    now: Any,
    settings: Any,
) -> None:
    from .disputes import disputed, ticket_about

    # given a ticket not yet escalated, and a dispute with a failed refund
    ticket = ticket_about(make_line(), now)
    settings.PAYMENTS_SANDBOX_REFUNDS = "unavailable"
    dispute = disputed(make_line(), hkd_plan, now, refund=1000)
    refund = dispute.events.get(kind="refund_requested").refund
    client = signed_in(staff(django_user_model, role))
    granted = set(ROLE_PERMISSIONS[role]) if role else set()
    may_see_disputes = "support.view_dispute" in granted
    may_refund = may_see_disputes and bool(
        {"topups.refund_topuporder", "topups.refund_any_topuporder"} & granted
    )
    may_decide = may_see_disputes and "support.change_dispute" in granted
    pages = {
        reverse("admin:support_ticket_escalate", args=[ticket.pk]): (
            "support.add_dispute" in granted and "support.view_ticket" in granted
        ),
        reverse("admin:support_dispute_change", args=[dispute.pk]): may_see_disputes,
        reverse("admin:support_dispute_refund", args=[dispute.pk]): may_refund,
        reverse("admin:support_dispute_retry", args=[dispute.pk, refund.pk]): may_refund,
        reverse("admin:support_dispute_reject", args=[dispute.pk]): may_decide,
        reverse("admin:support_dispute_close", args=[dispute.pk]): may_decide,
    }
    # when the role opens each page, and posts to each
    wrong = []
    for url, allowed in pages.items():
        status = client.get(url).status_code
        if status != (200 if allowed else 403):
            wrong.append(f"GET {url}: {status}, allowed={allowed}")
        if not allowed and client.post(url, {"note": "x", "amount": "1"}).status_code != 403:
            wrong.append(f"POST {url} was not refused")
    # then each is served exactly when the role's permissions allow it
    assert not wrong, "\n".join(wrong)
    assert (role in (SUPPORT, ADMIN)) == pages[
        reverse("admin:support_ticket_escalate", args=[ticket.pk])
    ]


# The export form of each dataset and the permission it needs (leb.exports).
EXPORT_DATASETS = {
    "orders": "exports.export_orders",
    "receipts": "exports.export_receipts",
    "ledger": "exports.export_ledger",
    "agent_statements": "exports.export_agent_statements",
    "settlement_runs": "exports.export_settlement",
    "settlement_mismatches": "exports.export_settlement",
}


@pytest.mark.parametrize("role", (*ROLES, None))
def test_the_exports_pages_answer_each_role_as_its_permissions_say(
    role: str | None, django_user_model: Any
) -> None:
    # given a member of staff in the role (or in none)
    client = signed_in(staff(django_user_model, role))
    granted = set(ROLE_PERMISSIONS[role]) if role else set()

    # when they open the Exports page and each dataset's export form
    listing = client.get(reverse("admin:exports_exportjob_changelist")).status_code
    forms = {
        name: client.get(reverse("admin:exports_exportjob_request"), {"dataset": name}).status_code
        for name in EXPORT_DATASETS
    }

    # then the page is served to every role, and each form exactly when the
    # role may export that dataset: orders and receipts to support, finance
    # and admin; the ledger, agents' statements and the settlement to
    # finance and admin
    assert listing == (200 if "exports.view_exportjob" in granted else 403)
    expected = {
        name: 200 if role and permission in granted else 403
        for name, permission in EXPORT_DATASETS.items()
    }
    assert forms == expected
    if role == SUPPORT:
        assert forms == {
            "orders": 200,
            "receipts": 200,
            "ledger": 403,
            "agent_statements": 403,
            "settlement_runs": 403,
            "settlement_mismatches": 403,
        }
    if role in (FINANCE, ADMIN):
        assert set(forms.values()) == {200}


# Finance's own pages beyond the model lists (the lists themselves are walked
# above): each is served exactly when the role has the permission it checks.
FINANCE_PAGES = {
    "admin:finance_settlementrun_reconcile": ("finance.reconcile_settlement",),
    "admin:vouchers_distributor_payment": ("vouchers.add_distributorpayment",),
    "admin:vouchers_distributor_statement": ("vouchers.view_distributorpayment",),
    "admin:agents_agent_commission": ("agents.view_agent", "agents.view_agent_sales"),
}


@pytest.mark.parametrize("role", (*ROLES, None))
def test_finance_pages_answer_each_role_as_its_permissions_say(
    role: str | None, django_user_model: Any
) -> None:
    from decimal import Decimal

    from leb.agents.actions import do_create_agent
    from leb.vouchers.models import Distributor

    # given a distributor, an agent and a member of staff in the role (or in none)
    distributor = Distributor.objects.create(code="kiosk", name="Kiosk")
    agent = do_create_agent(
        actor="staff:test",
        legal_name="Kowloon Phones Ltd",
        display_name="Kowloon Phones",
        region="HK",
        currency="HKD",
        discount_percent=Decimal("10"),
    )
    args: dict[str, list[Any]] = {
        "admin:vouchers_distributor_payment": [distributor.pk],
        "admin:vouchers_distributor_statement": [distributor.pk],
        "admin:agents_agent_commission": [agent.code],
    }
    client = signed_in(staff(django_user_model, role))
    granted = set(ROLE_PERMISSIONS[role]) if role else set()
    wrong = []
    for name, needed in FINANCE_PAGES.items():
        # when the role opens the page
        status = client.get(reverse(name, args=args.get(name, []))).status_code
        # then it is served exactly when the role has every permission it needs
        expected = 200 if set(needed) <= granted else 403
        if status != expected:
            wrong.append(f"{name}: {status}, expected {expected}")
    assert not wrong, "\n".join(wrong)
