from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from leb.payments.actions import do_record_event, do_start_attempt
from leb.payments.providers.base import SUCCEEDED, Outcome, WebhookEvent

pytestmark = pytest.mark.django_db


def test_staff_see_attempts_and_events_read_only(
    make_order: Any, now: datetime, admin_client: Client, ledger_ok: Any
) -> None:
    # given a settled payment with its event
    attempt = do_start_attempt(make_order(), "sandbox", now=now)
    do_record_event(
        WebhookEvent(
            provider="sandbox",
            event_id="evt_1",
            type="payment.succeeded",
            payload_sha256="0" * 64,
            attempt_id=str(attempt.public_id),
            outcome=Outcome(SUCCEEDED, amount=5000, currency="HKD"),
        ),
        now=now,
    )
    # when staff open the back office pages
    pages = [
        reverse("admin:payments_paymentattempt_changelist"),
        reverse("admin:payments_paymentattempt_change", args=[attempt.pk]),
        reverse("admin:payments_providerevent_changelist"),
        reverse("admin:payments_providerevent_changelist") + "?q=evt_1",
        reverse("admin:payments_paymentattempt_changelist") + "?q=zz%25_'",
    ]
    # then they open, and nothing can be added
    for page in pages:
        assert admin_client.get(page).status_code == 200, page
    assert admin_client.get(reverse("admin:payments_providerevent_add")).status_code == 403
    ledger_ok()
