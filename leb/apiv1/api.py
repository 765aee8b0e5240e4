"""The REST API (/api/v1/): a thin channel over the domain's actions and
queries. Pricing, fulfilment and lifecycle live in the domain apps."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from ninja import NinjaAPI, Query
from ninja.responses import Status

from leb.agents.public_api import router as agents_public_router
from leb.api.auth import ANYONE, OPTIONAL_SECURITY, SIGNED_IN, user_of
from leb.autokeep.api import router as autokeep_router
from leb.catalog.models import Channel, Plan
from leb.catalog.quotes import Quote, find_plan, quote
from leb.catalog.schemas import QuoteOut, quote_out
from leb.common import clock, problems
from leb.common.problems import Problem, for_field
from leb.common.schemas import ProblemOut, money
from leb.common.throttles import line_check_throttle
from leb.lines import lifecycle
from leb.lines.identifiers import format_msisdn, normalize_msisdn
from leb.lines.models import Line, LineStatus
from leb.lines.queries import live_line_for_number, public_line_status
from leb.planner.api import router as planner_router
from leb.receipts import queries as receipt_queries
from leb.topups.actions import do_create_order
from leb.topups.models import OrderStatus, TopUpOrder
from leb.vouchers.api import router as vouchers_router

from .schemas import (
    LineCheckOut,
    MyLineOut,
    OrderIn,
    OrderOut,
    PaymentIn,
    PaymentOut,
    PlanOut,
    QuoteIn,
    ReceiptOut,
)

api = NinjaAPI(
    title="leb API",
    version="1",
    description=(
        "Prepaid eSIM number keeping: check a number, list plans, quote and order "
        "top-ups. Errors are RFC 9457 problem documents (application/problem+json). "
        "Sign in with a session, or send `Authorization: Bearer leb_<prefix>_<secret>`."
    ),
    urls_namespace="api-v1",
    docs_url=None,  # served at /api/docs, outside the versioned prefix
)
problems.install(api)

# Channels a caller may price on: staff top-ups are the back office's alone.
PUBLIC_CHANNELS = [c.value for c in Channel if c != Channel.ADMIN]
MAX_KEY_LENGTH = 150
# Visible ASCII, inner spaces allowed: what every HTTP client can send as is.
KEY_PATTERN = f"^[!-~]([ -~]{{0,{MAX_KEY_LENGTH - 2}}}[!-~])?$"
KEY_RE = re.compile(KEY_PATTERN)
IDEMPOTENCY_KEY_PARAMETER: dict[str, Any] = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": True,
    "description": (
        "Unique per top-up: repeating an order with the same key returns the same order."
    ),
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_KEY_LENGTH,
        "pattern": KEY_PATTERN,
    },
}
# 400: a body that is not JSON; 401: a bearer token that is not valid;
# 403: a session without its CSRF token on an unsafe method.
ERRORS: dict[int, Any] = {
    400: ProblemOut,
    401: ProblemOut,
    403: ProblemOut,
    404: ProblemOut,
    409: ProblemOut,
    422: ProblemOut,
    429: ProblemOut,
}


def _errors(*codes: int) -> dict[int, Any]:
    return {code: ERRORS[code] for code in codes}


def _field_problem(code: str, field: str, message: str) -> Problem:
    return Problem(422, code, message, errors=[{"field": field, "message": message, "code": code}])


def _status_label(status: str) -> str:
    try:
        return str(LineStatus(status).label)
    except ValueError:
        return status


def _line_for_number(number: str) -> Line:
    with for_field("number"):
        msisdn = normalize_msisdn(number)
    line = live_line_for_number(msisdn)
    if line is None:
        raise Problem(404, "line_not_found", _("No line in service has this number."))
    return line


def _field_of_code(code: str | None) -> str:
    prefixes = {"promo": "promo_code", "plan": "plan_code", "amount": "amount", "line": "number"}
    return prefixes.get((code or "").split("_", 1)[0], "")


def _plan_or_amount(plan_code: str | None, amount: int | None) -> tuple[Plan | None, int | None]:
    if (plan_code is None) == (amount is None):
        raise _field_problem("plan_or_amount", "plan_code", _("Choose a plan or an amount."))
    if plan_code is None:
        return None, amount
    with for_field("plan_code"):
        return find_plan(plan_code), None


def _priced(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call a pricing action, naming the field its refusal is about."""
    try:
        return fn(*args, **kwargs)
    except ValidationError as exc:
        codes = [e.code for e in getattr(exc, "error_list", [])]
        exc.api_field = _field_of_code(codes[0] if codes else None)  # type: ignore[attr-defined]
        raise


def _order_out(order: TopUpOrder, msisdn: str) -> dict[str, Any]:
    return {
        "public_id": order.public_id,
        "status": order.status,
        "status_label": str(OrderStatus(order.status).label),
        "channel": order.channel,
        "msisdn": msisdn,
        "price": money(order.price, order.currency),
        "currency": order.currency,
        "quote": quote_out(
            Quote.from_dict(order.quote),
            cap_days=order.line.policy.max_validity_days,
            done=order.status in (OrderStatus.FULFILLED, OrderStatus.REFUNDED),
        ),
        "created_at": order.created_at,
        "expires_at": order.expires_at,
        "paid_at": order.paid_at,
        "fulfilled_at": order.fulfilled_at,
        "receipt_number": order.receipt_number,
        "valid_until_after": order.valid_until_after,
    }


def _days_left(valid_until: datetime | None, now: datetime) -> int | None:
    if valid_until is None:
        return None
    return max(0, int((valid_until - now).total_seconds() // 86400))


# --- Anyone --------------------------------------------------------------------------


@api.get(
    "/lines/check",
    response={200: LineCheckOut, **_errors(404, 422, 429)},
    throttle=line_check_throttle,
    tags=["lines"],
    summary="Check a number",
)
def check_line(request: HttpRequest, number: Query[str]) -> Any:
    """Whether a number is in service and until when. Never shows the balance
    or the owner. Rate-limited per client address."""
    with for_field("number"):
        found = public_line_status(number, clock.now())
    if found is None:
        raise Problem(404, "line_not_found", _("No line in service has this number."))
    return {
        "msisdn": found.msisdn,
        "status": found.status,
        "status_label": _status_label(found.status),
        "valid_until": found.valid_until,
        "days_left": found.days_left,
        "grace_from": found.grace_from,
        "suspended_from": found.suspended_from,
        "number_lost_on": found.number_lost_on,
        "can_top_up": found.can_top_up,
    }


@api.get("/plans", response={200: list[PlanOut], **_errors(422)}, tags=["catalog"])
def list_plans(
    request: HttpRequest,
    currency: str | None = None,
    channel: str = "web",
) -> Any:
    """Plans on sale now, in the request's language."""
    if channel not in PUBLIC_CHANNELS:
        raise _bad_channel(channel)
    now = clock.now()
    plans = Plan.objects.filter(is_active=True).filter(
        Q(active_from__isnull=True) | Q(active_from__lte=now),
        Q(active_until__isnull=True) | Q(active_until__gt=now),
    )
    if currency:
        code = currency.strip().upper()
        if len(code) != 3 or not code.isalpha():
            raise _field_problem(
                "currency_invalid",
                "currency",
                _("A currency is a three-letter ISO 4217 code, such as HKD."),
            )
        plans = plans.filter(currency=code)
    plans = plans.order_by("currency", "sort_order", "price", "pk")
    # Channels are a short JSON list; filtering here works on every database.
    return [
        {
            "code": plan.code,
            "name": plan.display_name(),
            "currency": plan.currency,
            "price": money(plan.price, plan.currency),
            "credit": money(plan.credit, plan.currency),
            "validity_days": plan.validity_days,
        }
        for plan in plans
        if channel in (plan.channels or [])
    ]


def _bad_channel(channel: str) -> Problem:
    message = _("%(channel)s is not a channel you can use here.") % {"channel": channel}
    return _field_problem("channel_invalid", "channel", message)


@api.post(
    "/quotes",
    response={200: QuoteOut, **_errors(400, 401, 403, 404, 422)},
    auth=ANYONE,
    tags=["top-ups"],
    openapi_extra=OPTIONAL_SECURITY,
)
def create_quote(request: HttpRequest, payload: QuoteIn) -> Any:
    """What a top-up would cost and give, frozen until `expires_at`. Writes nothing."""
    channel = payload.channel
    if channel not in PUBLIC_CHANNELS:
        raise _bad_channel(channel)
    line = _line_for_number(payload.number)
    plan, amount = _plan_or_amount(payload.plan_code, payload.amount)
    target: Plan | int = plan if plan is not None else amount  # type: ignore[assignment]
    frozen = _priced(quote, line, target, channel, payload.promo_code, clock.now())
    return quote_out(frozen, cap_days=line.policy.max_validity_days)


@api.post(
    "/orders",
    response={201: OrderOut, 200: OrderOut, **_errors(400, 401, 403, 404, 409, 422)},
    auth=ANYONE,
    tags=["top-ups"],
    openapi_extra={**OPTIONAL_SECURITY, "parameters": [IDEMPOTENCY_KEY_PARAMETER]},
)
def create_order(request: HttpRequest, payload: OrderIn) -> Any:
    """An order awaiting payment on the web channel. Send a unique
    `Idempotency-Key` header per top-up: repeating the request with it returns
    the same order (200); the same key for a different top-up is a 409."""
    key = request.headers.get("Idempotency-Key") or ""
    if not key.strip():
        raise Problem(
            400, "idempotency_key_missing", _("Send an Idempotency-Key header with each order.")
        )
    if not KEY_RE.fullmatch(key):
        raise Problem(
            400,
            "idempotency_key_invalid",
            _(
                "The Idempotency-Key header must be 1 to %(max)d letters, digits, "
                "punctuation or inner spaces (ASCII)."
            )
            % {"max": MAX_KEY_LENGTH},
        )
    customer = user_of(request)
    # Keys are unique across all channels: scope them to the caller.
    scoped_key = f"api:{'u' + str(customer.pk) if customer else 'guest'}:{key}"
    line = _line_for_number(payload.number)
    plan, amount = _plan_or_amount(payload.plan_code, payload.amount)
    order = _priced(
        do_create_order,
        line=line,
        channel=Channel.WEB,
        idempotency_key=scoped_key,
        plan=plan,
        amount=amount,
        promo_code=payload.promo_code,
        customer=customer,
        actor=f"api:user:{customer.pk}" if customer else "api:guest",
    )
    # Decided by the action under the line's lock: of several requests racing
    # with one key, only the one that created the order answers 201.
    return Status(201 if order.created_now else 200, _order_out(order, line.msisdn))


# --- Signed in -------------------------------------------------------------------------


@api.get(
    "/orders/{public_id}",
    response={200: OrderOut, **_errors(401, 404)},
    auth=SIGNED_IN,
    tags=["top-ups"],
)
def get_order(request: HttpRequest, public_id: str) -> Any:
    """One of your orders. Someone else's order is "not found"."""
    try:
        wanted = uuid.UUID(public_id)
    except ValueError:
        wanted = None
    order = (
        TopUpOrder.objects.select_related("line__phone_number", "line__policy")
        .filter(public_id=wanted, customer=user_of(request))
        .first()
        if wanted
        else None
    )
    if order is None:
        raise Problem(404, "order_not_found", _("There is no such order in your account."))
    return _order_out(order, order.line.msisdn)


@api.get("/me/lines", response={200: list[MyLineOut], **_errors(401)}, auth=SIGNED_IN, tags=["me"])
def my_lines(request: HttpRequest) -> Any:
    """Your lines, with their status as of now and their balance."""
    now = clock.now()
    lines = (
        Line.objects.filter(owner=user_of(request))
        .select_related("phone_number", "policy", "wallet")
        .order_by("pk")
    )
    result = []
    for line in lines:
        status = lifecycle.effective_status(line, now)
        live = status != LineStatus.TERMINATED
        balance = line.wallet.balance if line.wallet is not None and live else 0
        result.append(
            {
                "msisdn": line.msisdn,
                "msisdn_display": format_msisdn(line.msisdn) if line.msisdn else "",
                "iccid": line.iccid,
                "status": status,
                "status_label": _status_label(status),
                "valid_until": line.valid_until,
                "days_left": _days_left(line.valid_until, now) if live else None,
                "balance": money(balance, line.currency),
            }
        )
    return result


def _payable_order(request: HttpRequest, public_id: str) -> TopUpOrder:
    """The order, if the caller may pay it: a guest order's id is its own
    capability; a customer's order is theirs alone."""
    try:
        wanted = uuid.UUID(public_id)
    except ValueError:
        wanted = None
    order = TopUpOrder.objects.filter(public_id=wanted).first() if wanted else None
    user = user_of(request)
    if order is None or (
        order.customer_id is not None and (user is None or order.customer_id != user.pk)
    ):
        raise Problem(404, "order_not_found", _("There is no such order."))
    return order


def _payment_out(attempt: Any) -> dict[str, Any]:
    return {
        "attempt": attempt.public_id,
        "order": attempt.order.public_id,
        "provider": attempt.provider,
        "status": attempt.status,
        "order_status": attempt.order.status,
        "checkout_url": attempt.checkout_url,
        "amount": money(attempt.amount, attempt.currency),
    }


@api.post(
    "/orders/{public_id}/payments",
    response={201: PaymentOut, **_errors(400, 401, 403, 404, 409, 422)},
    auth=ANYONE,
    openapi_extra=OPTIONAL_SECURITY,
    tags=["top-ups"],
)
def start_payment(request: HttpRequest, public_id: str, payload: PaymentIn) -> Any:
    """Start paying an order: returns the provider's checkout page to open in a browser.
    After paying, the browser comes back to leb's result page; poll
    GET /payments/{attempt} for the outcome."""
    from leb.payments import actions as payment_actions
    from leb.payments.providers.base import default_provider_name

    order = _payable_order(request, public_id)
    try:
        attempt = payment_actions.do_start_attempt(
            order, payload.provider or default_provider_name()
        )
    except payment_actions.PaymentError as exc:
        status = 409 if exc.code == "order_closed" else 422
        raise Problem(status, exc.code or "payment_error", str(exc.message)) from exc
    return Status(201, _payment_out(attempt))


@api.get(
    "/payments/{attempt_id}",
    response={200: PaymentOut, **_errors(401, 404)},
    auth=ANYONE,
    openapi_extra=OPTIONAL_SECURITY,
    tags=["top-ups"],
)
def get_payment(request: HttpRequest, attempt_id: str) -> Any:
    """Where a payment stands; asks the provider when it is still open."""
    from leb.payments import actions as payment_actions
    from leb.payments.models import PaymentAttempt

    try:
        wanted = uuid.UUID(attempt_id)
    except ValueError:
        wanted = None
    attempt = (
        PaymentAttempt.objects.select_related("order").filter(public_id=wanted).first()
        if wanted
        else None
    )
    user = user_of(request)
    if attempt is None or (
        attempt.order.customer_id is not None
        and (user is None or attempt.order.customer_id != user.pk)
    ):
        raise Problem(404, "payment_not_found", _("There is no such payment."))
    attempt = payment_actions.sync_attempt(attempt)
    attempt.order.refresh_from_db()
    return _payment_out(attempt)


def _site_url(path: str) -> str:
    return settings.SITE_URL.rstrip("/") + path


def _receipt_out(order: TopUpOrder) -> dict[str, Any]:
    number = order.receipt_number or ""
    frozen = Quote.from_dict(order.quote)
    return {
        "receipt_number": number,
        "status": order.status,
        "status_label": _status_label(order.status),
        "fulfilled_at": order.fulfilled_at,
        "msisdn": order.line.msisdn,
        "description": receipt_queries.order_label(order),
        "price": money(order.price, order.currency),
        "validity_days": frozen.validity_days,
        "valid_until_after": order.valid_until_after,
        "html_url": _site_url(reverse("receipts:detail", args=[number])),
        "pdf_url": _site_url(reverse("receipts:pdf", args=[number])),
        "verify_url": receipt_queries.verify_url(order),
    }


@api.get("/receipts", response={200: list[ReceiptOut], **_errors(401)}, auth=SIGNED_IN, tags=["me"])
def list_receipts(request: HttpRequest) -> Any:
    """Receipts of your top-ups (completed or refunded), newest first; at most 100."""
    return [
        _receipt_out(order) for order in receipt_queries.receipts_for_user(user_of(request))[:100]
    ]


@api.get(
    "/receipts/{receipt_number}",
    response={200: ReceiptOut, **_errors(401, 404)},
    auth=SIGNED_IN,
    tags=["me"],
)
def get_receipt(request: HttpRequest, receipt_number: str) -> Any:
    """One receipt. Someone else's receipt is "not found"."""
    order = receipt_queries.receipt_for_user(user_of(request), receipt_number)
    if order is None:
        raise Problem(404, "receipt_not_found", _("There is no such receipt in your account."))
    return _receipt_out(order)


# Routers of other apps share this API, its auth and its problem documents.
api.add_router("", autokeep_router)
api.add_router("", planner_router)
api.add_router("", vouchers_router)
api.add_router("", agents_public_router)


def docs(request: HttpRequest) -> HttpResponse:
    """The Swagger page for the current version."""
    return api.docs.render_page(request, api)


__all__ = ["api", "docs"]
