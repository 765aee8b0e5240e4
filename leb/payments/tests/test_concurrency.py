"""The webhook and the return page settling one attempt at the same moment,
each on its own PostgreSQL connection: the order is fulfilled exactly once."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from leb.ledger.queries import balance_by_code
from leb.lines.models import LineEvent
from leb.payments.models import AttemptStatus, PaymentAttempt, ProviderEvent
from leb.payments.providers import sandbox
from leb.payments.providers.base import SUCCEEDED
from leb.testing import race_all as race
from leb.topups.models import OrderStatus, TopUpOrder

from .helpers import deliver_pending_webhooks

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL row locks"),
]


@pytest.mark.parametrize("round_", range(3))
def test_webhook_and_return_page_race_fulfil_once(
    make_order: Any, transport: Any, now: datetime, ledger_ok: Any, round_: int
) -> None:
    # given a payment the gateway has approved, its webhook queued
    browser = Client()
    order = make_order()
    browser.post(reverse("payments:start", args=[order.public_id]))
    attempt = PaymentAttempt.objects.get(order=order)
    sandbox.complete_at_gateway(attempt, SUCCEEDED)
    return_url = reverse("payments:return", args=[attempt.public_id])
    # when the webhook and the payer's return page arrive together
    results = race([deliver_pending_webhooks, lambda: browser.get(return_url)])
    # then both succeed and the order was fulfilled exactly once
    assert not [r for r in results if isinstance(r, Exception)], results
    assert results[0] == ["delivered"]
    assert results[1].status_code == 200
    assert 'data-state="success"' in results[1].content.decode()
    order = TopUpOrder.objects.get(pk=order.pk)
    assert order.status == OrderStatus.FULFILLED
    assert order.receipt_number is not None
    assert PaymentAttempt.objects.get(pk=attempt.pk).status == AttemptStatus.SUCCEEDED
    assert ProviderEvent.objects.get().outcome in ("fulfilled", "duplicate")
    assert balance_by_code(f"wallet:line:{order.line_id}") == 5000
    assert LineEvent.objects.filter(line=order.line, kind="topped_up").count() == 1
    ledger_ok()
