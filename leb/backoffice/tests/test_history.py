"""A line's history in plain words: every kind of line event has a sentence,
what subscribers wrote is escaped, and the story page tells events, orders,
payments, messages and tickets in time order to those allowed to see them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from leb.backoffice.history import EVENT_SENTENCES, actor_label, event_sentence
from leb.backoffice.roles import FINANCE, SUPPORT
from leb.lines.actions import do_set_line_owner, sweep_lines
from leb.lines.models import Line, LineEvent, LineEventKind, LineStatus
from leb.notifications.models import Notification
from leb.payments.models import PaymentAttempt
from leb.support.actions import do_open_ticket
from leb.testing import topup
from leb.topups.actions import do_refund_order

pytestmark = pytest.mark.django_db

SCRIPT = "<script>alert(1)</script>"

# What each kind's data holds when the actions write it.
SAMPLE_DATA: dict[str, dict[str, Any]] = {
    LineEventKind.CREATED: {},
    LineEventKind.ACTIVATED: {"msisdn": "+85291234567"},
    LineEventKind.TOPPED_UP: {
        "order": "0b5b1a2e-8f0e-4f55-9d11-0d3c2b1a0f00",
        "credit": 5000,
        "days": 180,
        "days_added": 180,
        "capped": False,
        "restore_fee": 0,
    },
    LineEventKind.STATUS_CHANGED: {},
    LineEventKind.BALANCE_FORFEITED: {"amount": 1200, "currency": "HKD"},
    LineEventKind.NUMBER_QUARANTINED: {
        "msisdn": "+85291234567",
        "until": "2026-09-01T00:00:00+00:00",
    },
    LineEventKind.REFUNDED: {
        "order": "0b5b1a2e-8f0e-4f55-9d11-0d3c2b1a0f00",
        "reason": "double charge",
        "days_revoked": 180,
    },
    LineEventKind.OWNER_CHANGED: {"owner": "someone@example.com"},
    LineEventKind.REAL_NAME_REGISTERED: {"document_type": "hkid", "document_last4": "567A"},
}


def _event(line: Line, kind: str, data: dict[str, Any], now: datetime, **fields: Any) -> LineEvent:
    return LineEvent(
        line=line, kind=kind, happened_at=now, recorded_at=now, valid_until=now, data=data, **fields
    )


def test_every_event_kind_in_the_code_has_a_sentence(
    make_line: Callable[..., Any], now: datetime
) -> None:
    # given one event of each kind the model knows
    line = make_line()
    assert set(EVENT_SENTENCES) == set(LineEventKind.values)
    for kind in LineEventKind.values:
        assert kind in SAMPLE_DATA, f"no sample data for {kind}"
        event = _event(line, kind, SAMPLE_DATA[kind], now, from_status="active", to_status="grace")

        # when it is told
        text = str(event_sentence(event))

        # then it is a sentence, not the raw data
        assert text and "(no description)" not in text, kind
        assert "{" not in text and "'" not in text.replace("plan's", ""), (kind, text)


def test_the_sentences_say_what_happened(make_line: Callable[..., Any], now: datetime) -> None:
    line = make_line()
    told = {
        kind: str(event_sentence(_event(line, kind, SAMPLE_DATA[kind], now, to_status="suspended")))
        for kind in LineEventKind.values
    }
    assert "Suspended after the grace period" in told[LineEventKind.STATUS_CHANGED]
    assert "Number +852 9123 4567 released to quarantine" in told[LineEventKind.NUMBER_QUARANTINED]
    assert "HKD\xa012.00 forfeited" in told[LineEventKind.BALANCE_FORFEITED]
    assert "Topped up with HKD\xa050.00 of credit" in told[LineEventKind.TOPPED_UP]
    assert "Reason: double charge" in told[LineEventKind.REFUNDED]
    assert "Hong Kong identity card ending in 567A" in told[LineEventKind.REAL_NAME_REGISTERED]


def test_payloads_are_escaped(make_line: Callable[..., Any], now: datetime) -> None:
    # given events whose data carries markup in every text it holds
    line = make_line()
    for kind in LineEventKind.values:
        data = {
            key: SCRIPT if isinstance(value, str) else value
            for key, value in SAMPLE_DATA[kind].items()
        }
        data.setdefault("note", SCRIPT)
        event = _event(
            line, kind, data, now, from_status=SCRIPT, to_status=SCRIPT, actor=f"staff:{SCRIPT}"
        )

        # when told
        text = str(event_sentence(event))

        # then no markup gets through
        assert "<script" not in text, (kind, text)


def test_actors_in_words() -> None:
    assert actor_label("staff:alice") == "staff member alice"
    assert actor_label("sweep") == "system job: lifecycle sweep"
    assert actor_label("user:7") == "subscriber (account #7)"
    assert actor_label("api:user:7") == "subscriber (account #7)"
    assert actor_label("agent:mk:member:bob") == "agent mk (member bob)"
    assert actor_label("order:auto") == "system job: auto-keep"
    assert actor_label("order:web") == "subscriber"
    assert actor_label("") == "system"


@pytest.fixture
def story_line(
    make_line: Callable[..., Any], hkd_plan: Any, now: datetime, django_user_model: Any
) -> Line:
    """A line topped up on the web, refunded, lapsed into grace, with a
    failed payment, a reminder message and a ticket whose subject holds markup."""
    line = make_line()
    first = topup(line, hkd_plan, now=now + timedelta(days=1))
    second = topup(line, hkd_plan, now=now + timedelta(days=2), channel="ivr")
    do_refund_order(
        second, reason=f"asked twice {SCRIPT}", actor="staff:alice", now=now + timedelta(days=3)
    )
    PaymentAttempt.objects.create(
        order=first,
        provider="stripe",
        amount=5000,
        currency="HKD",
        status="failed",
        failure_code="card_declined",
        failure_message=SCRIPT,
        created_at=now + timedelta(hours=20),
        updated_at=now + timedelta(hours=21),
    )
    Notification.objects.create(
        recipient=f"line:{line.pk}",
        line=line,
        channel="sms",
        language="en",
        time_zone="Asia/Hong_Kong",
        kind="expiry_reminder",
        dedupe_key="r1",
        status="sent",
        created_at=now + timedelta(days=150),
        sent_at=now + timedelta(days=150),
    )
    do_open_ticket(
        user=None,
        contact_email="guest@example.com",
        subject=f"Top-up missing {SCRIPT}",
        category="topup",
        body="Where is it?",
        line=line,
        now=now + timedelta(days=4),
    )
    owner = django_user_model.objects.create_user("subscriber-1", password="x-unused-9")
    do_set_line_owner(line, owner, actor=f"user:{owner.pk}", now=now + timedelta(days=5))
    line.refresh_from_db()
    assert line.valid_until is not None
    sweep_lines(now=line.valid_until + timedelta(days=1))
    line.refresh_from_db()
    assert line.status == LineStatus.GRACE
    return line


def story_url(line: Line) -> str:
    return reverse("admin:lines_line_story", args=[line.pk])


def test_the_story_tells_everything_in_time_order(admin_client: Client, story_line: Line) -> None:
    # when a superuser opens the line's story
    response = admin_client.get(story_url(story_line))

    # then every kind of record is told in words, oldest first
    assert response.status_code == 200
    page = response.content.decode()
    order = story_line.orders.order_by("pk").first()
    assert order is not None
    expected_in_order = [
        "Line created in stock",
        "Activated with number",
        "Payment of HKD\xa050.00 by Card for",
        "Topped up HKD\xa050.00 by Test payment (sandbox), valid until",
        "Top-up refunded",
        "Support ticket",
        "Bound to the account subscriber-1",
        "“Validity reminder” sent by SMS",
        "Validity ended: the line can only receive calls and texts",
    ]
    table = page[page.index('class="leb-story-table"') :]
    positions = [table.find(text) for text in expected_in_order]
    assert all(p > 0 for p in positions), list(zip(expected_in_order, positions, strict=True))
    assert positions == sorted(positions)
    # with links to the order, its receipt and the ticket
    order_url = reverse("admin:topups_topuporder_change", args=[order.pk])
    assert f'<a href="{order_url}">order #{order.pk}</a>' in page
    assert f'<a href="{order_url}">receipt {order.receipt_number}</a>' in page
    ticket = story_line.support_tickets.get()
    assert reverse("admin:support_ticket_change", args=[ticket.pk]) in page
    # who and through which channel
    assert "staff member alice" in page and "system job: lifecycle sweep" in page
    assert "Phone (IVR)" in page
    # and what subscribers and providers wrote is escaped
    assert SCRIPT not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_the_change_page_tells_the_latest_events_and_links_the_story(
    admin_client: Client, story_line: Line
) -> None:
    page = admin_client.get(
        reverse("admin:lines_line_change", args=[story_line.pk])
    ).content.decode()
    assert "Topped up HKD\xa050.00 by Test payment (sandbox)" in page
    assert story_url(story_line) in page
    assert '"credit"' not in page  # no raw JSON
    assert SCRIPT not in page


def staff(django_user_model: Any, role: str | None) -> Client:
    user = django_user_model.objects.create_user(
        f"staff-{role}", password="x-unused-9", is_staff=True
    )
    if role:
        user.groups.add(Group.objects.get(name=role))
    client = Client()
    client.force_login(user)
    return client


def test_each_role_sees_the_parts_it_may(django_user_model: Any, story_line: Line) -> None:
    support = staff(django_user_model, SUPPORT).get(story_url(story_line)).content.decode()
    finance = staff(django_user_model, FINANCE).get(story_url(story_line)).content.decode()
    # support answers tickets, finance does not see them
    assert "Support ticket" in support
    assert "Support ticket" not in finance
    assert "Topped up HKD" in finance


def test_the_story_is_refused_to_those_who_may_not_see_lines(
    django_user_model: Any, story_line: Line, client: Client
) -> None:
    assert staff(django_user_model, None).get(story_url(story_line)).status_code == 403
    # not staff at all: the sign-in page
    response = client.get(story_url(story_line))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_a_missing_or_malformed_line_is_a_404(admin_client: Client, db: None) -> None:
    assert admin_client.get("/ops/lines/line/999999/story/").status_code == 404
    assert admin_client.get("/ops/lines/line/not-a-number/story/").status_code == 404


def test_the_story_is_told_in_chinese(admin_client: Client, story_line: Line) -> None:
    page = admin_client.get(
        story_url(story_line), headers={"accept-language": "zh-hans"}
    ).content.decode()
    assert 'lang="zh-hans"' in page
    assert "Activated with number" not in page
    assert "已激活" in page and "生命周期巡检" in page


def test_the_story_has_a_query_budget(
    admin_client: Client, story_line: Line, hkd_plan: Any
) -> None:
    admin_client.get(story_url(story_line))
    with CaptureQueriesContext(connection) as short:
        admin_client.get(story_url(story_line))
    # ten more top-ups: more events, orders and messages, the same queries
    lapsed = story_line.valid_until
    assert lapsed is not None
    for i in range(10):
        topup(story_line, hkd_plan, now=lapsed + timedelta(days=2 + i))
    with CaptureQueriesContext(connection) as long:
        admin_client.get(story_url(story_line))
    assert len(short.captured_queries) == len(long.captured_queries) <= 16
