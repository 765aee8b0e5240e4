"""A dispute from both sides, in a browser: the subscriber writes to
support about a top-up, support escalates the ticket to a dispute and
refunds part of it in the back office, and the subscriber reads each step
in their ticket, in their language."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from leb.backoffice.roles import SUPPORT
from leb.backoffice.tests.disputes import paid_order
from leb.common import clock
from leb.notifications.models import Notification
from leb.payments.models import Refund, RefundStatus
from leb.support.models import Dispute, DisputeStatus, Ticket

from .helpers import shot

pytestmark = pytest.mark.django_db(transaction=True)


def _sign_in(page: Any, live_server: Any, user: Any) -> None:
    client = Client()
    client.force_login(user, backend="leb.accounts.backends.EmailOrPhoneBackend")
    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )


@pytest.mark.parametrize("language", ["en", "zh-hant"])
def test_a_subscriber_sees_their_dispute_refunded_in_part(
    page_for: Any,
    live_server: Any,
    make_line: Any,
    hkd_plan: Any,
    owner: Any,
    django_user_model: Any,
    ledger_ok: Any,
    language: str,
) -> None:
    # given a subscriber with a HK$50 top-up paid by card, and support staff
    line = make_line(owner=owner, at=clock.now())
    order = paid_order(line, hkd_plan, clock.now())
    clerk = django_user_model.objects.create_user(
        f"support-{language}", password="x-unused-9", is_staff=True
    )
    clerk.groups.add(Group.objects.get(name=SUPPORT))
    base = live_server.url
    tag = f"dispute-{language}"

    # when the subscriber writes to support about that top-up
    subscriber = page_for(language)
    _sign_in(subscriber, live_server, owner)
    subscriber.goto(f"{base}/support/?category=payment")
    subscriber.fill("[name=subject]", "Charged for a top-up I did not want")
    subscriber.select_option("[name=line]", str(line.pk))
    subscriber.select_option("[name=order]", str(order.pk))
    subscriber.fill("[name=message]", "I only wanted HK$30 of it. Please give HK$20 back.")
    shot(subscriber, f"{tag}-1-contact")
    subscriber.locator("main form button[type=submit]").click()
    subscriber.wait_for_load_state()
    ticket = Ticket.objects.get(user=owner)
    assert f"/support/tickets/{ticket.public_id}/" in subscriber.url
    shot(subscriber, f"{tag}-2-ticket")

    # when support opens the ticket in the back office and escalates it
    staff = page_for("en", width=1280)
    _sign_in(staff, live_server, clerk)
    staff.goto(f"{base}/ops/support/ticket/{ticket.pk}/change/")
    shot(staff, f"{tag}-3-staff-ticket")
    staff.get_by_role("link", name="Escalate to dispute").click()
    staff.wait_for_load_state()
    assert staff.locator("select[name=order] option").count() == 1
    staff.fill("[name=reason]", "Asks HK$20 back: bought more than wanted.")
    shot(staff, f"{tag}-4-escalate")
    staff.locator("input[type=submit]").click()
    staff.wait_for_load_state()
    dispute = Dispute.objects.get(ticket=ticket)
    assert f"/ops/support/dispute/{dispute.pk}/change/" in staff.url
    shot(staff, f"{tag}-5-dispute")

    # and refunds HK$20 of it
    staff.locator(".object-tools").get_by_role("link", name="Refund").click()
    staff.wait_for_load_state()
    staff.fill("[name=amount]", "20")
    shot(staff, f"{tag}-6-refund")
    staff.locator("input[type=submit]").click()
    staff.wait_for_load_state()
    assert "confirmed by the provider" in staff.inner_text(".messagelist")
    shot(staff, f"{tag}-7-refunded")
    refund = Refund.objects.get()
    assert (refund.amount, refund.status) == (2000, RefundStatus.CONFIRMED)
    dispute.refresh_from_db()
    assert dispute.status == DisputeStatus.REFUNDED

    # then the subscriber reads each step in their ticket
    subscriber.reload()
    kinds = subscriber.locator(".support-event").evaluate_all(
        "items => items.map(item => item.dataset.kind)"
    )
    assert kinds == ["escalated", "refund_requested", "refund_confirmed"]
    events = subscriber.inner_text(".support-thread")
    assert order.receipt_number in events and "HK$20.00" in events
    if language == "en":
        assert f"Escalated to a dispute about order #{order.receipt_number}" in events
        assert "Refund of HK$20.00 requested" in events
        assert "Refund of HK$20.00 confirmed by the card issuer" in events
    shot(subscriber, f"{tag}-8-subscriber-sees-refund")
    # and was sent each step, once, in the language they wrote in
    sent = Notification.objects.filter(kind__startswith="dispute_").order_by("pk")
    assert [(m.kind, m.destination, m.language) for m in sent] == [
        ("dispute_opened", owner.email, language),
        ("dispute_refund_confirmed", owner.email, language),
    ]
    ledger_ok()


def test_a_subscriber_sees_a_failed_refund_until_it_is_retried(
    page_for: Any,
    live_server: Any,
    make_line: Any,
    hkd_plan: Any,
    owner: Any,
    django_user_model: Any,
    settings: Any,
    ledger_ok: Any,
) -> None:
    from leb.support.actions import (
        do_escalate_ticket,
        do_open_ticket,
        do_refund_dispute,
        do_retry_dispute_refund,
    )

    # given a dispute whose HK$20 refund the gateway did not answer
    line = make_line(owner=owner, at=clock.now())
    order = paid_order(line, hkd_plan, clock.now())
    clerk = django_user_model.objects.create_user(
        "support-retry", password="x-unused-9", is_staff=True
    )
    clerk.groups.add(Group.objects.get(name=SUPPORT))
    clerk = django_user_model.objects.get(pk=clerk.pk)
    ticket = do_open_ticket(
        user=owner, subject="Refund please", category="payment", body="HK$20 back", line=line
    )
    dispute = do_escalate_ticket(ticket, order=order, reason="x", staff=clerk)
    settings.PAYMENTS_SANDBOX_REFUNDS = "unavailable"
    refund = do_refund_dispute(dispute, amount=2000, staff=clerk)
    assert refund.status == RefundStatus.FAILED

    # when the subscriber opens their ticket
    subscriber = page_for("en")
    _sign_in(subscriber, live_server, owner)
    subscriber.goto(f"{live_server.url}/support/tickets/{ticket.public_id}/")
    # then they read that it is being tried again
    failure = subscriber.locator(".support-event[data-kind=refund_failed]")
    assert failure.inner_text().count("We could not refund HK$20.00 yet; we are trying again.") == 1
    shot(subscriber, "dispute-refund-failed")

    # when support asks the provider again and it is confirmed
    settings.PAYMENTS_SANDBOX_REFUNDS = "instant"
    do_retry_dispute_refund(dispute, refund, staff=clerk)
    subscriber.reload()
    # then the failure is gone and the confirmation is there
    assert subscriber.locator(".support-event[data-kind=refund_failed]").count() == 0
    assert "Refund of HK$20.00 confirmed" in subscriber.inner_text(".support-thread")
    shot(subscriber, "dispute-refund-retried")
    ledger_ok()
