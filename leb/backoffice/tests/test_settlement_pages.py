"""The settlement pages for each role: runs and mismatches (read-only), the
"Reconcile a day" form, and the dashboard figure linking to the mismatches."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from django.urls import reverse

from leb.backoffice.roles import ADMIN, FINANCE, ROLE_PERMISSIONS, SUPPORT
from leb.common import clock
from leb.finance.actions import do_reconcile_day
from leb.finance.models import Mismatch, MismatchKind, SettlementRun
from leb.payments.models import PaymentAttempt
from leb.payments.providers import sandbox

from .test_roles import signed_in, staff

pytestmark = pytest.mark.django_db
DAY = date(2026, 5, 31)
NOON = datetime(2026, 5, 31, 4, 0, tzinfo=UTC)  # noon in Hong Kong


@pytest.fixture
def day_with_a_mismatch(make_line: Any, hkd_plan: Any, now: datetime) -> SettlementRun:
    """31 May reconciled: one capture at the gateway that leb never settled."""
    from leb.topups.actions import do_create_order

    order = do_create_order(
        line=make_line(), channel="web", plan=hkd_plan, idempotency_key="pages:1", now=NOON
    )
    attempt = PaymentAttempt.objects.create(
        order=order,
        provider="sandbox",
        amount=order.price,
        currency=order.currency,
        status="pending",
        created_at=NOON,
        updated_at=NOON,
    )
    sandbox.capture_at_gateway(attempt, NOON)
    with clock.frozen(now):
        (run,) = do_reconcile_day(DAY, "sandbox", actor="staff:fin")
    return run


def _urls(run: SettlementRun) -> dict[str, str]:
    mismatch = Mismatch.objects.get(run=run)
    return {
        "runs": reverse("admin:finance_settlementrun_changelist"),
        "run": reverse("admin:finance_settlementrun_change", args=[run.pk]),
        "mismatches": reverse("admin:finance_mismatch_changelist"),
        "mismatch": reverse("admin:finance_mismatch_change", args=[mismatch.pk]),
        "reconcile": reverse("admin:finance_settlementrun_reconcile"),
    }


@pytest.mark.parametrize("role", (SUPPORT, FINANCE, ADMIN, None))
def test_settlement_pages_answer_each_role_as_its_permissions_say(
    role: str | None, django_user_model: Any, day_with_a_mismatch: SettlementRun
) -> None:
    # given a reconciled day and a member of staff in the role (or in none)
    client = signed_in(staff(django_user_model, role))
    granted = set(ROLE_PERMISSIONS[role]) if role else set()
    # when they open each settlement page
    for name, url in _urls(day_with_a_mismatch).items():
        status = client.get(url).status_code
        # then it is served exactly when the role has the permission
        needed = {
            "runs": "finance.view_settlementrun",
            "run": "finance.view_settlementrun",
            "mismatches": "finance.view_mismatch",
            "mismatch": "finance.view_mismatch",
            "reconcile": "finance.reconcile_settlement",
        }[name]
        assert status == (200 if needed in granted else 403), f"{name}: {status}"
    assert (role in (FINANCE, ADMIN)) == ("finance.reconcile_settlement" in granted)


def test_the_run_page_shows_both_sides_and_the_mismatch(
    django_user_model: Any, day_with_a_mismatch: SettlementRun
) -> None:
    client = signed_in(staff(django_user_model, FINANCE))
    page = client.get(_urls(day_with_a_mismatch)["run"]).content.decode()
    assert "HKD\xa050.00" in page  # captured per provider
    assert "Paid, not fulfilled" in page
    listing = client.get(_urls(day_with_a_mismatch)["runs"]).content.decode()
    assert "Reconcile a day" in listing
    assert f"run__id__exact={day_with_a_mismatch.pk}" in listing


def test_finance_reconciles_a_day_from_the_form(
    django_user_model: Any, day_with_a_mismatch: SettlementRun, now: datetime
) -> None:
    # given finance on the reconcile form
    client = signed_in(staff(django_user_model, FINANCE, "fin"))
    url = reverse("admin:finance_settlementrun_reconcile")
    # when they reconcile the day again
    with clock.frozen(now):
        response = client.post(url, {"day": DAY.isoformat(), "provider": "sandbox"}, follow=True)
    # then the run is replaced, in their name, and the list says what was found
    assert response.status_code == 200
    (run,) = SettlementRun.objects.all()
    assert run.actor == "staff:fin" and run.pk != day_with_a_mismatch.pk
    assert "1 mismatch(es)" in response.content.decode()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"day": "31/05/2026"}, "Enter a date as YYYY-MM-DD"),
        ({"day": "2099-01-01"}, "is not over yet"),
        ({"day": "2026-05-31", "provider": "nope"}, "Select a valid choice"),
    ],
)
def test_the_reconcile_form_refuses_bad_input_clearly(
    django_user_model: Any, data: dict[str, str], message: str, now: datetime
) -> None:
    client = signed_in(staff(django_user_model, FINANCE))
    with clock.frozen(now):
        response = client.post(reverse("admin:finance_settlementrun_reconcile"), data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not SettlementRun.objects.exists()


def test_the_dashboard_figure_links_to_the_latest_days_mismatches(
    django_user_model: Any, day_with_a_mismatch: SettlementRun, now: datetime
) -> None:
    # given finance on the dashboard
    client = signed_in(staff(django_user_model, FINANCE))
    with clock.frozen(now):
        page = client.get(reverse("admin:index")).content.decode()
    # then the figure is there and its link opens exactly the day's mismatch
    assert 'id="figure-settlement-mismatches"' in page
    link = (
        reverse("admin:finance_mismatch_changelist")
        + f"?run__provider=sandbox&amp;run__date={DAY.isoformat()}&amp;kind__exact="
        + MismatchKind.PAID_NOT_FULFILLED
    )
    assert link in page
    listing = client.get(link.replace("&amp;", "&"))
    assert listing.status_code == 200
    assert "1 settlement mismatch" in listing.content.decode()
    assert DAY - timedelta(days=1) < DAY


def test_the_lists_query_count_does_not_grow_with_the_rows(
    django_user_model: Any, day_with_a_mismatch: SettlementRun, now: datetime
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = signed_in(staff(django_user_model, FINANCE))
    urls = [
        reverse("admin:finance_settlementrun_changelist"),
        reverse("admin:finance_mismatch_changelist"),
    ]

    def counts() -> list[int]:
        found = []
        for url in urls:
            with CaptureQueriesContext(connection) as queries:
                assert client.get(url).status_code == 200
            found.append(len(queries.captured_queries))
        return found

    # given one run with one mismatch
    few = counts()
    # when there are twenty more runs, each with mismatches
    for back in range(1, 21):
        run = SettlementRun.objects.create(
            date=DAY - timedelta(days=back),
            provider="sandbox",
            currency="HKD",
            created_at=now,
            actor="test",
            mismatch_count=2,
        )
        Mismatch.objects.bulk_create(
            [Mismatch(run=run, kind=kind) for kind in (MismatchKind.AMOUNT_DIFFERS,) * 2]
        )
    # then each list reads them in the same number of queries
    assert counts() == few
