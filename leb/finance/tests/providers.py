"""Test-only payment providers registered through PAYMENT_PROVIDER_CLASSES."""

from __future__ import annotations

from datetime import datetime

from leb.payments.providers.base import (
    PaymentProvider,
    PaymentProviderError,
    ProviderTransaction,
)
from leb.payments.providers.sandbox import SandboxProvider


class BareProvider(SandboxProvider):
    """A provider that never learnt to list its transactions."""

    name = "bare"
    list_transactions = PaymentProvider.list_transactions


class DownProvider(SandboxProvider):
    name = "down"

    def list_transactions(
        self, day_start: datetime, day_end: datetime
    ) -> list[ProviderTransaction]:
        raise PaymentProviderError("connection refused", code="unreachable")
