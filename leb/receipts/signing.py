"""Receipt signatures: anyone holding a receipt can check it with leb, and
nobody without the key can make one leb will confirm."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core import signing
from django.utils.crypto import constant_time_compare, salted_hmac

from leb.common.signing import ClockSigner
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


# --- Guest links ----------------------------------------------------------------
# A guest who paid without an account gets their receipt through a signed,
# dated link from the payment result page. It names one receipt and stops
# working after RECEIPT_GUEST_LINK_DAYS; a new one comes with each visit to the
# result page.
GUEST_SALT = "leb.receipts.guest.v1"


class GuestLinkInvalid(Exception):
    """The link was altered, truncated or made for something else."""


class GuestLinkExpired(Exception):
    """The link was genuine but is too old."""


def guest_link_max_age() -> timedelta:
    return timedelta(days=int(getattr(settings, "RECEIPT_GUEST_LINK_DAYS", 30)))


def _guest_signer() -> ClockSigner:
    return ClockSigner(salt=GUEST_SALT, algorithm="sha256")


def guest_token(order: TopUpOrder) -> str:
    assert order.receipt_number
    return _guest_signer().sign(order.receipt_number)


def receipt_number_from_guest_token(token: str) -> str:
    """The receipt number a guest link names; raises GuestLinkInvalid or
    GuestLinkExpired."""
    try:
        return _guest_signer().unsign(token, max_age=guest_link_max_age().total_seconds())
    except signing.SignatureExpired as exc:
        raise GuestLinkExpired from exc
    except (signing.BadSignature, ValueError) as exc:
        raise GuestLinkInvalid from exc
