"""PayPal Checkout through the Orders v2 REST API, called with `requests`.

PayPal's Python server SDK is not maintained well enough to depend on, and the
few endpoints used here are plain JSON over HTTPS. PayPal hosts the approval
page; leb only ever sees order, capture and refund ids and amounts."""

from __future__ import annotations

import codecs
import json
import logging
import threading
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote, urlencode

import requests
from babel.numbers import get_currency_precision
from django.conf import settings
from django.http import HttpRequest
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from leb.common import clock

from .base import (
    CAPTURE,
    FAILED,
    PENDING,
    REFUND,
    SUCCEEDED,
    ForgedWebhook,
    Outcome,
    PaymentProvider,
    PaymentProviderError,
    ProviderRefund,
    ProviderTransaction,
    RefundNotice,
    StaleWebhook,
    UnparseableWebhook,
    WebhookError,
    WebhookEvent,
    payload_hash,
)

if TYPE_CHECKING:
    from leb.topups.models import TopUpOrder

    from ..models import PaymentAttempt, Refund

logger = logging.getLogger(__name__)

DEFAULT_API_BASE = "https://api-m.sandbox.paypal.com"
TOLERANCE_SECONDS = 300
# Renew the token this long before PayPal says it expires: a request started
# just before expiry must not arrive with a dead token.
TOKEN_MARGIN_SECONDS = 120
TRANSMISSION_HEADERS = {
    "transmission_id": "PAYPAL-TRANSMISSION-ID",
    "transmission_time": "PAYPAL-TRANSMISSION-TIME",
    "transmission_sig": "PAYPAL-TRANSMISSION-SIG",
    "cert_url": "PAYPAL-CERT-URL",
    "auth_algo": "PAYPAL-AUTH-ALGO",
}
# PayPal refuses decimals for these even where ISO 4217 (and Babel) have them.
NO_DECIMALS = {"HUF", "JPY", "TWD"}
# Django language -> PayPal page locale; others let PayPal pick from the browser.
LOCALES = {"zh-hans": "zh-CN", "zh-hant": "zh-HK"}


class HTTPResponse(Protocol):
    status_code: int

    def json(self) -> Any: ...


class HTTPSession(Protocol):
    def request(self, method: str, url: str, **kwargs: Any) -> HTTPResponse: ...


# Tests put a fake session here; production calls `requests` directly.
http_session: HTTPSession | None = None

_token_lock = threading.Lock()
_tokens: dict[tuple[str, str], tuple[str, datetime]] = {}


class PayPalAPIError(PaymentProviderError):
    """PayPal answered with an error; `issue` is its machine-readable reason."""

    def __init__(self, status: int, body: Any) -> None:
        body = body if isinstance(body, dict) else {}
        details = body.get("details") or [{}]
        first = details[0] if isinstance(details, list) and isinstance(details[0], dict) else {}
        self.status = status
        self.name = str(body.get("name") or body.get("error") or "")
        self.issue = str(first.get("issue") or "")
        debug_id = str(body.get("debug_id") or "")
        # For logs and staff only: payers see a message chosen by failure code.
        super().__init__(
            f"PayPal answered {status} {self.name} {self.issue} (debug id {debug_id})".strip(),
            code="paypal_error",
        )


class PayPalUnavailableWebhook(WebhookError):
    """PayPal could not be asked about a notification: 503, so it delivers again."""

    status = 503
    title = _("PayPal is not available; deliver the webhook again later.")


def timeouts() -> tuple[float, float]:
    """(connect, read) seconds for a PayPal call, from the settings."""
    return (
        float(getattr(settings, "PAYMENT_CONNECT_TIMEOUT", 5)),
        float(getattr(settings, "PAYMENT_READ_TIMEOUT", 30)),
    )


def _setting(name: str, default: str = "") -> str:
    return str(getattr(settings, name, "") or default)


def api_base() -> str:
    return _setting("PAYPAL_API_BASE", DEFAULT_API_BASE).rstrip("/")


def _credentials() -> tuple[str, str]:
    client_id = _setting("PAYPAL_CLIENT_ID")
    secret = _setting("PAYPAL_CLIENT_SECRET")
    if not (client_id and secret):
        raise PaymentProviderError(_("PayPal payments are not configured."), code="not_configured")
    return client_id, secret


def _send(method: str, url: str, **kwargs: Any) -> HTTPResponse:
    session: Any = http_session or requests
    try:
        response: HTTPResponse = session.request(method, url, timeout=timeouts(), **kwargs)
    except requests.RequestException as exc:
        raise PaymentProviderError(_("PayPal could not be reached."), code="unreachable") from exc
    return response


def _json(response: HTTPResponse) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def reset_token_cache() -> None:
    with _token_lock:
        _tokens.clear()


def access_token(*, renew: bool = False) -> str:
    """An OAuth2 client-credentials token, reused until shortly before it expires."""
    client_id, secret = _credentials()
    base = api_base()
    key = (base, client_id)
    with _token_lock:
        cached = _tokens.get(key)
        if cached and not renew and cached[1] > clock.now():
            return cached[0]
        response = _send(
            "POST",
            f"{base}/v1/oauth2/token",
            auth=(client_id, secret),
            data={"grant_type": "client_credentials"},
            headers={"Accept": "application/json"},
        )
        body = _json(response)
        if (
            response.status_code != 200
            or not isinstance(body, dict)
            or not body.get("access_token")
        ):
            raise PayPalAPIError(response.status_code, body)
        try:
            expires_in = int(body.get("expires_in") or 0)
        except (TypeError, ValueError):
            expires_in = 0  # use it for this call only
        lifetime = max(expires_in - TOKEN_MARGIN_SECONDS, 0)
        token = str(body["access_token"])
        _tokens[key] = (token, clock.now() + timedelta(seconds=lifetime))
        return token


def call(
    method: str,
    path: str,
    body: Any = None,
    *,
    request_id: str = "",
    raw_body: bytes | None = None,
) -> dict[str, Any]:
    """One authenticated API call; raises PayPalAPIError on an error answer."""
    data = (
        raw_body if raw_body is not None else (b"" if body is None else json.dumps(body).encode())
    )
    for attempt in range(2):
        headers = {
            "Authorization": f"Bearer {access_token(renew=attempt > 0)}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Prefer": "return=representation",
        }
        if request_id:
            # PayPal's idempotency key: a retry returns the first answer.
            headers["PayPal-Request-Id"] = request_id
        response = _send(method, api_base() + path, headers=headers, data=data)
        # 401 means the token was revoked or expired early: fetch one and retry once.
        if response.status_code != 401:
            break
    answer = _json(response)
    if response.status_code >= 400:
        raise PayPalAPIError(response.status_code, answer)
    if not isinstance(answer, dict):
        raise PaymentProviderError(f"PayPal answered {response.status_code} without JSON")
    return answer


def to_value(amount: int, currency: str) -> str:
    """Integer minor units -> PayPal's decimal string: 5000 HKD -> "50.00"."""
    currency = currency.upper()
    digits = get_currency_precision(currency)
    value = Decimal(int(amount)).scaleb(-digits)
    if currency in NO_DECIMALS:
        if value != value.to_integral_value():
            raise PaymentProviderError(
                _("This amount cannot be paid with PayPal in this currency."),
                code="unsupported_amount",
            )
        digits = 0
    return f"{value:.{digits}f}"


def from_value(value: Any, currency: str) -> int | None:
    """PayPal's decimal string -> integer minor units; None when it is not a
    whole number of minor units (settle then refuses it as a mismatch)."""
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    if not amount.is_finite():
        return None
    minor = amount.scaleb(get_currency_precision(currency.upper()))
    if minor != minor.to_integral_value():
        return None
    return int(minor)


def _money(amount: Any) -> tuple[int | None, str]:
    if not isinstance(amount, dict):
        return None, ""
    currency = str(amount.get("currency_code") or "").upper()
    if not currency:
        return None, ""
    return from_value(amount.get("value"), currency), currency


def _first_capture(order: dict[str, Any]) -> dict[str, Any] | None:
    units = order.get("purchase_units")
    for unit in units if isinstance(units, list) else []:
        captures = _dict(_dict(unit).get("payments")).get("captures")
        for capture in captures if isinstance(captures, list) else []:
            if isinstance(capture, dict):
                return capture
    return None


def capture_outcome(capture: dict[str, Any], order_id: str) -> Outcome:
    """Map one capture: paid only when PayPal says COMPLETED."""
    data = {"paypal_order": order_id, "capture_id": str(capture.get("id") or "")}
    status = capture.get("status")
    if status == "COMPLETED":
        amount, currency = _money(capture.get("amount"))
        return Outcome(SUCCEEDED, amount=amount, currency=currency, reference=order_id, data=data)
    if status in ("DECLINED", "FAILED"):
        return Outcome(FAILED, failure_code="declined", data=data)
    # PENDING (held for review, e-cheque): the webhook tells the end.
    return Outcome(PENDING, data=data)


def order_outcome(order: dict[str, Any]) -> Outcome:
    order_id = str(order.get("id") or "")
    capture = _first_capture(order)
    if capture is not None:
        return capture_outcome(capture, order_id)
    if order.get("status") == "VOIDED":
        return Outcome(FAILED, failure_code="voided", data={"paypal_order": order_id})
    return Outcome(PENDING, data={"paypal_order": order_id})


def _order_path(order_id: str) -> str:
    return "/v2/checkout/orders/" + quote(order_id, safe="")


def get_order(order_id: str) -> dict[str, Any]:
    return call("GET", _order_path(order_id))


def capture_order(order_id: str, attempt_id: str) -> Outcome:
    """Capture an approved order; safe to repeat from the return page, the
    poll and the webhook at once."""
    try:
        order = call("POST", _order_path(order_id) + "/capture", request_id=f"{attempt_id}:capture")
    except PayPalAPIError as exc:
        if exc.issue == "ORDER_ALREADY_CAPTURED":
            order = get_order(order_id)
        elif exc.issue in ("ORDER_NOT_APPROVED", "PAYER_ACTION_REQUIRED"):
            return Outcome(PENDING, data={"paypal_order": order_id})
        elif exc.issue in ("INSTRUMENT_DECLINED", "TRANSACTION_REFUSED", "DUPLICATE_INVOICE_ID"):
            logger.warning("PayPal refused capture of %s: %s", order_id, exc)
            return Outcome(FAILED, failure_code="declined", data={"paypal_order": order_id})
        else:
            raise
    return order_outcome(order)


SEARCH_PAGE_SIZE = 500
# A day of an operator's PayPal payments fits many times over; this stops a
# misbehaving answer from paging forever.
SEARCH_MAX_PAGES = 200
# Transaction event codes (developer.paypal.com, "Transaction event codes"):
# leb's captures are PayPal Checkout payments, T0006; its refunds are
# payment refunds, T1107. Other T00xx (mass pay, subscriptions) and T11xx
# (dispute holds and releases, fee reversals) are not leb's and are left out.
CAPTURE_EVENT_CODES = frozenset({"T0006"})
REFUND_EVENT_CODES = frozenset({"T1107"})


def _search_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


def _searched_transaction(info: dict[str, Any]) -> ProviderTransaction | None:
    """A capture or refund from one Transaction Search row; None for the other
    kinds (withdrawals, conversions, holds) and for denied transactions."""
    code = str(info.get("transaction_event_code") or "")
    if code in CAPTURE_EVENT_CODES:
        kind = CAPTURE
    elif code in REFUND_EVENT_CODES:
        kind = REFUND
    else:
        return None
    status = str(info.get("transaction_status") or "")
    if status == "D":
        return None
    transaction_id = str(info.get("transaction_id") or "")
    amount, currency = _money(info.get("transaction_amount"))
    fee, _fee_currency = _money(info.get("fee_amount"))
    try:
        occurred_at = datetime.fromisoformat(str(info.get("transaction_initiation_date") or ""))
    except ValueError:
        occurred_at = None
    if amount is None or occurred_at is None:
        raise PaymentProviderError(
            f"PayPal transaction {transaction_id} has no readable amount or date",
            code="bad_answer",
        )
    if occurred_at.tzinfo is None:
        occurred_at = occurred_at.replace(tzinfo=UTC)
    return ProviderTransaction(
        transaction_id=transaction_id,
        kind=kind,
        amount=abs(amount),
        currency=currency,
        occurred_at=occurred_at,
        # A refund points at the capture it gives back.
        reference=str(info.get("paypal_reference_id") or "") if kind == REFUND else transaction_id,
        attempt_id=_attempt_id(info.get("custom_field")) if info.get("custom_field") else "",
        fee=abs(fee or 0),
        pending=status == "P",
    )


def _attempt_id(value: Any) -> str:
    # Only our own UUIDs: anything else must not reach a UUID column lookup.
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        return ""


REFUND_EVENTS = {
    "PAYMENT.CAPTURE.REFUNDED": SUCCEEDED,
    "PAYMENT.REFUND.COMPLETED": SUCCEEDED,
    "PAYMENT.REFUND.FAILED": FAILED,
    "PAYMENT.REFUND.CANCELLED": FAILED,
}


def _refund_notices(kind: str, resource: dict[str, Any]) -> tuple[RefundNotice, ...]:
    """PAYMENT.CAPTURE.REFUNDED's resource is the refund itself, with the
    custom id leb sent (its refund public id)."""
    if kind not in REFUND_EVENTS:
        return ()
    status = REFUND_EVENTS[kind]
    if kind == "PAYMENT.CAPTURE.REFUNDED" and resource.get("status") not in (None, "COMPLETED"):
        status = FAILED if resource.get("status") in ("FAILED", "CANCELLED") else PENDING
    amount, currency = _money(resource.get("amount"))
    return (
        RefundNotice(
            status,
            reference=str(resource.get("id") or "")[:255],
            refund_id=str(resource.get("custom_id") or "")[:64],
            amount=amount,
            currency=currency,
        ),
    )


def _transmission_time(raw: str) -> datetime:
    try:
        moment = datetime.fromisoformat(raw.strip())
    except ValueError as exc:
        raise UnparseableWebhook(_("The PayPal transmission time is not a valid time.")) from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class PayPalProvider(PaymentProvider):
    name = "paypal"
    label = _("PayPal")
    # Saving PayPal for later charges (vaulting) is not supported.
    can_save_methods = False

    def start_checkout(
        self, order: TopUpOrder, attempt: PaymentAttempt, return_url: str, cancel_url: str
    ) -> str:
        from leb.lines.identifiers import format_msisdn

        experience: dict[str, str] = {
            "return_url": return_url,
            "cancel_url": cancel_url,
            "user_action": "PAY_NOW",
            "shipping_preference": "NO_SHIPPING",
        }
        locale = LOCALES.get((translation.get_language() or "").lower())
        if locale:
            experience["locale"] = locale
        description = str(_("Top-up for %(number)s")) % {"number": format_msisdn(order.line.msisdn)}
        body = {
            "intent": "CAPTURE",
            "purchase_units": [
                {
                    "custom_id": str(attempt.public_id),
                    "invoice_id": str(order.public_id),
                    "description": description[:127],
                    "amount": {
                        "currency_code": order.currency.upper(),
                        "value": to_value(order.price, order.currency),
                    },
                }
            ],
            "payment_source": {"paypal": {"experience_context": experience}},
        }
        created = call("POST", "/v2/checkout/orders", body, request_id=str(attempt.public_id))
        links = {
            str(link.get("rel")): str(link.get("href"))
            for link in created.get("links") or []
            if isinstance(link, dict) and link.get("href")
        }
        url = links.get("payer-action") or links.get("approve")
        if not created.get("id") or not url:
            raise PaymentProviderError(_("PayPal did not return an approval link."))
        attempt.provider_reference = str(created["id"])
        attempt.provider_data = {**attempt.provider_data, "paypal_order": str(created["id"])}
        return url

    def parse_webhook(self, request: HttpRequest) -> WebhookEvent:
        webhook_id = _setting("PAYPAL_WEBHOOK_ID")
        if not webhook_id:
            raise ForgedWebhook(_("PayPal webhook ID not configured."))
        fields = {
            key: request.headers.get(header, "") for key, header in TRANSMISSION_HEADERS.items()
        }
        if not all(fields.values()):
            raise UnparseableWebhook(_("PayPal transmission headers are missing."))
        sent = _transmission_time(fields["transmission_time"])
        if abs((clock.now() - sent).total_seconds()) > TOLERANCE_SECONDS:
            raise StaleWebhook(_("The signature timestamp is too old or in the future."))
        body = request.body.removeprefix(codecs.BOM_UTF8)
        try:
            event = json.loads(body.decode("utf-8"))
            kind = str(event["event_type"])
            event_id = str(event["id"])
            resource = event["resource"]
            if not isinstance(resource, dict):
                raise TypeError("resource is not a JSON object")
        except (KeyError, TypeError, ValueError) as exc:
            raise UnparseableWebhook(_("The webhook body is not a valid PayPal event.")) from exc
        self._verify(fields, webhook_id, body)
        refunds = _refund_notices(kind, resource)
        if refunds:
            return WebhookEvent(
                provider=self.name,
                event_id=event_id[:255],
                type=kind,
                payload_sha256=payload_hash(request.body),
                refunds=refunds,
            )
        attempt_id, reference, outcome = self._event_outcome(kind, event_id, resource)
        return WebhookEvent(
            provider=self.name,
            event_id=event_id[:255],
            type=kind,
            payload_sha256=payload_hash(request.body),
            attempt_id=attempt_id,
            reference=reference,
            outcome=outcome,
        )

    def _verify(self, fields: dict[str, str], webhook_id: str, body: bytes) -> None:
        # PayPal checks the event exactly as sent: splice the received bytes in
        # rather than re-serialising them (key order and escapes would change).
        envelope = json.dumps({**fields, "webhook_id": webhook_id})
        raw = envelope[:-1].encode() + b', "webhook_event": ' + body.strip() + b"}"
        try:
            answer = call("POST", "/v1/notifications/verify-webhook-signature", raw_body=raw)
        except PayPalAPIError as exc:
            if exc.status not in (400, 422):
                # Our credentials or PayPal itself: not the sender's fault.
                raise PayPalUnavailableWebhook(str(exc)) from exc
            # PayPal refused the headers themselves (bad cert URL, unknown algorithm).
            logger.warning("PayPal refused to verify a webhook: %s", exc)
            raise ForgedWebhook(_("PayPal did not verify the signature.")) from exc
        except PaymentProviderError as exc:
            raise PayPalUnavailableWebhook(str(exc)) from exc
        if answer.get("verification_status") != "SUCCESS":
            raise ForgedWebhook(_("PayPal did not verify the signature."))

    def _event_outcome(
        self, kind: str, event_id: str, resource: dict[str, Any]
    ) -> tuple[str, str, Outcome | None]:
        if kind == "CHECKOUT.ORDER.APPROVED":
            units = resource.get("purchase_units")
            unit = _dict(units[0]) if isinstance(units, list) and units else {}
            attempt_id = _attempt_id(unit.get("custom_id"))
            order_id = str(resource.get("id") or "")
            if not (attempt_id and order_id) or self._seen(event_id):
                # A replay is answered "duplicate" without capturing again.
                return attempt_id, order_id, None
            try:
                return attempt_id, order_id, capture_order(order_id, attempt_id)
            except PaymentProviderError as exc:
                raise PayPalUnavailableWebhook(str(exc)) from exc
        if kind.startswith("PAYMENT.CAPTURE."):
            related = _dict(_dict(resource.get("supplementary_data")).get("related_ids"))
            order_id = str(related.get("order_id") or "")
            attempt_id = _attempt_id(resource.get("custom_id"))
            outcome: Outcome | None = None
            if kind == "PAYMENT.CAPTURE.COMPLETED":
                outcome = capture_outcome(resource, order_id)
            elif kind in ("PAYMENT.CAPTURE.DENIED", "PAYMENT.CAPTURE.DECLINED"):
                outcome = Outcome(
                    FAILED,
                    failure_code="declined",
                    data={"paypal_order": order_id, "capture_id": str(resource.get("id") or "")},
                )
            return attempt_id, order_id, outcome
        return "", "", None

    def _seen(self, event_id: str) -> bool:
        from ..models import ProviderEvent

        return ProviderEvent.objects.filter(provider=self.name, event_id=event_id[:255]).exists()

    def fetch_status(self, attempt: PaymentAttempt) -> Outcome:
        if not attempt.provider_reference:
            return Outcome(PENDING)
        order = get_order(attempt.provider_reference)
        # Capture only what the payer approved: an early capture with the
        # attempt's request id could pin PayPal's answer to "not approved".
        if order.get("status") == "APPROVED":
            return capture_order(attempt.provider_reference, str(attempt.public_id))
        return order_outcome(order)

    def refund(
        self, attempt: PaymentAttempt, amount: int, *, idempotency_key: str, refund_id: str
    ) -> ProviderRefund:
        capture_id = str(attempt.provider_data.get("capture_id") or "")
        if not capture_id:
            capture_id = str(self.fetch_status(attempt).data.get("capture_id") or "")
        if not capture_id:
            raise PaymentProviderError(_("PayPal has no payment to refund."))
        refund = call(
            "POST",
            "/v2/payments/captures/" + quote(capture_id, safe="") + "/refund",
            {
                "amount": {
                    "currency_code": attempt.currency.upper(),
                    "value": to_value(amount, attempt.currency),
                },
                # Echoed in PAYMENT.CAPTURE.REFUNDED, so the webhook finds the refund.
                "custom_id": refund_id,
            },
            request_id=idempotency_key,
        )
        if refund.get("status") in ("FAILED", "CANCELLED") or not refund.get("id"):
            raise PaymentProviderError(f"PayPal refund {refund.get('id')}: {refund.get('status')}")
        status = SUCCEEDED if refund.get("status") == "COMPLETED" else PENDING
        return ProviderRefund(str(refund["id"]), status=status)

    def fetch_refund(self, refund: Refund) -> ProviderRefund:
        """GET /v2/payments/refunds/{id}: COMPLETED, FAILED / CANCELLED, or
        still PENDING."""
        if not refund.provider_reference:
            raise PaymentProviderError(_("PayPal has not named this refund."), code="unknown")
        answer = call("GET", "/v2/payments/refunds/" + quote(refund.provider_reference, safe=""))
        status = str(answer.get("status") or "")
        state = {"COMPLETED": SUCCEEDED, "FAILED": FAILED, "CANCELLED": FAILED}.get(status, PENDING)
        return ProviderRefund(str(answer.get("id") or refund.provider_reference), status=state)

    def list_transactions(
        self, day_start: datetime, day_end: datetime
    ) -> list[ProviderTransaction]:
        """The window's captures and refunds from PayPal's Transaction Search
        API, page by page. PayPal makes a transaction searchable up to three
        hours after it happened, so the job reconciles yesterday, not today."""
        found: list[ProviderTransaction] = []
        page = 1
        while True:
            query = urlencode(
                {
                    "start_date": _search_time(day_start),
                    # Inclusive at PayPal: stop one second before the next day.
                    "end_date": _search_time(day_end - timedelta(seconds=1)),
                    "fields": "transaction_info",
                    "page_size": SEARCH_PAGE_SIZE,
                    "page": page,
                }
            )
            answer = call("GET", f"/v1/reporting/transactions?{query}")
            details = answer.get("transaction_details")
            for detail in details if isinstance(details, list) else []:
                record = _searched_transaction(_dict(_dict(detail).get("transaction_info")))
                if record is not None and day_start <= record.occurred_at < day_end:
                    found.append(record)
            try:
                total_pages = int(answer.get("total_pages") or 1)
            except (TypeError, ValueError):
                total_pages = 1
            if page >= min(total_pages, SEARCH_MAX_PAGES):
                return found
            page += 1
