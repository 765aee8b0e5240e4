"""Thin views: the payer's pages, the sandbox's hosted pages and the webhook
endpoint. Every write goes through leb.payments.actions."""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

from django.core.exceptions import ValidationError
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    JsonResponse,
)
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from leb.catalog.quotes import Quote
from leb.common.formatting import format_money
from leb.ledger.queries import balance_of
from leb.receipts.labels import payment_method_label
from leb.receipts.queries import days_text, guest_path, order_label
from leb.topups.actions import do_create_order
from leb.topups.models import OrderStatus, TopUpOrder

from . import actions
from .forms import CardForm
from .models import AttemptStatus, PaymentAttempt, SandboxVaultedCard
from .providers import sandbox
from .providers.base import (
    CANCELLED,
    FAILED,
    SUCCEEDED,
    PaymentProviderError,
    WebhookError,
    default_provider_name,
    get_provider,
)

logger = logging.getLogger(__name__)
SESSION_KEY = "payments_attempts"
SESSION_LIMIT = 20


def _error(request: HttpRequest, message: str, status: int = 400) -> HttpResponse:
    return render(request, "payments/error.html", {"message": message}, status=status)


def _remember(request: HttpRequest, attempt: PaymentAttempt) -> None:
    known = [a for a in request.session.get(SESSION_KEY, []) if a != str(attempt.public_id)]
    request.session[SESSION_KEY] = [*known, str(attempt.public_id)][-SESSION_LIMIT:]


def _owned_attempt(request: HttpRequest, attempt_id: UUID) -> PaymentAttempt:
    """The attempt, if this browser started it or it belongs to the signed-in
    customer; everyone else gets the same 404 as for an unknown id."""
    attempt = (
        PaymentAttempt.objects.select_related("order", "order__line")
        .filter(public_id=attempt_id)
        .first()
    )
    if attempt is None:
        raise Http404
    if str(attempt.public_id) in request.session.get(SESSION_KEY, []):
        return attempt
    # A guest's attempt id is an unguessable capability, like its order id: a
    # payment started through the API comes back here in a browser with no
    # session. Guests never see a balance (see _result_context).
    if attempt.order.customer_id is None:
        return attempt
    user = request.user
    if user.is_authenticated and attempt.order.customer_id == user.pk:
        return attempt
    raise Http404


def _may_pay(request: HttpRequest, order: TopUpOrder) -> bool:
    # An order id is an unguessable capability; a customer's order is theirs alone.
    if order.customer_id is None:
        return True
    return bool(request.user.is_authenticated and order.customer_id == request.user.pk)


def _start(request: HttpRequest, order: TopUpOrder, provider: str) -> HttpResponse:
    try:
        attempt = actions.do_start_attempt(order, provider)
    except actions.PaymentError as exc:
        return _error(request, str(exc.message), status=409 if exc.code == "order_closed" else 400)
    _remember(request, attempt)
    return HttpResponseRedirect(attempt.checkout_url)


@require_POST
def start_payment(request: HttpRequest, order_id: UUID) -> HttpResponse:
    order = TopUpOrder.objects.filter(public_id=order_id).first()
    if order is None or not _may_pay(request, order):
        raise Http404
    provider = request.GET.get("provider") or request.POST.get("provider") or ""
    return _start(request, order, provider or default_provider_name())


@require_POST
def retry_payment(request: HttpRequest, attempt_id: UUID) -> HttpResponse:
    attempt = _owned_attempt(request, attempt_id)
    order = attempt.order
    if order.status in (OrderStatus.FULFILLED, OrderStatus.PAID):
        return HttpResponseRedirect(reverse("payments:return", args=[attempt.public_id]))
    if order.status != OrderStatus.PENDING_PAYMENT:
        # The failed order is closed: the same top-up again, priced now.
        frozen = Quote.from_dict(order.quote)
        try:
            order = do_create_order(
                line=order.line,
                channel=order.channel,
                plan=order.plan,
                amount=None if order.plan_id else frozen.list_price,
                promo_code=frozen.promotion_code,
                customer=order.customer,
                actor=order.actor,
                idempotency_key=f"payments:retry:{attempt.public_id}",
            )
        except ValidationError as exc:
            return _error(request, exc.messages[0], status=409)
    return _start(request, order, attempt.provider)


def _may_see_receipt_page(order: TopUpOrder, viewer: Any) -> bool:
    # receipts:detail shows the order to the paying customer and the line's owner.
    if viewer is None or not viewer.is_authenticated:
        return False
    return viewer.pk in (order.customer_id, order.line.owner_id)


def _result_context(attempt: PaymentAttempt, viewer: Any = None) -> dict[str, Any]:
    order = attempt.order
    context: dict[str, Any] = {
        "attempt": attempt,
        "order": order,
        "amount": format_money(attempt.amount, attempt.currency),
        "state": "pending",
        "signed_in": bool(viewer is not None and viewer.is_authenticated),
    }
    if order.status == OrderStatus.FULFILLED and attempt.status == AttemptStatus.SUCCEEDED:
        line = order.line
        context["state"] = "success"
        context["valid_until"] = order.valid_until_after
        context["plan"] = order_label(order)
        context["days"] = days_text(order)
        context["method"] = payment_method_label(order)
        if _may_see_receipt_page(order, viewer):
            context["receipt_url"] = reverse("receipts:detail", args=[order.receipt_number])
            context["receipt_pdf_url"] = reverse("receipts:pdf", args=[order.receipt_number])
        else:
            # Whoever may see this page may see the receipt: a signed link,
            # without the balance and the owner's details.
            context["receipt_url"] = guest_path(order)
            context["receipt_pdf_url"] = guest_path(order, pdf=True)
        # The balance is private: only the line's signed-in owner sees it.
        if viewer is not None and viewer.is_authenticated and line.owner_id == viewer.pk:
            context["owner_view"] = True
            context["balance"] = format_money(
                balance_of(line.wallet) if line.wallet_id else 0,  # type: ignore[arg-type]
                line.currency,
            )
    elif attempt.status == AttemptStatus.SUCCEEDED and order.status in (
        OrderStatus.FAILED,
        OrderStatus.REFUNDED,
    ):
        context["state"] = "refund"
    elif attempt.status in (AttemptStatus.FAILED, AttemptStatus.CANCELLED) or (
        attempt.status == AttemptStatus.SUCCEEDED and attempt.failure_code
    ):
        context["state"] = "failure"
        context["cancelled"] = attempt.status == AttemptStatus.CANCELLED
        # Translated by failure code: the provider's own wording stays in the
        # attempt's record for staff.
        context["reason"] = actions.failure_message(attempt.failure_code)
        context["can_retry"] = attempt.failure_code not in (
            actions.AMOUNT_MISMATCH,
            actions.PAID_TWICE,
        )
    elif attempt.status == AttemptStatus.REFUNDED:
        context["state"] = "refunded"
    return context


@require_GET
def payment_return(request: HttpRequest, attempt_id: UUID) -> HttpResponse:
    attempt = _owned_attempt(request, attempt_id)
    attempt = actions.sync_attempt(attempt, cancelled=request.GET.get("cancelled") == "1")
    attempt.order.refresh_from_db()
    context = _result_context(attempt, request.user)
    response = render(request, "payments/result.html", context)
    if context["state"] == "pending":
        # Reloads without JavaScript too; poll.js reloads sooner when it can.
        response["Refresh"] = "5"
    return response


@require_GET
def payment_status(request: HttpRequest, attempt_id: UUID) -> JsonResponse:
    attempt = actions.sync_attempt(_owned_attempt(request, attempt_id))
    attempt.order.refresh_from_db()
    context = _result_context(attempt)
    return JsonResponse(
        {
            "attempt": str(attempt.public_id),
            "status": attempt.status,
            "order_status": attempt.order.status,
            "state": context["state"],
            "done": context["state"] != "pending",
        }
    )


# --- The sandbox gateway's hosted pages ---------------------------------------


def _sandbox_attempt(attempt_id: UUID) -> PaymentAttempt:
    attempt = (
        PaymentAttempt.objects.select_related("order")
        .filter(public_id=attempt_id, provider="sandbox")
        .first()
    )
    if attempt is None:
        raise Http404
    return attempt


def _back_to_merchant(attempt: PaymentAttempt, cancelled: bool = False) -> HttpResponse:
    key = "cancel_url" if cancelled else "return_url"
    url = str(attempt.provider_data.get(key) or "")
    if not url:
        url = reverse("payments:return", args=[attempt.public_id])
    return HttpResponseRedirect(url)


def _gateway_closed(request: HttpRequest, attempt: PaymentAttempt) -> HttpResponse | None:
    """A decided attempt cannot be paid again: send the payer back."""
    state = sandbox.gateway_state(attempt).get("state")
    if state in (SUCCEEDED, FAILED, CANCELLED):
        return _back_to_merchant(attempt, cancelled=state == CANCELLED)
    return None


@require_http_methods(["GET", "POST"])
def sandbox_checkout(request: HttpRequest, attempt_id: UUID) -> HttpResponse:
    attempt = _sandbox_attempt(attempt_id)
    if closed := _gateway_closed(request, attempt):
        return closed
    if request.method == "POST" and request.POST.get("action") == "cancel":
        # The payer gave up at the gateway: nothing is charged, and the way
        # back is the merchant's cancel URL, like a real hosted checkout.
        attempt = sandbox.complete_at_gateway(attempt, CANCELLED, "cancelled")
        return _back_to_merchant(attempt, cancelled=True)
    form = CardForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        verdict = sandbox.classify_card(form.cleaned_data["number"])
        if verdict == sandbox.CHALLENGE:
            sandbox.begin_challenge(attempt)
            return HttpResponseRedirect(
                reverse("payments:sandbox_challenge", args=[attempt.public_id])
            )
        if verdict == SUCCEEDED:
            attempt = sandbox.complete_at_gateway(attempt, SUCCEEDED)
        else:
            attempt = sandbox.complete_at_gateway(attempt, FAILED, verdict)
        return _back_to_merchant(attempt)
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "payments/sandbox_checkout.html",
        {
            "attempt": attempt,
            "form": form,
            "amount": format_money(attempt.amount, attempt.currency),
        },
        status=status,
    )


@require_http_methods(["GET", "POST"])
def sandbox_challenge(request: HttpRequest, attempt_id: UUID) -> HttpResponse:
    attempt = _sandbox_attempt(attempt_id)
    if closed := _gateway_closed(request, attempt):
        return closed
    if sandbox.gateway_state(attempt).get("state") != sandbox.CHALLENGE:
        return HttpResponseRedirect(reverse("payments:sandbox_checkout", args=[attempt.public_id]))
    if request.method == "POST":
        if request.POST.get("result") == "complete":
            attempt = sandbox.complete_at_gateway(attempt, SUCCEEDED)
        else:
            attempt = sandbox.complete_at_gateway(attempt, FAILED, "authentication_failed")
        return _back_to_merchant(attempt)
    return render(
        request,
        "payments/sandbox_challenge.html",
        {"attempt": attempt, "amount": format_money(attempt.amount, attempt.currency)},
    )


@require_http_methods(["GET", "POST"])
def sandbox_paypal(request: HttpRequest, attempt_id: UUID) -> HttpResponse:
    attempt = _sandbox_attempt(attempt_id)
    if closed := _gateway_closed(request, attempt):
        return closed
    if request.method == "POST":
        if request.POST.get("result") == "approve":
            attempt = sandbox.complete_at_gateway(attempt, SUCCEEDED)
            return _back_to_merchant(attempt)
        attempt = sandbox.complete_at_gateway(attempt, CANCELLED, "cancelled")
        return _back_to_merchant(attempt, cancelled=True)
    return render(
        request,
        "payments/sandbox_paypal.html",
        {"attempt": attempt, "amount": format_money(attempt.amount, attempt.currency)},
    )


# --- Webhooks -------------------------------------------------------------------


def problem(status: int, title: str, detail: str = "") -> JsonResponse:
    """An RFC 9457 problem document."""
    body = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    return JsonResponse(body, status=status, content_type="application/problem+json")


@csrf_exempt
@require_POST
def webhook(request: HttpRequest, provider: str) -> JsonResponse:
    try:
        gateway = get_provider(provider)
    except LookupError:
        return problem(404, _("Unknown payment provider"))
    try:
        event = gateway.parse_webhook(request)
    except WebhookError as exc:
        logger.warning("%s webhook rejected: %s", provider, exc)
        return problem(exc.status, str(exc.title), str(exc.detail))
    try:
        outcome = actions.do_record_event(event)
    except Exception:
        # Nothing was stored: the provider will deliver again.
        logger.exception("%s webhook %s could not be processed", provider, event.event_id)
        return problem(503, _("The event could not be processed; deliver it again later."))
    return JsonResponse({"received": True, "outcome": outcome})


@require_http_methods(["GET", "POST"])
def sandbox_setup(request: HttpRequest, setup_id: UUID) -> HttpResponse:
    """The sandbox's hosted "save a card" page. Its id is an unguessable
    capability handed out by the merchant, like a real gateway's session."""
    card = SandboxVaultedCard.objects.filter(public_id=setup_id).first()
    if card is None:
        raise Http404
    if card.completed_at is not None:
        return HttpResponseRedirect(card.return_url or "/")
    form = CardForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        exp_month, exp_year = form.cleaned_data["expiry"]
        try:
            sandbox.vault_card(
                form.cleaned_data["number"],
                exp_month,
                exp_year,
                customer_reference=card.customer_reference,
                setup_id=str(card.public_id),
            )
        except PaymentProviderError as exc:
            form.add_error("number", str(exc.message))
        else:
            return HttpResponseRedirect(card.return_url or "/")
    status = 400 if request.method == "POST" else 200
    return render(
        request, "payments/sandbox_setup.html", {"card": card, "form": form}, status=status
    )
