from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from leb.common import clock
from leb.testing import topup

from .tasks import note_request_id


def scrape(client: Client, **headers: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


# --- who may scrape ---------------------------------------------------------------


@pytest.mark.django_db
def test_metrics_answer_a_direct_loopback_client(client: Client) -> None:
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="::1").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="::ffff:127.0.0.1").status_code == 200


@pytest.mark.parametrize(
    "meta",
    [
        {"REMOTE_ADDR": "203.0.113.9"},
        {"REMOTE_ADDR": "10.0.0.8"},
        {"REMOTE_ADDR": "not-an-address"},
        # Through a proxy on the same machine: public, whatever the address.
        {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "203.0.113.9"},
        {"REMOTE_ADDR": "127.0.0.1", "HTTP_FORWARDED": "for=203.0.113.9"},
        {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_REAL_IP": "203.0.113.9"},
    ],
)
def test_metrics_refuse_everyone_else_by_default(client: Client, meta: dict[str, Any]) -> None:
    # when
    response = client.get("/metrics", **meta)

    # then
    assert response.status_code == 403
    assert b"leb_" not in response.content


@pytest.mark.django_db
def test_metrics_answer_the_bearer_token_from_anywhere(client: Client, settings: Any) -> None:
    # given
    settings.METRICS_TOKEN = "s3cret-scrape-token"
    settings.METRICS_ALLOWED_NETWORKS = []

    # when
    good = client.get(
        "/metrics",
        REMOTE_ADDR="203.0.113.9",
        HTTP_X_FORWARDED_FOR="198.51.100.1",
        HTTP_AUTHORIZATION="Bearer s3cret-scrape-token",
    )
    wrong = client.get(
        "/metrics", REMOTE_ADDR="127.0.0.1", HTTP_AUTHORIZATION="Bearer s3cret-scrape-tokeX"
    )
    none = client.get("/metrics", REMOTE_ADDR="127.0.0.1")

    # then
    assert good.status_code == 200
    assert wrong.status_code == 403
    assert none.status_code == 403  # the network list is empty: token only


@pytest.mark.django_db
def test_metrics_allow_a_configured_network(client: Client, settings: Any) -> None:
    # given
    settings.METRICS_ALLOWED_NETWORKS = ["10.20.0.0/16", "bogus"]

    # then
    assert client.get("/metrics", REMOTE_ADDR="10.20.3.4").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="10.21.3.4").status_code == 403


# --- what is counted -------------------------------------------------------------


@pytest.mark.django_db
def test_requests_are_counted_by_view_method_and_status(client: Client) -> None:
    # given
    before = scrape(client)

    # when
    client.get("/help/")
    client.get("/help/")
    client.get("/no-such-page/")
    after = scrape(client)

    # then
    help_view = {"view": "portal:help", "method": "GET", "status": "200"}
    assert (
        value(after, "leb_http_requests_total", **help_view)
        - value(before, "leb_http_requests_total", **help_view)
        == 2
    )
    unmatched = {"view": "unmatched", "method": "GET", "status": "404"}
    assert (
        value(after, "leb_http_requests_total", **unmatched)
        - value(before, "leb_http_requests_total", **unmatched)
        == 1
    )
    latency = {"view": "portal:help", "method": "GET"}
    assert (
        value(after, "leb_http_request_duration_seconds_count", **latency)
        - value(before, "leb_http_request_duration_seconds_count", **latency)
        == 2
    )
    # Raw paths never become labels.
    assert not [key for key in after if ("view", "/no-such-page/") in key[1]]


@pytest.mark.django_db
def test_payment_webhooks_are_counted_by_provider_and_outcome(client: Client) -> None:
    # given
    before = scrape(client)

    # when
    client.post("/webhooks/sandbox", data=b"{}", content_type="application/json")
    client.post("/webhooks/no-such-provider", data=b"{}", content_type="application/json")
    after = scrape(client)

    # then
    rejected = [
        key
        for key, n in after.items()
        if key[0] == "leb_payment_webhooks_total"
        and ("provider", "sandbox") in key[1]
        and n - before.get(key, 0.0) == 1
    ]
    assert len(rejected) == 1
    assert dict(rejected[0][1])["outcome"].startswith("http_4")
    unknown = {"provider": "unknown", "outcome": "http_404"}
    assert (
        value(after, "leb_payment_webhooks_total", **unknown)
        - value(before, "leb_payment_webhooks_total", **unknown)
        == 1
    )


@pytest.mark.django_db
def test_database_metrics_read_topups_queue_and_sweep_lag(
    client: Client, make_line: Any, hkd_plan: Any, now: datetime
) -> None:
    # given: two fulfilled web top-ups, one by phone, a waiting task, an overdue line
    line = make_line()
    topup(line, hkd_plan, now=now, channel="web")
    topup(line, hkd_plan, now=now, channel="web")
    topup(line, hkd_plan, now=now, channel="ivr")
    note_request_id.enqueue("waiting")
    overdue = make_line()
    type(overdue).objects.filter(pk=overdue.pk).update(
        next_transition_at=now - timedelta(minutes=5)
    )

    # when
    with clock.frozen(now):
        samples = scrape(client)

    # then
    assert value(samples, "leb_metrics_database_up") == 1
    assert value(samples, "leb_topups_total", channel="web", result="fulfilled") == 2
    assert value(samples, "leb_topups_total", channel="ivr", result="fulfilled") == 1
    assert value(samples, "leb_topups_total", channel="web", result="failed") == 0
    assert value(samples, "leb_task_queue_depth", queue="default") >= 1
    assert value(samples, "leb_task_queue_oldest_age_seconds", queue="default") >= 0
    assert value(samples, "leb_sweep_lag_seconds") >= 300


@pytest.mark.django_db
def test_database_metrics_on_an_empty_database(client: Client) -> None:
    # when
    samples = scrape(client)

    # then
    assert value(samples, "leb_task_queue_depth", queue="default") == 0
    assert value(samples, "leb_task_queue_oldest_age_seconds", queue="default") == 0
    assert value(samples, "leb_sweep_lag_seconds") == 0


@pytest.mark.django_db
def test_reminders_are_counted_by_kind_and_outcome(
    client: Client, make_line: Any, now: datetime
) -> None:
    # given
    from leb.reminders.models import ReminderKind, ReminderOutcome, SentReminder

    line = make_line()
    for offset in (30, 7):
        SentReminder.objects.create(
            line=line,
            kind=ReminderKind.EXPIRY,
            offset_days=offset,
            period=now + timedelta(days=40),
            outcome=ReminderOutcome.SENT,
            due_at=now,
            deliver_by=now + timedelta(days=1),
            created_at=now,
        )

    # when
    samples = scrape(client)

    # then
    assert value(samples, "leb_reminders_total", kind="expiry_reminder", outcome="sent") == 2


def test_metrics_say_so_when_the_database_is_out_of_reach(client: Client) -> None:
    # given: no django_db mark, so the database metrics cannot be read
    # when
    response = client.get("/metrics")

    # then: the process metrics still answer
    assert response.status_code == 200
    assert b"leb_metrics_database_up 0.0" in response.content


@pytest.mark.django_db
def test_a_verified_webhook_is_counted_by_its_outcome(client: Client, now: datetime) -> None:
    # given: a correctly signed sandbox event for a payment leb does not know
    import hashlib
    import hmac
    import json
    import uuid

    from leb.payments.providers.sandbox import webhook_secret

    body = json.dumps(
        {
            "id": f"evt_{uuid.uuid4().hex}",
            "type": "payment.succeeded",
            "attempt": str(uuid.uuid4()),
            "amount": 5000,
            "currency": "HKD",
            "created": 0,
        }
    ).encode()
    stamp = int(now.timestamp())
    mac = hmac.new(webhook_secret().encode(), f"{stamp}.".encode() + body, hashlib.sha256)
    headers = {"Leb-Sandbox-Signature": f"t={stamp},v1={mac.hexdigest()}"}
    before = scrape(client)

    # when: delivered twice, as providers do
    with clock.frozen(now):
        first = client.post(
            "/webhooks/sandbox", data=body, content_type="application/json", headers=headers
        )
        again = client.post(
            "/webhooks/sandbox", data=body, content_type="application/json", headers=headers
        )
    after = scrape(client)

    # then
    assert first.json()["outcome"] == "unknown_attempt"
    assert again.json()["outcome"] == "duplicate"
    for outcome in ("unknown_attempt", "duplicate"):
        labels = {"provider": "sandbox", "outcome": outcome}
        assert (
            value(after, "leb_payment_webhooks_total", **labels)
            - value(before, "leb_payment_webhooks_total", **labels)
            == 1
        )
