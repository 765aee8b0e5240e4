"""Callbacks to the agent's server on every final status of a top-up:
queued in the outbox with the status change, signed like leb's webhooks,
retried, deduplicated, refused for private addresses."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from leb.agents.actions import (
    do_confirm_agent_topup,
    do_create_agent_topup,
    do_create_api_key,
    do_reverse_agent_topup,
    expire_agent_topups,
)
from leb.agents.callbacks import KIND, callback_secret
from leb.agents.models import Agent
from leb.notifications.delivery import deliver_due_notifications
from leb.notifications.models import Notification, Reason, Status
from leb.testing import HookServer

pytestmark = pytest.mark.django_db


@pytest.fixture
def hooked_agent(
    make_agent: Callable[..., Agent], fund: Callable[[Agent, int], None], hook_server: HookServer
) -> Agent:
    made = make_agent(callback_url=hook_server.url)
    fund(made, 100_000)
    return made


def sell(agent: Agent, line: Any, plan: Any, external_id: str = "ext-1", **extra: Any) -> Any:
    return do_create_agent_topup(
        agent, external_id=external_id, msisdn=line.msisdn, plan_code=plan.code, **extra
    ).topup


def callbacks() -> list[Notification]:
    return list(Notification.objects.filter(kind=KIND).order_by("pk"))


def deliver(now: datetime) -> Any:
    """Deliver the callbacks only (the subscriber's SMS is not the subject here)."""
    return deliver_due_notifications(now, ids=[row.pk for row in callbacks()])


def test_a_completed_sale_is_posted_signed_with_the_agents_callback_secret(
    hooked_agent: Agent,
    hook_server: HookServer,
    make_line: Callable[..., Any],
    hkd_plan: Any,
    now: datetime,
) -> None:
    # given a completed sale
    line = make_line()
    topup = sell(hooked_agent, line, hkd_plan)

    # when the outbox is delivered
    result = deliver(now)

    # then the agent's server got the top-up, verifiable with the documented scheme
    assert result.sent == 1
    (request,) = hook_server.requests
    timestamp, _sep, mac = request.headers["Leb-Signature"].partition(",v1=")
    assert timestamp == f"t={int(now.timestamp())}"
    expected = hmac.new(
        callback_secret(hooked_agent.code).encode(),
        f"{int(now.timestamp())}.".encode() + request.body,
        hashlib.sha256,
    ).hexdigest()
    assert hmac.compare_digest(mac, expected)
    body = json.loads(request.body)
    assert body["event"] == "agent_topup.completed"
    assert (body["id"], body["external_id"], body["status"]) == (
        topup.public_id,
        "ext-1",
        "completed",
    )
    assert body["msisdn"] == line.msisdn
    assert body["wholesale_price"] == {"amount": 4500, "currency": "HKD", "formatted": "HK$45.00"}
    assert body["valid_until"] and body["completed_at"] and body["receipt_number"]
    assert request.headers["Leb-Event"] == KIND
    assert callbacks()[0].status == Status.SENT


def test_a_receiver_answering_500_is_retried_with_back_off(
    hooked_agent: Agent,
    hook_server: HookServer,
    make_line: Callable[..., Any],
    hkd_plan: Any,
    now: datetime,
) -> None:
    # given a receiver that fails twice
    hook_server.status.extend([500, 500])
    sell(hooked_agent, make_line(), hkd_plan)

    # when delivery runs at once, after 1 minute (too early for the 2nd retry) and later
    first = deliver(now)
    second = deliver(now + timedelta(minutes=1))
    too_early = deliver(now + timedelta(minutes=2))
    third = deliver(now + timedelta(minutes=3))

    # then it was retried 1 and 2 minutes after each failure, and the same body signed again
    assert (first.retried, second.retried, too_early.sent, third.sent) == (1, 1, 0, 1)
    (row,) = callbacks()
    assert (row.status, row.attempts) == (Status.SENT, 3)
    bodies = {r.body for r in hook_server.requests}
    assert len(hook_server.requests) == 3 and len(bodies) == 1


def test_no_callback_is_queued_without_a_callback_url(
    agent: Agent, make_line: Callable[..., Any], hkd_plan: Any
) -> None:
    # given an agent without a callback URL (the default fixture)
    assert agent.callback_url == ""

    # when it sells
    sell(agent, make_line(), hkd_plan)

    # then
    assert callbacks() == []


def test_every_final_status_is_called_back_once(
    hooked_agent: Agent,
    make_line: Callable[..., Any],
    hkd_plan: Any,
    approver: Any,
    now: datetime,
) -> None:
    # given a completed sale, later reversed (twice); an expired and a
    # confirmed two-step one; and a replay of the first request
    line = make_line()
    first = sell(hooked_agent, line, hkd_plan, "sale")
    sell(hooked_agent, line, hkd_plan, "sale")
    do_reverse_agent_topup(first, staff=approver, reason="sold by mistake", now=now)
    do_reverse_agent_topup(first, staff=approver, reason="twice", now=now)
    held = sell(hooked_agent, make_line(), hkd_plan, "held", mode="two_step")
    confirmed = sell(hooked_agent, make_line(), hkd_plan, "confirmed", mode="two_step")
    do_confirm_agent_topup(hooked_agent, confirmed.public_id, now=now)
    do_confirm_agent_topup(hooked_agent, confirmed.public_id, now=now)

    # when the two-step one is not confirmed in time
    expire_agent_topups(now + timedelta(hours=1))

    # then one callback per (top-up, final status), none for "created"
    keys = [row.dedupe_key for row in callbacks()]
    assert sorted(keys) == sorted(
        [
            f"agent-topup:{first.public_id}:completed",
            f"agent-topup:{first.public_id}:reversed",
            f"agent-topup:{confirmed.public_id}:completed",
            f"agent-topup:{held.public_id}:expired",
        ]
    )
    statuses = [row.context["status"] for row in callbacks()]
    assert sorted(statuses) == ["completed", "completed", "expired", "reversed"]


def test_a_refused_sale_is_called_back_as_failed_with_its_reason(
    make_agent: Callable[..., Agent],
    hook_server: HookServer,
    make_line: Callable[..., Any],
    hkd_plan: Any,
) -> None:
    # given an agent whose float is empty
    broke = make_agent(callback_url=hook_server.url)

    # when it sells
    topup = sell(broke, make_line(), hkd_plan)

    # then the failure is queued with its reason code
    (row,) = callbacks()
    assert row.dedupe_key == f"agent-topup:{topup.public_id}:failed"
    assert (row.context["status"], row.context["reason"]) == ("failed", "insufficient_float")
    assert row.context["message"]


def test_a_private_callback_url_is_refused_at_send_time(
    settings: Any,
    hooked_agent: Agent,
    hook_server: HookServer,
    make_line: Callable[..., Any],
    hkd_plan: Any,
    now: datetime,
) -> None:
    # given a callback queued while private addresses were allowed (tests only)
    sell(hooked_agent, make_line(), hkd_plan)

    # when the production rule applies at delivery
    settings.NOTIFICATIONS_WEBHOOK_ALLOW_PRIVATE = False
    settings.DEBUG = False
    result = deliver(now)

    # then nothing is posted and the refusal is final
    (row,) = callbacks()
    assert result.failed == 1
    assert (row.status, row.reason) == (Status.FAILED, Reason.DESTINATION_REFUSED)
    assert hook_server.requests == []


def test_the_callback_secret_is_derived_and_given_with_the_api_key(
    make_agent: Callable[..., Agent], now: datetime
) -> None:
    # given two agents
    one, other = make_agent(), make_agent()

    # when a key is created
    new = do_create_api_key(one, actor="staff:test", now=now)

    # then its callback secret comes with it, stable, per agent, never stored
    assert new.callback_secret == callback_secret(one.code)
    assert new.callback_secret.startswith("lcs_")
    assert callback_secret(one.code) != callback_secret(other.code)
    assert new.callback_secret not in json.dumps(list(Agent.objects.values()), default=str)
