"""Receipt signatures: anyone holding a receipt can check it with leb, and
nobody without the key can make one leb will confirm."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from django.conf import settings
from django.utils.crypto import constant_time_compare, salted_hmac

from leb.topups.models import TopUpOrder

# Fixed: changing it invalidates every QR code already printed.
SALT = "leb.receipts.verify.v1"


def _message(receipt_number: str, price: int, currency: str, fulfilled_at: datetime) -> str:
    # Only facts that never change once a receipt exists; a refund keeps them.
    moment = fulfilled_at.astimezone(UTC).isoformat(timespec="microseconds")
    return "|".join([receipt_number, str(int(price)), currency.upper(), moment])


def _keys() -> list[str]:
    # The fallbacks keep printed receipts verifiable while SECRET_KEY rotates.
    return [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]


def _sign(order: TopUpOrder, secret: str) -> str:
    assert order.receipt_number and order.fulfilled_at
    message = _message(order.receipt_number, order.price, order.currency, order.fulfilled_at)
    digest = salted_hmac(SALT, message, secret=secret, algorithm="sha256").digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def signature(order: TopUpOrder) -> str:
    return _sign(order, _keys()[0])


def is_genuine(order: TopUpOrder, candidate: str) -> bool:
    if not order.receipt_number or order.fulfilled_at is None:
        return False
    return any(constant_time_compare(_sign(order, key), candidate) for key in _keys())
