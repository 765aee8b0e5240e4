"""Distributors pay for their activated vouchers: each payment is booked
against their receivable, and their statement shows what was charged, what
was credited and what they still owe."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from leb.audit.models import AuditEntry
from leb.ledger.queries import balance_by_code
from leb.vouchers.actions import (
    VoucherError,
    do_block_vouchers,
    do_record_distributor_payment,
    serial_range,
)
from leb.vouchers.models import Distributor, DistributorPayment
from leb.vouchers.queries import BLOCKED, INVOICED, PAID, distributor_statement

pytestmark = pytest.mark.django_db
RECEIVABLE = "clearing:voucher-sales:shop:HKD"


def pay(distributor: Distributor, amount: int, reference: str = "BANK-1", key: str = "k1") -> Any:
    return do_record_distributor_payment(
        distributor, amount, "HKD", reference, actor="staff:fin", idempotency_key=key
    )


def test_a_payment_lowers_what_the_distributor_owes(
    distributor: Distributor, make_batch: Callable[..., Any], ledger_ok: Any
) -> None:
    # given a batch of 5 x HK$100 activated: the shop owes HK$500
    make_batch()
    assert balance_by_code(RECEIVABLE) == -50000
    # when the shop pays HK$300
    payment = pay(distributor, 30000)
    # then it owes HK$200, the bank clearing holds the money, and it is audited
    assert balance_by_code(RECEIVABLE) == -20000
    assert balance_by_code("clearing:voucher-payments:HKD") == -30000
    assert (payment.amount, payment.reference, payment.recorded_by) == (
        30000,
        "BANK-1",
        "staff:fin",
    )
    entry = AuditEntry.objects.get(action="distributor.payment")
    assert entry.data["owed_before"] == 50000
    ledger_ok()


def test_the_same_payment_twice_is_booked_once(
    distributor: Distributor, make_batch: Callable[..., Any]
) -> None:
    make_batch()
    first = pay(distributor, 30000)
    again = pay(distributor, 30000)
    assert first.pk == again.pk
    assert balance_by_code(RECEIVABLE) == -20000


def test_the_same_payment_with_the_longest_reference_and_key_is_booked_once(
    distributor: Distributor, make_batch: Callable[..., Any]
) -> None:
    make_batch()
    first = pay(distributor, 30000, reference="R" * 100, key="k" * 200)
    again = pay(distributor, 30000, reference="R" * 100, key="k" * 200)
    assert first.pk == again.pk
    assert balance_by_code(RECEIVABLE) == -20000


@pytest.mark.parametrize(
    ("amount", "currency", "reference", "key", "code"),
    [
        (0, "HKD", "B2", "k2", "amount_invalid"),
        (-5, "HKD", "B2", "k2", "amount_invalid"),
        (100, "XXQ", "B2", "k2", "currency_invalid"),
        (100, "HKD", "  ", "k2", "reference_required"),
        (60000, "HKD", "B2", "k2", "more_than_owed"),
        (100, "HKD", "BANK-1", "k2", "reference_taken"),
        (200, "HKD", "BANK-1", "k1", "idempotency_conflict"),
        (100, "HKD", "R" * 101, "k2", "reference_too_long"),
    ],
)
def test_a_bad_payment_is_refused_and_nothing_is_written(
    distributor: Distributor,
    make_batch: Callable[..., Any],
    amount: int,
    currency: str,
    reference: str,
    key: str,
    code: str,
) -> None:
    # given a shop owing HK$500 that already paid HK$1 under BANK-1
    make_batch()
    pay(distributor, 100)
    # when a bad payment is recorded, then it is refused with its reason
    with pytest.raises(VoucherError) as raised:
        do_record_distributor_payment(
            distributor, amount, currency, reference, actor="staff:fin", idempotency_key=key
        )
    assert raised.value.code == code
    assert DistributorPayment.objects.count() == 1
    assert balance_by_code(RECEIVABLE) == -49900


def test_the_statement_lists_charges_credits_and_the_balance(
    distributor: Distributor, make_batch: Callable[..., Any], now: datetime
) -> None:
    # given two batches activated, two vouchers blocked and a payment
    first = make_batch(code="HK01")
    make_batch(code="HK02", quantity=2)
    do_block_vouchers(
        serial_range(first.serials[0], first.serials[1]), reason="lost", actor="s", now=now
    )
    pay(distributor, 25000)
    # when the statement is read
    statement = distributor_statement(distributor, "HKD")
    # then every movement is there with the balance after it
    assert [(line.kind, line.description, line.owed_after) for line in statement.lines] == [
        (INVOICED, "HK01", 50000),
        (INVOICED, "HK02", 70000),
        (BLOCKED, "HK01", 50000),
        (PAID, "payment from shop: BANK-1", 25000),
    ]
    assert (statement.invoiced, statement.blocked, statement.paid, statement.owed) == (
        70000,
        20000,
        25000,
        25000,
    )


def _finance(django_user_model: Any) -> Client:
    user = django_user_model.objects.create_user("fin", password="x-unused-9", is_staff=True)
    user.groups.add(Group.objects.get(name="finance"))
    client = Client()
    client.force_login(user)
    return client


def test_finance_records_a_payment_and_downloads_the_statement(
    distributor: Distributor, make_batch: Callable[..., Any], django_user_model: Any
) -> None:
    # given finance and a shop owing HK$500
    make_batch()
    client = _finance(django_user_model)
    url = reverse("admin:vouchers_distributor_payment", args=[distributor.pk])
    assert client.get(url).status_code == 200
    # when they record HK$120.50 from the form
    data = {"amount": "120.50", "currency": "HKD", "reference": "FPS-77", "idempotency_key": "f1"}
    response = client.post(url, data, follow=True)
    # then the statement shows it and what is still owed
    page = response.content.decode()
    assert "The payment was recorded." in page
    assert "HKD\xa0379.50" in page
    statement_url = reverse("admin:vouchers_distributor_statement", args=[distributor.pk])
    csv_text = client.get(statement_url + "?currency=HKD&format=csv").content.decode()
    rows = list(csv.reader(io.StringIO(csv_text)))
    assert rows[0][:3] == ["at", "kind", "description"]
    assert rows[-2][1:6] == ["paid", "payment from shop: FPS-77", "0", "12050", "37950"]
    assert rows[-1][5] == "37950"


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("12.345", "Enter an amount of money"),
        ("abc", "Enter an amount of money"),
        ("0", "Enter an amount of money"),
        ("900", "is more than that"),
    ],
)
def test_the_payment_form_refuses_bad_input_clearly(
    distributor: Distributor,
    make_batch: Callable[..., Any],
    django_user_model: Any,
    amount: str,
    message: str,
) -> None:
    make_batch()
    client = _finance(django_user_model)
    url = reverse("admin:vouchers_distributor_payment", args=[distributor.pk])
    data = {"amount": amount, "currency": "HKD", "reference": "R", "idempotency_key": "f2"}
    response = client.post(url, data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not DistributorPayment.objects.exists()


@pytest.mark.parametrize(
    ("role", "allowed"), [("support", False), ("finance", True), ("admin", True)]
)
def test_the_distributor_account_pages_answer_each_role(
    role: str, allowed: bool, distributor: Distributor, django_user_model: Any
) -> None:
    user = django_user_model.objects.create_user(role, password="x-unused-9", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    client = Client()
    client.force_login(user)
    for name in ("vouchers_distributor_payment", "vouchers_distributor_statement"):
        status = client.get(reverse(f"admin:{name}", args=[distributor.pk])).status_code
        assert status == (200 if allowed else 403), name
    assert client.get(reverse("admin:vouchers_distributor_statement", args=[999])).status_code in (
        403,
        404,
    )
