"""Receipts: the owner's page, PDF and history; a public verification page."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from babel.numbers import get_currency_precision
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_safe

from leb.common.formatting import format_phone, user_timezone
from leb.receipts.labels import payment_method_label
from leb.topups.models import OrderStatus, TopUpOrder

from . import pdf, qr, signing
from .forms import HistoryFilterForm
from .queries import (
    build_receipt,
    days_added,
    days_text,
    guest_path,
    history,
    last_digits,
    order_label,
    receipt_by_number,
    receipt_for_user,
    seller_of,
    seller_sentence,
)

PAGE_SIZE = 20
# Characters a spreadsheet may read as the start of a formula.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

private = cache_control(private=True, no_store=True)


def _own_receipt(request: HttpRequest, receipt_number: str) -> TopUpOrder:
    order = receipt_for_user(request.user, receipt_number)
    if order is None:
        # Someone else's receipt looks exactly like one that does not exist.
        raise Http404
    return order


@require_safe
@login_required
@private
def receipt_detail(request: HttpRequest, receipt_number: str) -> HttpResponse:
    order = _own_receipt(request, receipt_number)
    return _receipt_page(request, order, guest=False)


def _receipt_page(request: HttpRequest, order: TopUpOrder, *, guest: bool) -> HttpResponse:
    receipt = build_receipt(order)
    context = {
        "receipt": receipt,
        "order": order,
        "facts": receipt.facts(user_timezone(request), translation.get_language(), guest=guest),
        "guest": guest,
        "pdf_url": guest_path(order, pdf=True)
        if guest
        else reverse("receipts:pdf", args=[order.receipt_number]),
        "qr_svg": qr.svg(receipt.verify_url, _("QR code to check this receipt")),
    }
    return render(request, "receipts/detail.html", context)


def _pdf_response(request: HttpRequest, order: TopUpOrder, *, guest: bool) -> HttpResponse:
    content = pdf.render(build_receipt(order), user_timezone(request), guest=guest)
    response = HttpResponse(content, content_type="application/pdf")
    filename = f"leb-receipt-{order.receipt_number}.pdf"
    response["Content-Disposition"] = f'inline; filename="{filename}"'
    return response


@require_safe
@login_required
@private
def receipt_pdf(request: HttpRequest, receipt_number: str) -> HttpResponse:
    return _pdf_response(request, _own_receipt(request, receipt_number), guest=False)


def _guest_order(request: HttpRequest, token: str) -> TopUpOrder | HttpResponse:
    """The order a guest link names, or the page that says why it does not work."""
    try:
        receipt_number = signing.receipt_number_from_guest_token(token)
    except signing.GuestLinkExpired:
        return _guest_refused(
            request,
            _(
                "This receipt link has expired. Sign in to see your receipts, or check "
                "the receipt with the code printed on it."
            ),
            status=403,
        )
    except signing.GuestLinkInvalid:
        return _guest_refused(request, _("This receipt link is not valid."), status=404)
    order = receipt_by_number(receipt_number)
    if order is None:
        return _guest_refused(request, _("This receipt link is not valid."), status=404)
    return order


def _guest_refused(request: HttpRequest, message: str, *, status: int) -> HttpResponse:
    response = render(request, "receipts/guest_refused.html", {"message": message}, status=status)
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


@require_safe
@private
def guest_receipt(request: HttpRequest, token: str) -> HttpResponse:
    """A receipt for whoever holds its signed link (a guest who paid without
    an account): no balance, the number's last digits, no payment reference."""
    order = _guest_order(request, token)
    if isinstance(order, HttpResponse):
        return order
    response = _receipt_page(request, order, guest=True)
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


@require_safe
@private
def guest_receipt_pdf(request: HttpRequest, token: str) -> HttpResponse:
    order = _guest_order(request, token)
    if isinstance(order, HttpResponse):
        return order
    response = _pdf_response(request, order, guest=True)
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


@require_safe
def verify(request: HttpRequest, receipt_number: str, signature: str) -> HttpResponse:
    order = receipt_by_number(receipt_number)
    genuine = order is not None and signing.is_genuine(order, signature)
    context: dict[str, Any] = {"genuine": genuine, "receipt_number": receipt_number}
    if genuine:
        assert order is not None
        context.update(
            order=order,
            validity_days=days_added(order),
            days=days_text(order),
            number_ending=last_digits(order.line.msisdn),
            refunded=order.status == OrderStatus.REFUNDED,
        )
        seller = seller_of(order)
        if seller.code:
            context.update(seller=seller, seller_sentence=seller_sentence(seller))
    else:
        # Unknown and forged look the same, so the page is no oracle for
        # which receipt numbers exist.
        context["receipt_number"] = ""
    response = render(request, "receipts/verify.html", context, status=200 if genuine else 404)
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


def _filtered(request: HttpRequest) -> tuple[HistoryFilterForm, Any]:
    form = HistoryFilterForm(request.GET or None, user=request.user)
    filters: dict[str, Any] = {}
    if form.is_bound and form.is_valid():
        filters = {k: v for k, v in form.cleaned_data.items() if v}
    orders = history(request.user, tz=user_timezone(request), **filters)
    return form, orders


@require_safe
@login_required
@private
def history_view(request: HttpRequest) -> HttpResponse:
    form, orders = _filtered(request)
    page = Paginator(orders, PAGE_SIZE).get_page(request.GET.get("page"))
    for order in page.object_list:
        order.method_label = payment_method_label(order)
    query = request.GET.copy()
    query.pop("page", None)
    context = {"form": form, "page": page, "query": query.urlencode()}
    return render(request, "receipts/history.html", context)


def csv_safe(value: Any) -> str:
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_PREFIXES):
        return "'" + text
    return text


def major_units(amount_minor: int, currency: str) -> str:
    digits = get_currency_precision(currency.upper())
    return f"{Decimal(int(amount_minor)).scaleb(-digits):.{digits}f}"


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_rows(orders: Any, request: HttpRequest) -> Iterator[str]:
    tz = user_timezone(request)
    language = translation.get_language()
    writer = csv.writer(_Echo())
    # The BOM makes Excel read the file as UTF-8 (Chinese plan names).
    yield "\ufeff"
    yield writer.writerow(
        [
            _("Receipt number"),
            _("Date"),
            _("Number"),
            _("Plan"),
            _("Price"),
            _("Currency"),
            _("Status"),
            _("Payment"),
        ]
    )
    for order in orders.iterator(chunk_size=500):
        row = [
            order.receipt_number or "",
            order.happened_at.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
            format_phone(order.line.msisdn),
            order_label(order, language),
            major_units(order.price, order.currency),
            order.currency,
            str(order.get_status_display()),
            payment_method_label(order) if order.payment_provider else "",
        ]
        yield writer.writerow([csv_safe(cell) for cell in row])


@require_safe
@login_required
@private
def export_csv(request: HttpRequest) -> StreamingHttpResponse:
    _form, orders = _filtered(request)
    response = StreamingHttpResponse(
        _csv_rows(orders, request), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = 'attachment; filename="leb-top-ups.csv"'
    return response
