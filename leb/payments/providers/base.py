"""The one interface every payment provider implements, and the registry that
picks providers from settings.

Providers talk to the outside world and translate; they never decide what a
payment means for an order. That is `leb.payments.actions.settle`."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest
from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy as _

if TYPE_CHECKING:
    from django.utils.functional import _StrPromise

    from leb.topups.models import TopUpOrder

    from ..models import PaymentAttempt, Refund

SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELLED = "cancelled"
PENDING = "pending"


@dataclass(frozen=True)
class Outcome:
    """What the provider says happened to one attempt."""

    status: str  # SUCCEEDED, FAILED, CANCELLED or PENDING
    amount: int | None = None
    currency: str = ""
    reference: str = ""
    failure_code: str = ""
    failure_message: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def is_final(self) -> bool:
        return self.status != PENDING


@dataclass(frozen=True)
class ProviderRefund:
    """The provider's answer to a refund request: its refund id, and whether
    the money is back already (SUCCEEDED) or will be confirmed later (PENDING,
    by webhook)."""

    reference: str
    status: str = SUCCEEDED


@dataclass(frozen=True)
class RefundNotice:
    """What a webhook says about one refund. `refund_id` is leb's refund
    public id when the provider echoes it back (metadata, custom id);
    otherwise `reference` (the provider's refund id) finds it. `total` is the
    amount refunded on the payment so far, when the provider says only that."""

    status: str  # SUCCEEDED, FAILED or PENDING
    reference: str = ""
    refund_id: str = ""
    amount: int | None = None
    currency: str = ""
    total: int | None = None


@dataclass(frozen=True)
class WebhookEvent:
    """A verified notification. `attempt_id` is the attempt's public id when the
    provider tells us; otherwise `reference` finds it."""

    provider: str
    event_id: str
    type: str
    payload_sha256: str
    attempt_id: str = ""
    reference: str = ""
    outcome: Outcome | None = None
    refunds: tuple[RefundNotice, ...] = ()


@dataclass(frozen=True)
class SavedCard:
    """What a provider gives back after tokenising a card for later use."""

    customer_reference: str
    method_reference: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int


@dataclass(frozen=True)
class SetupStart:
    """Where to send the browser to save a card, and the provider's handle on it."""

    redirect_url: str
    reference: str


CAPTURE = "capture"
REFUND = "refund"


@dataclass(frozen=True)
class ProviderTransaction:
    """One movement of money as the provider's own books show it, for the
    daily settlement. `reference` is the provider's id of the payment it
    belongs to (the one leb stores on the attempt); `attempt_id` is leb's
    attempt id when the provider echoes it back. Amounts are positive minor
    units: a refund's kind says it went the other way."""

    transaction_id: str
    kind: str  # CAPTURE or REFUND
    amount: int
    currency: str
    occurred_at: datetime
    reference: str = ""
    attempt_id: str = ""
    fee: int = 0
    payout_id: str = ""
    pending: bool = False


class PaymentProviderError(Exception):
    """The provider could not be reached or refused a request."""

    def __init__(self, message: str | _StrPromise, *, code: str = "provider_error") -> None:
        super().__init__(str(message))
        self.message = message
        self.code = code


class WebhookError(Exception):
    """A notification that must not be processed; `status` is the HTTP answer."""

    status = 400
    title = _("Invalid webhook")

    def __init__(self, detail: str | _StrPromise) -> None:
        super().__init__(str(detail))
        self.detail = detail


class UnparseableWebhook(WebhookError):
    status = 400
    title = _("Unreadable webhook")


class ForgedWebhook(WebhookError):
    status = 401
    title = _("Webhook signature does not match")


class StaleWebhook(WebhookError):
    status = 401
    title = _("Webhook timestamp outside the tolerance")


def payload_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


class PaymentProvider(ABC):
    name: str = ""
    label: str | _StrPromise = ""

    @abstractmethod
    def start_checkout(
        self, order: TopUpOrder, attempt: PaymentAttempt, return_url: str, cancel_url: str
    ) -> str:
        """Open a checkout at the provider; return where to send the browser.
        May set attempt.provider_reference / provider_data (the caller saves)."""

    @abstractmethod
    def parse_webhook(self, request: HttpRequest) -> WebhookEvent:
        """Verify and decode a notification, or raise a WebhookError."""

    @abstractmethod
    def fetch_status(self, attempt: PaymentAttempt) -> Outcome:
        """Ask the provider where the attempt stands now."""

    @abstractmethod
    def refund(
        self, attempt: PaymentAttempt, amount: int, *, idempotency_key: str, refund_id: str
    ) -> ProviderRefund:
        """Give `amount` minor units of the payment back, under
        `idempotency_key` (the same for every try of one refund, so the
        provider refunds it once). `refund_id` is leb's refund public id, sent
        along where the provider echoes it in its webhooks. Raises
        PaymentProviderError when the refund was refused or not answered."""

    def fetch_refund(self, refund: Refund) -> ProviderRefund:
        """Ask the provider where one of leb's refunds stands now: SUCCEEDED
        (the money is back), PENDING (still on its way) or FAILED. For a refund
        whose webhook never came. Raises PaymentProviderError when the
        provider cannot be asked (code "not_supported" when it cannot be asked
        at all)."""
        raise PaymentProviderError(
            _("This payment provider cannot be asked about a refund."), code="not_supported"
        )

    # --- Saved methods and off-session charges (only where can_save_methods) ---

    can_save_methods: bool = False

    def start_setup(
        self,
        *,
        setup_id: str,
        customer_reference: str,
        email: str,
        return_url: str,
        cancel_url: str,
    ) -> SetupStart:
        """Open the provider's hosted page that saves a card for later."""
        raise PaymentProviderError(
            _("This payment method cannot be saved for later."), code="not_supported"
        )

    def finish_setup(self, reference: str) -> SavedCard | None:
        """The saved card once the payer completed the hosted page; None while
        they have not. Raises PaymentProviderError when it failed."""
        raise PaymentProviderError(
            _("This payment method cannot be saved for later."), code="not_supported"
        )

    def charge_saved(
        self,
        attempt: PaymentAttempt,
        *,
        customer_reference: str,
        method_reference: str,
        idempotency_key: str,
    ) -> Outcome:
        """Charge a saved method without the payer present (off-session). May
        set attempt.provider_reference / provider_data (the caller saves).
        Raises PaymentProviderError when the provider could not be reached."""
        raise PaymentProviderError(
            _("This payment method cannot be saved for later."), code="not_supported"
        )

    def detach_saved(self, *, customer_reference: str, method_reference: str) -> None:
        """Forget a saved method at the provider (best effort)."""
        return None

    # --- Settlement ------------------------------------------------------------

    def list_transactions(
        self, day_start: datetime, day_end: datetime
    ) -> list[ProviderTransaction]:
        """Every capture and refund the provider booked in [day_start, day_end).
        Raises PaymentProviderError when the provider cannot be asked."""
        raise PaymentProviderError(
            _("This payment provider cannot list its transactions for settlement."),
            code="not_supported",
        )


BUILTIN = {
    "sandbox": "leb.payments.providers.sandbox.SandboxProvider",
    "stripe": "leb.payments.providers.stripe.StripeProvider",
    "paypal": "leb.payments.providers.paypal.PayPalProvider",
}


def default_provider_name() -> str:
    return str(getattr(settings, "PAYMENT_PROVIDER", "sandbox"))


def enabled_provider_names() -> list[str]:
    """PAYMENT_PROVIDERS lists every enabled provider; the default is always one."""
    names = list(getattr(settings, "PAYMENT_PROVIDERS", []) or [])
    default = default_provider_name()
    if default not in names:
        names.insert(0, default)
    return names


@cache
def _load(path: str) -> PaymentProvider:
    provider: PaymentProvider = import_string(path)()
    return provider


def saving_provider_names() -> list[str]:
    """The enabled providers that can save a card for later charges."""
    names = []
    for name in enabled_provider_names():
        try:
            if get_provider(name).can_save_methods:
                names.append(name)
        except (LookupError, ImproperlyConfigured):
            continue
    return names


def get_provider(name: str) -> PaymentProvider:
    """The enabled provider called `name`; LookupError when it is not enabled."""
    if name not in enabled_provider_names():
        raise LookupError(name)
    paths = {**BUILTIN, **getattr(settings, "PAYMENT_PROVIDER_CLASSES", {})}
    if name not in paths:
        raise ImproperlyConfigured(f"Unknown payment provider {name!r}")
    return _load(paths[name])
