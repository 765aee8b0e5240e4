"""/api/v1 endpoints of this app, mounted on the one API in leb/apiv1/api.py.
Use leb.api.auth (ANYONE, SIGNED_IN, user_of) and leb.common.problems.Problem."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse
from django.utils.translation import gettext as _
from ninja import Field, Router, Schema

from leb.api.auth import ANYONE, OPTIONAL_SECURITY, user_of
from leb.catalog.quotes import Quote
from leb.catalog.schemas import quote_out
from leb.common import clock
from leb.common.problems import Problem, for_field
from leb.common.schemas import Money, ProblemOut, money
from leb.common.throttles import ClientIPThrottle, client_ip
from leb.ledger.queries import balance_of
from leb.lines.identifiers import format_msisdn, normalize_msisdn
from leb.lines.queries import live_line_for_number
from leb.receipts.queries import verify_url

from .actions import VoucherRefused, do_redeem_voucher

router = Router(tags=["vouchers"])
redeem_throttle = ClientIPThrottle("voucher_redeem", "VOUCHER_API_RATE", "20/m")

PIN_CODES = frozenset({"pin_format", "pin_invalid", "voucher_expired", "voucher_blocked"})
STATUS = {"locked": 429, "line_not_eligible": 409, "currency_mismatch": 409, "adds_nothing": 422}


class RedeemIn(Schema):
    number: str = Field(max_length=32, description="The line's phone number (E.164 or local).")
    pin: str = Field(max_length=40, description="The 16-digit PIN; spaces and dashes are ignored.")


class RedemptionOut(Schema):
    serial: str = Field(description="The voucher's printed serial.")
    msisdn: str
    order_id: uuid.UUID = Field(description="The top-up order the voucher paid for.")
    receipt_number: str
    receipt_url: str = Field(
        description="The receipt page for its owner, otherwise the public verification page."
    )
    valid_until_after: datetime | None
    days_added: int = Field(
        description=(
            "Whole days the voucher really added: fewer than `plan_days` when the line's "
            "validity cap or its reset rule took some, 0 when it added credit only."
        )
    )
    plan_days: int = Field(description="The validity days the voucher's plan or value grants.")
    adds_fewer_days: bool = Field(description="True when `days_added` < `plan_days`.")
    days_added_text: str = Field(
        description="The days added and the new valid-until date, in the request's language."
    )
    balance: Money | None = Field(
        None, description="The line's balance; only when the caller owns the line."
    )
    replayed: bool = Field(description="True when this line had already redeemed this PIN.")


def _site_url(path: str) -> str:
    return settings.SITE_URL.rstrip("/") + path


@router.post(
    "/vouchers/redeem",
    response={
        200: RedemptionOut,
        400: ProblemOut,  # a body that is not JSON
        401: ProblemOut,
        403: ProblemOut,  # a session without its CSRF token
        404: ProblemOut,
        409: ProblemOut,
        422: ProblemOut,
        429: ProblemOut,
    },
    auth=ANYONE,
    throttle=redeem_throttle,
    openapi_extra=OPTIONAL_SECURITY,
    summary="Redeem a voucher",
)
def redeem_voucher(request: HttpRequest, payload: RedeemIn) -> Any:
    """Top up a line with a voucher PIN. Anyone may top up any number; only
    the line's owner gets its balance back. Wrong PINs lock voucher entry
    for the caller's address, account and line (429 with Retry-After). A voucher
    that would add no days and no credit to the line under its validity cap is
    refused (422 `adds_nothing`) and stays unused."""
    with for_field("number"):
        msisdn = normalize_msisdn(payload.number)
    line = live_line_for_number(msisdn)
    if line is None:
        raise Problem(404, "line_not_found", _("No line in service has this number."))
    user = user_of(request)
    keys = {"ip": client_ip(request), "line": str(line.pk)}
    if user is not None:
        keys["user"] = str(user.pk)
    try:
        redemption = do_redeem_voucher(
            line=line,
            pin=payload.pin,
            channel="api",
            lockout_keys=keys,
            now=clock.now(),
            customer=user,
        )
    except VoucherRefused as exc:
        code = str(exc.code or "invalid")
        detail = " ".join(exc.messages)
        field = "pin" if code in PIN_CODES else "number"
        headers = {"Retry-After": str(exc.retry_after)} if code == "locked" else None
        raise Problem(
            STATUS.get(code, 422),
            code,
            detail,
            errors=[{"field": field, "message": detail, "code": code}],
            headers=headers,
        ) from exc
    order = redemption.order
    is_owner = user is not None and line.owner_id == user.pk
    mine = user is not None and (is_owner or order.customer_id == user.pk)
    receipt_url = (
        _site_url(reverse("receipts:detail", args=[order.receipt_number]))
        if mine
        else verify_url(order)
    )
    line.refresh_from_db(fields=["wallet"])
    balance = (
        money(balance_of(line.wallet), line.currency)  # type: ignore[arg-type]
        if is_owner and line.wallet_id
        else None
    )
    frozen = quote_out(
        Quote.from_dict(order.quote), cap_days=line.policy.max_validity_days, done=True
    )
    return {
        "days_added": frozen["days_added"],
        "plan_days": frozen["validity_days"],
        "adds_fewer_days": frozen["adds_fewer_days"],
        "days_added_text": frozen["days_added_text"],
        "serial": redemption.voucher.serial,
        "msisdn": format_msisdn(line.msisdn),
        "order_id": order.public_id,
        "receipt_number": order.receipt_number or "",
        "receipt_url": receipt_url,
        "valid_until_after": order.valid_until_after,
        "balance": balance,
        "replayed": redemption.replayed,
    }
