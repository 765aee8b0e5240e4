"""The back office: batches with counts per state, vouchers by serial (never
by PIN), activation and blocking with a confirmation step and audit rows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.admin import helpers
from django.test import Client

from leb.audit.models import AuditEntry
from leb.vouchers.models import BatchState, Voucher, VoucherBatch, VoucherState

pytestmark = pytest.mark.django_db
BATCHES = "/ops/vouchers/voucherbatch/"
VOUCHERS = "/ops/vouchers/voucher/"


@pytest.fixture(autouse=True)
def _frozen_clock(frozen_now: None) -> None:
    """The clock stands still at `now` (leb/conftest.py)."""


@pytest.fixture
def staff_client(client: Client, django_user_model: Any) -> Client:
    staff = django_user_model.objects.create_superuser("boss", "boss@example.com", "pw-boss-1234")
    client.force_login(staff)
    return client


def test_the_batch_list_counts_vouchers_per_state(
    staff_client: Client, make_batch: Callable[..., Any]
) -> None:
    # given
    make_batch(code="HK01", quantity=3)
    make_batch(code="HK02", quantity=2, activate=False)

    # when
    response = staff_client.get(BATCHES)

    # then
    body = response.content.decode()
    assert response.status_code == 200
    assert "Active: 3" in body
    assert "Generated: 2" in body
    assert "Block a serial range" in body


def test_every_voucher_admin_page_opens(
    staff_client: Client, make_batch: Callable[..., Any]
) -> None:
    # given
    made = make_batch()
    voucher = Voucher.objects.first()
    assert voucher is not None

    # when
    pages = [
        staff_client.get(f"{BATCHES}{made.batch.pk}/change/"),
        staff_client.get(f"{VOUCHERS}{voucher.pk}/change/"),
        staff_client.get("/ops/vouchers/distributor/"),
        staff_client.get(f"/ops/vouchers/distributor/{made.batch.distributor_id}/change/"),
        staff_client.get(f"{BATCHES}block/"),
    ]

    # then
    assert [p.status_code for p in pages] == [200] * 5
    assert "pin_hash" not in pages[1].content.decode()


def test_vouchers_are_searchable_by_serial_but_not_by_pin(
    staff_client: Client, make_batch: Callable[..., Any]
) -> None:
    # given
    made = make_batch(quantity=3)

    # when
    by_serial = staff_client.get(VOUCHERS, {"q": made.serials[1]})
    by_pin = staff_client.get(VOUCHERS, {"q": made.pins[1]})

    # then
    assert made.serials[1] in by_serial.content.decode()
    assert made.serials[0] not in by_serial.content.decode()
    assert made.serials[1] not in by_pin.content.decode()


def test_activating_a_batch_asks_first_then_activates_and_audits(
    staff_client: Client, make_batch: Callable[..., Any], ledger_ok: Any
) -> None:
    # given
    made = make_batch(quantity=4, activate=False)
    data = {"action": "activate_batches", helpers.ACTION_CHECKBOX_NAME: [made.batch.pk]}

    # when
    confirm = staff_client.post(BATCHES, data)
    done = staff_client.post(BATCHES, {**data, "apply": "yes"}, follow=True)

    # then
    assert confirm.status_code == 200
    assert "voucher liability" in confirm.content.decode()
    assert Voucher.objects.filter(state=VoucherState.ACTIVE).count() == 4
    assert "activated 4 vouchers" in done.content.decode()
    assert VoucherBatch.objects.get().state == BatchState.ACTIVE
    assert AuditEntry.objects.filter(action="voucher.batch.activate", actor="staff:boss").exists()
    ledger_ok()


def test_distributing_a_batch(staff_client: Client, make_batch: Callable[..., Any]) -> None:
    # given
    made = make_batch(activate=False)
    data = {"action": "distribute_batches", helpers.ACTION_CHECKBOX_NAME: [made.batch.pk]}

    # when
    staff_client.post(BATCHES, {**data, "apply": "yes"})

    # then
    assert VoucherBatch.objects.get().state == BatchState.DISTRIBUTED
    assert AuditEntry.objects.filter(action="voucher.batch.distribute").exists()


def test_blocking_a_range_shows_what_it_covers_then_blocks(
    staff_client: Client, make_batch: Callable[..., Any], ledger_ok: Any
) -> None:
    # given
    made = make_batch(quantity=5)
    form = {"first": made.serials[1], "last": made.serials[3], "reason": "stolen from shop"}

    # when
    preview = staff_client.post(f"{BATCHES}block/", form)
    blocked = staff_client.post(f"{BATCHES}block/", {**form, "confirm": "1"}, follow=True)

    # then
    assert "Active: 3" in preview.content.decode()
    assert Voucher.objects.filter(state=VoucherState.BLOCKED).count() == 3
    assert "Blocked 3 vouchers" in blocked.content.decode()
    entry = AuditEntry.objects.get(action="voucher.block")
    assert (entry.actor, entry.data["reason"]) == ("staff:boss", "stolen from shop")
    ledger_ok()


def test_a_bad_range_is_a_form_error(staff_client: Client, make_batch: Callable[..., Any]) -> None:
    # given
    made = make_batch(quantity=2)

    # when
    response = staff_client.post(
        f"{BATCHES}block/",
        {"first": made.serials[1], "last": made.serials[0], "reason": "x", "confirm": "1"},
    )

    # then
    assert response.status_code == 200
    assert "must not come after" in response.content.decode()
    assert not Voucher.objects.filter(state=VoucherState.BLOCKED).exists()


def test_blocking_selected_vouchers(
    staff_client: Client, make_batch: Callable[..., Any], ledger_ok: Any
) -> None:
    # given
    made = make_batch(quantity=3)
    ids = list(Voucher.objects.order_by("number").values_list("pk", flat=True))[:2]
    data = {"action": "block_vouchers", helpers.ACTION_CHECKBOX_NAME: ids}

    # when
    confirm = staff_client.post(VOUCHERS, data)
    staff_client.post(VOUCHERS, {**data, "apply": "yes", "reason": "returned by shop"})

    # then
    assert made.serials[0] in confirm.content.decode()
    assert Voucher.objects.filter(state=VoucherState.BLOCKED).count() == 2
    assert AuditEntry.objects.filter(action="voucher.block").count() == 2
    ledger_ok()


def test_staff_without_the_permission_cannot_block(
    client: Client, django_user_model: Any, make_batch: Callable[..., Any]
) -> None:
    # given
    from django.contrib.auth.models import Permission

    make_batch()
    clerk = django_user_model.objects.create_user("clerk", "c@example.com", "pw-clerk-1234")
    clerk.is_staff = True
    clerk.save()
    clerk.user_permissions.add(Permission.objects.get(codename="view_voucherbatch"))
    client.force_login(clerk)

    # when
    response = client.get(f"{BATCHES}block/")

    # then
    assert response.status_code == 403
    assert "Block a serial range" not in client.get(BATCHES).content.decode()
