"""The return page fulfilling an order whose line another transaction holds
past the lock timeout: the payer is told to try again, the payment is not
half recorded (the attempt is still open, nothing paid or credited), and the
reload fulfils it once."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from leb.ledger.queries import balance_by_code
from leb.lines.models import Line, LineEvent
from leb.payments.models import AttemptStatus, PaymentAttempt
from leb.payments.providers import sandbox
from leb.payments.providers.base import SUCCEEDED
from leb.testing import row_held, short_lock_timeout
from leb.topups.models import OrderStatus, TopUpOrder

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL row locks"),
]


def test_return_page_meeting_a_held_line_says_try_again_then_fulfils_once(
    make_order: Any, ledger_ok: Any
) -> None:
    # given a payment the gateway approved
    browser = Client()
    order = make_order()
    browser.post(reverse("payments:start", args=[order.public_id]))
    attempt = PaymentAttempt.objects.get(order=order)
    sandbox.complete_at_gateway(attempt, SUCCEEDED)
    url = reverse("payments:return", args=[attempt.public_id])
    # when the payer comes back while the line is held elsewhere
    short_lock_timeout()
    with row_held(Line, order.line_id):
        page = browser.get(url, HTTP_ACCEPT_LANGUAGE="zh-hant")
    # then they are asked to try again, and nothing was half written
    assert page.status_code == 503
    assert "處理時間比預期長。沒有任何更改，請重試。" in page.content.decode()  # noqa: RUF001
    assert f'href="{url}"' in page.content.decode()
    assert PaymentAttempt.objects.get(pk=attempt.pk).status == AttemptStatus.PENDING
    assert TopUpOrder.objects.get(pk=order.pk).status == OrderStatus.PENDING_PAYMENT
    assert balance_by_code(f"wallet:line:{order.line_id}") == 0
    ledger_ok()
    # when they reload, the top-up is made once
    short_lock_timeout()
    assert 'data-state="success"' in browser.get(url).content.decode()
    assert 'data-state="success"' in browser.get(url).content.decode()
    assert TopUpOrder.objects.get(pk=order.pk).status == OrderStatus.FULFILLED
    assert balance_by_code(f"wallet:line:{order.line_id}") == 5000
    assert LineEvent.objects.filter(line_id=order.line_id, kind="topped_up").count() == 1
    ledger_ok()
