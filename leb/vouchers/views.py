"""Voucher redemption in the portal, for signed-in subscribers and guests.

Guests may top up any number with a voucher, as with an online top-up; only
the line's owner sees its balance on the result page.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from leb.catalog.quotes import Quote, days_added_sentence
from leb.common import clock, ratelimit
from leb.common.formatting import format_local_date, user_timezone
from leb.ledger.queries import balance_of
from leb.lines.models import Line, LineStatus
from leb.lines.queries import live_line_for_number
from leb.receipts.queries import verify_path
from leb.topups.models import OrderStatus, TopUpOrder

from .actions import VoucherRefused, do_redeem_voucher
from .forms import RedeemForm

SESSION_KEY = "vouchers_redeemed"
# Refusals about the PIN itself are shown under the PIN field.
PIN_CODES = frozenset({"pin_format", "pin_invalid", "voucher_expired", "voucher_blocked"})


def _own_lines(request: HttpRequest) -> list[Line]:
    if not request.user.is_authenticated:
        return []
    return list(
        Line.objects.filter(owner=request.user)
        .exclude(status__in=[LineStatus.TERMINATED, LineStatus.INVENTORY])
        .select_related("phone_number")
        .order_by("pk")
    )


def _page(request: HttpRequest, form: RedeemForm, status: int = 200) -> HttpResponse:
    return render(request, "vouchers/redeem.html", {"form": form}, status=status)


def _status_of(code: str) -> int:
    return {
        "locked": 429,
        "line_not_eligible": 409,
        "currency_mismatch": 409,
        "adds_nothing": 409,
    }.get(code, 422)


@require_http_methods(["GET", "POST"])
def redeem(request: HttpRequest) -> HttpResponse:
    lines = _own_lines(request)
    if request.method != "POST":
        return _page(request, RedeemForm(lines=lines))
    form = RedeemForm(request.POST, lines=lines)
    if not form.is_valid():
        return _page(request, form, status=400)
    ip = ratelimit.client_ip(request)
    line = form.cleaned_data["own_line"]
    if line is None:
        limit, window = ratelimit.quick_check_limit()
        if not ratelimit.hit("vouchers-number", ip, limit, window):
            form.add_error(
                "number",
                _(
                    "You have entered many numbers in a short time. "
                    "Please wait a minute and try again."
                ),
            )
            return _page(request, form, status=429)
        line = live_line_for_number(form.cleaned_data["number"])
        if line is None:
            form.add_error(
                "number",
                _("We could not find a leb line with this number. Check the number and try again."),
            )
            return _page(request, form, status=404)
    user = request.user if request.user.is_authenticated else None
    keys = {"ip": ip, "line": str(line.pk)}
    if user is not None:
        keys["user"] = str(user.pk)
    try:
        redemption = do_redeem_voucher(
            line=line,
            pin=form.cleaned_data["pin"],
            channel="web",
            lockout_keys=keys,
            now=clock.now(),
            customer=user,
        )
    except VoucherRefused as exc:
        code = str(exc.code or "")
        form.add_error("pin" if code in PIN_CODES else None, exc.messages)
        return _page(request, form, status=_status_of(code))
    request.session[SESSION_KEY] = redemption.order.pk
    return redirect("vouchers:done")


@require_GET
def done(request: HttpRequest) -> HttpResponse:
    order_id = request.session.get(SESSION_KEY)
    order = (
        TopUpOrder.objects.select_related(
            "line__phone_number", "line__wallet", "line__policy", "plan", "voucher"
        )
        .filter(pk=order_id, status__in=[OrderStatus.FULFILLED, OrderStatus.REFUNDED])
        .first()
        if isinstance(order_id, int)
        else None
    )
    if order is None:
        return redirect("vouchers:redeem")
    line = order.line
    user = request.user
    is_owner = bool(user.is_authenticated and line.owner_id == user.pk)
    mine = bool(user.is_authenticated and (is_owner or order.customer_id == user.pk))
    context: dict[str, Any] = {
        "order": order,
        "line": line,
        "voucher": order.voucher,
        "is_owner": is_owner,
        "receipt_url": (
            reverse("receipts:detail", args=[order.receipt_number]) if mine else verify_path(order)
        ),
    }
    if is_owner and line.wallet_id:
        context["balance"] = balance_of(line.wallet)  # type: ignore[arg-type]
    frozen = Quote.from_dict(order.quote)
    context["quote"] = frozen
    context["days_text"] = days_added_sentence(
        frozen,
        date=format_local_date(frozen.new_valid_until, user_timezone(request)),
        cap_days=line.policy.max_validity_days,
        done=True,
    )
    return render(request, "vouchers/done.html", context)
