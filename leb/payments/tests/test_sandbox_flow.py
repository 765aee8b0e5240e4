"""The sandbox end to end: start, hosted checkout, return page, webhook."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from leb.ledger.queries import balance_by_code
from leb.lines.models import LineEvent
from leb.payments.models import AttemptStatus, PaymentAttempt, ProviderEvent
from leb.topups.models import OrderStatus, TopUpOrder

from .helpers import deliver_pending_webhooks, pending_webhooks

pytestmark = pytest.mark.django_db

GOOD = {"number": "4242 4242 4242 4242", "expiry": "12/30", "cvc": "123", "name": "Chan Tai Man"}


def start(client: Client, order: Any, provider: str = "sandbox") -> PaymentAttempt:
    response = client.post(
        reverse("payments:start", args=[order.public_id]) + f"?provider={provider}"
    )
    assert response.status_code == 302, response.content
    return PaymentAttempt.objects.get(order=order, checkout_url=response["Location"])


def pay(client: Client, attempt: PaymentAttempt, **card: str) -> Any:
    return client.post(
        reverse("payments:sandbox_checkout", args=[attempt.public_id]), {**GOOD, **card}
    )


def test_start_creates_an_attempt_priced_from_the_order(client: Client, make_order: Any) -> None:
    # given an unpaid order
    order = make_order()
    # when the payer starts a sandbox payment
    response = client.post(reverse("payments:start", args=[order.public_id]) + "?provider=sandbox")
    # then they are sent to the hosted checkout of a new attempt for the order's price
    attempt = PaymentAttempt.objects.get(order=order)
    assert response.status_code == 302
    assert response["Location"] == f"/pay/sandbox/{attempt.public_id}/"
    assert (attempt.amount, attempt.currency, attempt.status) == (5000, "HKD", "pending")
    assert client.session["payments_attempts"] == [str(attempt.public_id)]
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert "HK$50.00" in page.content.decode()


def test_successful_card_fulfils_once_whichever_path_arrives_first(
    client: Client, make_order: Any, transport: Any, now: datetime, ledger_ok: Any
) -> None:
    # given a started payment
    order = make_order()
    attempt = start(client, order)
    # when the test card succeeds
    response = pay(client, attempt)
    # then the browser goes back to the return URL and a webhook is queued
    assert response.status_code == 302
    assert response["Location"].endswith(f"/pay/return/{attempt.public_id}/")
    assert len(pending_webhooks()) == 1
    # when the return page is shown before the webhook arrives
    page = client.get(reverse("payments:return", args=[attempt.public_id]))
    # then it shows the top-up result from the order
    order.refresh_from_db()
    assert order.status == OrderStatus.FULFILLED
    html = page.content.decode()
    assert page.status_code == 200 and 'data-state="success"' in html
    assert order.receipt_number in html
    # a guest sees the new validity but never the balance
    assert "Balance" not in html
    # when the webhook arrives afterwards, it changes nothing
    assert deliver_pending_webhooks() == ["delivered"]
    assert transport.responses[0].json()["outcome"] == "duplicate"
    assert balance_by_code(f"wallet:line:{order.line_id}") == 5000
    assert LineEvent.objects.filter(line=order.line, kind="topped_up").count() == 1
    ledger_ok()


def test_webhook_first_then_return_page(
    client: Client, make_order: Any, transport: Any, ledger_ok: Any
) -> None:
    # given a successful card payment whose webhook is delivered first
    order = make_order()
    attempt = start(client, order)
    pay(client, attempt)
    deliver_pending_webhooks()
    # then the order is fulfilled by the webhook
    assert transport.responses[0].json()["outcome"] == "fulfilled"
    assert ProviderEvent.objects.get().outcome == "fulfilled"
    # and the return page just shows it
    page = client.get(reverse("payments:return", args=[attempt.public_id]))
    assert 'data-state="success"' in page.content.decode()
    assert TopUpOrder.objects.get(pk=order.pk).receipt_number == "2026-0000001"
    assert balance_by_code(f"wallet:line:{order.line_id}") == 5000
    ledger_ok()


@pytest.mark.parametrize(
    ("number", "code", "message"),
    [
        ("4000 0000 0000 0002", "card_declined", "Your card was declined."),
        ("4000 0000 0000 9995", "insufficient_funds", "insufficient funds"),
        ("5555 5555 5555 4444", "card_not_supported", "not supported in the sandbox"),
    ],
)
def test_declined_cards_fail_the_order_with_a_reason(
    client: Client,
    make_order: Any,
    transport: Any,
    number: str,
    code: str,
    message: str,
    ledger_ok: Any,
) -> None:
    # given a started payment
    order = make_order()
    attempt = start(client, order)
    # when the card is declined
    pay(client, attempt, number=number)
    page = client.get(reverse("payments:return", args=[attempt.public_id]))
    # then the payer sees why, with a retry button, and the order failed
    html = page.content.decode()
    assert 'data-state="failure"' in html and message in html
    assert reverse("payments:retry", args=[attempt.public_id]) in html
    attempt.refresh_from_db()
    order.refresh_from_db()
    assert (attempt.status, attempt.failure_code) == (AttemptStatus.FAILED, code)
    assert order.status == OrderStatus.FAILED and order.failure_reason
    # and the failure webhook arriving later is a no-op
    deliver_pending_webhooks()
    assert transport.responses[0].json()["outcome"] == "duplicate"
    ledger_ok()


@pytest.mark.parametrize(
    ("card", "error"),
    [
        ({"number": "4242 4242 4242 4241"}, "Enter a valid card number."),
        ({"number": "abcd"}, "Enter a valid card number."),
        ({"expiry": "01/20"}, "This card has expired."),
        ({"expiry": "13/30"}, "Enter the expiry date as MM/YY."),
        ({"cvc": "12"}, "Enter the 3 or 4 digit security code."),
        ({"name": ""}, "This field is required."),
    ],
)
def test_bad_card_input_gives_form_errors_and_never_echoes_the_number(
    client: Client, make_order: Any, card: dict[str, str], error: str
) -> None:
    # given a started payment
    attempt = start(client, make_order())
    # when the card form is filled in wrongly
    response = pay(client, attempt, **card)
    # then the form shows the error, nothing is decided and the number is not echoed
    html = response.content.decode()
    assert response.status_code == 400
    assert error in html
    assert 'value="4242' not in html and 'value="4000' not in html and 'value="123"' not in html
    attempt.refresh_from_db()
    assert "gateway" not in attempt.provider_data
    assert not pending_webhooks()


def test_card_number_is_not_stored_or_logged(
    client: Client, make_order: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # given a started payment
    attempt = start(client, make_order())
    # when paying
    pay(client, attempt, number="4000 0000 0000 0002")
    # then the number appears nowhere: not on the attempt, the task, or the logs
    attempt.refresh_from_db()
    stored = str(attempt.__dict__) + str([row.args_kwargs for row in pending_webhooks()])
    for fragment in ("4000000000000002", "4000 0000 0000 0002"):
        assert fragment not in stored
        assert fragment not in caplog.text


@pytest.mark.parametrize(("choice", "state"), [("complete", "success"), ("fail", "failure")])
def test_three_d_secure_challenge(
    client: Client, make_order: Any, choice: str, state: str, ledger_ok: Any
) -> None:
    # given a card that asks for a security check
    attempt = start(client, make_order())
    response = pay(client, attempt, number="4000 0025 0000 3155")
    challenge = reverse("payments:sandbox_challenge", args=[attempt.public_id])
    assert response["Location"] == challenge
    assert client.get(challenge).status_code == 200
    # when the payer completes or fails it
    back = client.post(challenge, {"result": choice})
    page = client.get(back["Location"])
    # then the result follows
    assert f'data-state="{state}"' in page.content.decode()
    if state == "failure":
        assert "3-D Secure" in page.content.decode()
    ledger_ok()


def test_paypal_approve_and_cancel(client: Client, make_order: Any, ledger_ok: Any) -> None:
    # given two started payments
    approved = start(client, make_order())
    cancelled = start(client, make_order())
    # when one is approved and one cancelled on the PayPal page
    paypal = reverse("payments:sandbox_paypal", args=[approved.public_id])
    assert "PayPal" in client.get(paypal).content.decode()
    ok = client.post(paypal, {"result": "approve"})
    no = client.post(
        reverse("payments:sandbox_paypal", args=[cancelled.public_id]), {"result": "cancel"}
    )
    # then the first is paid, the second is cancelled and its order failed
    assert 'data-state="success"' in client.get(ok["Location"]).content.decode()
    assert no["Location"].endswith("?cancelled=1")
    page = client.get(no["Location"]).content.decode()
    assert 'data-state="failure"' in page and "The payment was cancelled." in page
    cancelled.refresh_from_db()
    assert cancelled.status == AttemptStatus.CANCELLED
    assert cancelled.order.status == OrderStatus.FAILED
    ledger_ok()


def test_paying_again_on_a_decided_attempt_goes_back(client: Client, make_order: Any) -> None:
    # given an attempt already paid at the gateway
    attempt = start(client, make_order())
    pay(client, attempt)
    # when the payer submits the form again (back button)
    again = pay(client, attempt)
    # then nothing new happens
    assert again.status_code == 302
    assert len(pending_webhooks()) == 1


def test_retry_after_decline_starts_a_new_order(
    client: Client, make_order: Any, ledger_ok: Any
) -> None:
    # given a declined payment (its order failed)
    order = make_order()
    attempt = start(client, order)
    pay(client, attempt, number="4000 0000 0000 0002")
    client.get(reverse("payments:return", args=[attempt.public_id]))
    # when the payer retries (twice: a double click)
    retry = reverse("payments:retry", args=[attempt.public_id])
    first = client.post(retry)
    second = client.post(retry)
    # then one new order for the same top-up is created, with a new attempt each time
    new_orders = TopUpOrder.objects.exclude(pk=order.pk)
    assert new_orders.count() == 1
    new = new_orders.get()
    assert (new.line_id, new.plan_id, new.price) == (order.line_id, order.plan_id, order.price)
    assert first.status_code == second.status_code == 302
    assert PaymentAttempt.objects.filter(order=new).count() == 2
    # and paying it works
    latest = PaymentAttempt.objects.filter(order=new).latest("pk")
    pay(client, latest)
    page = client.get(reverse("payments:return", args=[latest.public_id]))
    assert 'data-state="success"' in page.content.decode()
    ledger_ok()


def test_pending_page_refreshes_and_status_poll_reports(client: Client, make_order: Any) -> None:
    # given a started payment not yet decided
    attempt = start(client, make_order())
    # when the return page and the status endpoint are asked
    page = client.get(reverse("payments:return", args=[attempt.public_id]))
    status = client.get(reverse("payments:status", args=[attempt.public_id]))
    # then both say pending; the page refreshes itself
    html = page.content.decode()
    assert 'data-state="pending"' in html and page["Refresh"] == "5"
    assert reverse("payments:status", args=[attempt.public_id]) in html
    assert status.json() == {
        "attempt": str(attempt.public_id),
        "status": "pending",
        "order_status": "pending_payment",
        "state": "pending",
        "done": False,
    }
    # when the payment then succeeds
    pay(client, attempt)
    # then the poll reports it done
    assert client.get(reverse("payments:status", args=[attempt.public_id])).json()["done"] is True


def test_only_the_starting_session_or_the_customer_sees_an_attempt(
    client: Client, make_order: Any, django_user_model: Any
) -> None:
    # given a customer's order, paid from an anonymous browser's session... which is not allowed
    owner = django_user_model.objects.create_user("owner", password="x-pass-123456")
    outsider = django_user_model.objects.create_user("outsider", password="x-pass-123456")
    order = make_order(customer=owner)
    assert client.post(reverse("payments:start", args=[order.public_id])).status_code == 404
    # when the owner starts it
    owner_client = Client()
    owner_client.force_login(owner)
    attempt = start(owner_client, order)
    urls = [
        reverse("payments:return", args=[attempt.public_id]),
        reverse("payments:status", args=[attempt.public_id]),
    ]
    # then the owner (any session) sees it; outsiders and strangers get 404
    other_owner_session = Client()
    other_owner_session.force_login(owner)
    outsider_client = Client()
    outsider_client.force_login(outsider)
    for url in urls:
        assert other_owner_session.get(url).status_code == 200
        assert outsider_client.get(url).status_code == 404
        assert Client().get(url).status_code == 404
    assert Client().post(reverse("payments:retry", args=[attempt.public_id])).status_code == 404


def test_guest_attempt_is_a_capability_but_a_customers_is_private(
    client: Client, make_order: Any
) -> None:
    # given a guest's payment: its unguessable id is what a browser coming back
    # from the provider (or from an app using the API) holds
    attempt = start(client, make_order())
    url = reverse("payments:return", args=[attempt.public_id])
    assert client.get(url).status_code == 200
    assert Client().get(url).status_code == 200
    # given a customer's payment: only that customer's session sees it
    from django.contrib.auth import get_user_model

    owner = get_user_model().objects.create_user("attempt-owner", password="x-long-password-1")
    mine = Client()
    mine.force_login(owner)
    private = start(mine, make_order(customer=owner))
    private_url = reverse("payments:return", args=[private.public_id])
    assert mine.get(private_url).status_code == 200
    assert Client().get(private_url).status_code == 404


def test_start_refuses_clearly(client: Client, make_order: Any, now: datetime) -> None:
    # given orders in various states
    order = make_order()
    # unknown provider
    bad = client.post(reverse("payments:start", args=[order.public_id]) + "?provider=bitcoin")
    assert bad.status_code == 400
    assert "This payment method is not available." in bad.content.decode()
    # GET is not allowed
    assert client.get(reverse("payments:start", args=[order.public_id])).status_code == 405
    # an unknown order
    missing = "00000000-0000-0000-0000-000000000000"
    assert client.post(f"/pay/{missing}/start").status_code == 404
    # an order whose payment window closed
    TopUpOrder.objects.filter(pk=order.pk).update(expires_at=now - timedelta(minutes=1))
    closed = client.post(reverse("payments:start", args=[order.public_id]))
    assert closed.status_code == 409
    assert "can no longer be paid" in closed.content.decode()
    assert not PaymentAttempt.objects.exists()


def test_pages_are_translated(client: Client, make_order: Any) -> None:
    # given a started payment
    attempt = start(client, make_order())
    # when the hosted page is asked for in Chinese
    page = client.get(
        reverse("payments:sandbox_checkout", args=[attempt.public_id]),
        headers={"accept-language": "zh-hant"},
    )
    # then the page says so (the catalog may lag, the language tag may not)
    assert '<html lang="zh-hant">' in page.content.decode()


def test_the_lines_owner_sees_the_new_balance(
    client: Client, make_order: Any, transport: Any
) -> None:
    # given a signed-in owner paying for their own line
    from django.contrib.auth import get_user_model

    owner = get_user_model().objects.create_user("payer", password="x-long-password-1")
    client.force_login(owner)
    order = make_order(customer=owner)
    attempt = start(client, order)
    # when the card succeeds and the result page is shown
    pay(client, attempt)
    html = client.get(reverse("payments:return", args=[attempt.public_id])).content.decode()
    # then the owner sees the balance the top-up gave
    assert "Balance" in html and "HK$50.00" in html
