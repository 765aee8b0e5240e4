"""The sandbox webhook endpoint and its delivery task."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django_tasks_db.models import DBTaskResult

from leb.audit.models import AuditEntry
from leb.payments.actions import do_start_attempt
from leb.payments.models import AttemptStatus, PaymentAttempt, ProviderEvent
from leb.payments.providers.sandbox import webhook_secret
from leb.payments.tasks import deliver_sandbox_webhook, use_transport
from leb.topups.models import OrderStatus

pytestmark = pytest.mark.django_db
URL = "/webhooks/sandbox"


def signed_post(
    client: Client, body: dict[str, Any] | bytes, *, at: datetime, secret: str = "", extra: str = ""
) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    t = int(at.timestamp())
    mac = hmac.new(
        (secret or webhook_secret()).encode(), f"{t}.".encode() + raw, hashlib.sha256
    ).hexdigest()
    header = f"t={t},{extra}v1={mac}"
    return client.post(
        URL, data=raw, content_type="application/json", headers={"Leb-Sandbox-Signature": header}
    )


def event(attempt: PaymentAttempt, kind: str = "payment.succeeded", **over: Any) -> dict[str, Any]:
    return {
        "id": f"evt_{kind}_{attempt.pk}",
        "type": kind,
        "attempt": str(attempt.public_id),
        "amount": attempt.amount,
        "currency": attempt.currency,
        "created": 0,
        **over,
    }


@pytest.fixture
def attempt(make_order: Any, now: datetime) -> PaymentAttempt:
    return do_start_attempt(make_order(), "sandbox", now=now)


def test_signed_success_fulfils_and_a_replay_is_a_no_op(
    client: Client, attempt: PaymentAttempt, now: datetime, ledger_ok: Any
) -> None:
    # given a valid signed success event
    body = event(attempt)
    # when it is delivered twice
    first = signed_post(client, body, at=now)
    second = signed_post(client, body, at=now + timedelta(seconds=30))
    # then the order is fulfilled once and the replay is recognised
    assert first.json() == {"received": True, "outcome": "fulfilled"}
    assert second.json() == {"received": True, "outcome": "duplicate"}
    attempt.refresh_from_db()
    assert attempt.status == AttemptStatus.SUCCEEDED
    assert attempt.order.status == OrderStatus.FULFILLED
    stored = ProviderEvent.objects.get()
    assert stored.processed_at is not None and len(stored.payload_sha256) == 64
    ledger_ok()


def test_failure_after_success_never_undoes_it(
    client: Client, attempt: PaymentAttempt, now: datetime, ledger_ok: Any
) -> None:
    # given a fulfilled payment
    signed_post(client, event(attempt), at=now)
    # when a failure for the same attempt arrives late
    late = signed_post(
        client, event(attempt, "payment.failed", failure_code="card_declined"), at=now
    )
    # then it is recorded and ignored
    assert late.json()["outcome"] == "late_failure_ignored"
    attempt.refresh_from_db()
    assert attempt.status == AttemptStatus.SUCCEEDED
    assert attempt.order.status == OrderStatus.FULFILLED
    ledger_ok()


@pytest.mark.parametrize(
    "over", [{"amount": 4999}, {"currency": "USD"}], ids=["amount", "currency"]
)
def test_amount_or_currency_mismatch_is_recorded_and_refused(
    client: Client, attempt: PaymentAttempt, now: datetime, over: dict[str, Any], ledger_ok: Any
) -> None:
    # when the provider reports a payment that differs from the order
    response = signed_post(client, event(attempt, **over), at=now)
    # then nothing is paid or fulfilled; the attempt and the audit log keep the facts
    assert response.json()["outcome"] == "amount_mismatch"
    attempt.refresh_from_db()
    assert (attempt.status, attempt.failure_code) == (AttemptStatus.FAILED, "amount_mismatch")
    assert attempt.order.status == OrderStatus.PENDING_PAYMENT
    assert attempt.order.paid_at is None
    assert AuditEntry.objects.filter(action="payment.amount_mismatch").count() == 1
    ledger_ok()


@pytest.mark.parametrize(
    ("how", "status"),
    [("forged", 401), ("stale", 401), ("future", 401), ("no header", 401), ("garbage", 400)],
)
def test_bad_webhooks_are_rejected_with_a_problem_document(
    client: Client, attempt: PaymentAttempt, now: datetime, how: str, status: int
) -> None:
    # given a webhook that must not be trusted
    body = event(attempt)
    if how == "forged":
        response = signed_post(client, body, at=now, secret="not-the-secret")
    elif how == "stale":
        response = signed_post(client, body, at=now - timedelta(seconds=301))
    elif how == "future":
        response = signed_post(client, body, at=now + timedelta(seconds=301))
    elif how == "no header":
        response = client.post(URL, data=body, content_type="application/json")
    else:
        response = signed_post(client, b"{not json", at=now)
    # then it is refused, explained, and nothing is stored or paid
    assert response.status_code == status
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["status"] == status and response.json()["title"]
    assert not ProviderEvent.objects.exists()
    attempt.refresh_from_db()
    assert attempt.status == AttemptStatus.PENDING


def test_tampered_body_is_rejected(client: Client, attempt: PaymentAttempt, now: datetime) -> None:
    # given a signature over one body sent with another
    raw = json.dumps(event(attempt)).encode()
    t = int(now.timestamp())
    mac = hmac.new(webhook_secret().encode(), f"{t}.".encode() + raw, hashlib.sha256).hexdigest()
    tampered = raw.replace(b'"amount": 5000', b'"amount": 1')
    # when it is posted
    response = client.post(
        URL,
        data=tampered,
        content_type="application/json",
        headers={"Leb-Sandbox-Signature": f"t={t},v1={mac}"},
    )
    # then it is refused
    assert response.status_code == 401


def test_several_signatures_one_valid_is_accepted(
    client: Client, attempt: PaymentAttempt, now: datetime, ledger_ok: Any
) -> None:
    # when a signature header carries an old-secret signature next to the right one
    response = signed_post(client, event(attempt), at=now, extra="v1=" + "0" * 64 + ",")
    # then it is accepted
    assert response.json()["outcome"] == "fulfilled"
    ledger_ok()


def test_unknown_attempt_is_acknowledged_and_ignored(
    client: Client, attempt: PaymentAttempt, now: datetime
) -> None:
    body = {**event(attempt), "attempt": "11111111-1111-1111-1111-111111111111"}
    response = signed_post(client, body, at=now)
    assert response.json()["outcome"] == "unknown_attempt"


def test_unknown_provider_and_wrong_method(client: Client) -> None:
    assert (
        client.post("/webhooks/nope", data=b"{}", content_type="application/json").status_code
        == 404
    )
    assert client.get(URL).status_code == 405


def test_unexpected_error_is_a_503_and_stores_nothing(
    client: Client, attempt: PaymentAttempt, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given settling crashes
    def boom(*args: Any, **kwargs: Any) -> str:
        raise RuntimeError("database went away")

    monkeypatch.setattr("leb.payments.actions.settle", boom)
    # when the webhook arrives
    response = signed_post(client, event(attempt), at=now)
    # then the provider is told to try again and nothing was half-written
    assert response.status_code == 503
    assert response["Content-Type"] == "application/problem+json"
    assert not ProviderEvent.objects.exists()


def test_delivery_retries_with_backoff_then_gives_up(
    attempt: PaymentAttempt, now: datetime, caplog: pytest.LogCaptureFixture, settings: Any
) -> None:
    # given a merchant endpoint that keeps failing
    settings.PAYMENTS_WEBHOOK_MAX_ATTEMPTS = 3
    calls: list[str] = []

    def down(url: str, body: bytes, headers: dict[str, str]) -> int:
        calls.append(url)
        return 503

    body = json.dumps(event(attempt))
    with use_transport(down):
        # when the first delivery fails
        assert deliver_sandbox_webhook.call(body) == "retrying (status 503)"
        # then it is re-enqueued for later
        retry = DBTaskResult.objects.get(task_path="leb.payments.tasks.deliver_sandbox_webhook")
        assert retry.run_after == now + timedelta(seconds=30)
        assert retry.args_kwargs["args"] == [body, 2]
        assert deliver_sandbox_webhook.call(body, 2) == "retrying (status 503)"
        later = DBTaskResult.objects.order_by("-enqueued_at").first()
        assert later is not None and later.run_after == now + timedelta(seconds=60)
        # and the last attempt gives up loudly
        with caplog.at_level(logging.ERROR):
            assert deliver_sandbox_webhook.call(body, 3) == "gave up"
    assert len(calls) == 3 and calls[0].endswith("/webhooks/sandbox")
    assert "not delivered after 3 attempts" in caplog.text


def test_attempt_page_ids_are_not_guessable_by_reference(
    client: Client, attempt: PaymentAttempt
) -> None:
    # the hosted page of an unknown attempt is a 404, never a 500
    missing = "22222222-2222-2222-2222-222222222222"
    assert client.get(reverse("payments:sandbox_checkout", args=[missing])).status_code == 404
