"""Support pages: contact form, report-this-top-up, the user's tickets and threads."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_http_methods, require_safe

from leb.common import ratelimit
from leb.common.formatting import user_timezone
from leb.payments.actions import failure_message
from leb.payments.models import PaymentAttempt, RefundStatus
from leb.topups.models import TopUpOrder

from .actions import do_open_ticket, do_reply
from .forms import FraudReportForm, ReplyForm, TicketForm
from .models import Dispute, DisputeEvent, DisputeEventKind, Ticket, TicketCategory
from .tokens import make_token, ticket_from_token

PAGE_SIZE = 20
PAYMENT_SESSION_KEY = "payments_attempts"  # written by leb.payments.views

private = cache_control(private=True, no_store=True)


def _rate(name: str, default: str) -> tuple[int, int]:
    """(count, seconds) from a "count/seconds" setting."""
    raw = str(getattr(settings, name, default) or default)
    count, _sep, seconds = raw.partition("/")
    return int(count), max(1, int(seconds or 3600))


def _within_limit(request: HttpRequest, scope: str, setting: str, default: str) -> bool:
    limit, window = _rate(setting, default)
    keys = [f"ip:{ratelimit.client_ip(request)}"]
    if request.user.is_authenticated:
        keys.append(f"user:{request.user.pk}")
    # Count every key, so one cannot be spent while another is already over.
    results = [ratelimit.hit(scope, key, limit, window) for key in keys]
    return all(results)


def _after_open(request: HttpRequest, ticket: Ticket) -> HttpResponseRedirect:
    if ticket.user_id is not None:
        messages.success(request, _("Your message was sent. We will answer on this page."))
        return redirect("support:ticket", ticket.public_id)
    messages.success(
        request,
        _(
            "Your message was sent. Bookmark this page: its address is your private link "
            "to our answer."
        ),
    )
    return redirect("support:guest_thread", make_token(ticket))


def _ticket_form_page(
    request: HttpRequest,
    form: TicketForm,
    template: str,
    context: dict[str, Any],
    order: TopUpOrder | None = None,
) -> HttpResponse:
    status = 200
    context = {**context, "form": form, "message": ""}
    if request.method == "POST":
        status = 400
        if form.is_valid():
            if not _within_limit(request, "support-ticket", "SUPPORT_TICKET_RATE", "5/3600"):
                context["message"] = _(
                    "You have sent several messages in a short time. We have them all; "
                    "please wait an hour before sending another one."
                )
                return render(request, template, context, status=429)
            data = form.cleaned_data
            try:
                ticket = do_open_ticket(
                    user=request.user,
                    subject=data["subject"],
                    category=TicketCategory.TOPUP if order else data["category"],
                    body=data["message"],
                    contact_email=data.get("contact_email", ""),
                    contact_phone=data.get("contact_phone", ""),
                    line=order.line if order else data.get("line"),
                    order=order or data.get("order"),
                )
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                return _after_open(request, ticket)
    return render(request, template, context, status=status)


@require_http_methods(["GET", "HEAD", "POST"])
@private
def contact(request: HttpRequest) -> HttpResponse:
    initial = {}
    if request.GET.get("category") in TicketCategory.values:
        initial["category"] = request.GET["category"]
    data = request.POST if request.method == "POST" else None
    form = TicketForm(data, user=request.user, initial=initial, tz=user_timezone(request))
    return _ticket_form_page(request, form, "support/contact.html", {})


def fraud_report_body(data: dict[str, Any]) -> str:
    """The ticket's first message: what was checked and what the seller said,
    labelled so staff see at a glance what to look up."""
    rows = [
        (_("Checked"), data["searched"]),
        (_("Seller's name"), data.get("seller_name", "")),
        (_("Seller's shop address, handle or number"), data.get("seller_contact", "")),
    ]
    facts = "\n".join(f"{label}: {value.strip()}" for label, value in rows if value.strip())
    return f"{facts}\n\n{data['message'].strip()}"


@require_http_methods(["GET", "HEAD", "POST"])
@private
def report_fraud(request: HttpRequest) -> HttpResponse:
    """Report a seller who may be posing as an agent (linked from the agent check)."""
    template = "support/report_fraud.html"
    if request.method != "POST":
        initial = {"searched": str(request.GET.get("q", ""))[:200]}
        form = FraudReportForm(user=request.user, initial=initial)
        return render(request, template, {"form": form, "message": ""})
    form = FraudReportForm(request.POST, user=request.user)
    context: dict[str, Any] = {"form": form, "message": ""}
    if not form.is_valid():
        return render(request, template, context, status=400)
    if not _within_limit(request, "support-ticket", "SUPPORT_TICKET_RATE", "5/3600"):
        context["message"] = _(
            "You have sent several messages in a short time. We have them all; "
            "please wait an hour before sending another one."
        )
        return render(request, template, context, status=429)
    data = form.cleaned_data
    try:
        ticket = do_open_ticket(
            user=request.user,
            subject=(_("Suspected fake agent: %(searched)s") % {"searched": data["searched"]})[
                :200
            ],
            category=TicketCategory.FRAUD,
            body=fraud_report_body(data),
            contact_email=data.get("contact_email", ""),
            contact_phone=data.get("contact_phone", ""),
        )
    except ValidationError as exc:
        form.add_error(None, exc)
        return render(request, template, context, status=400)
    return _after_open(request, ticket)


def _reportable_order(request: HttpRequest, order_id: UUID) -> TopUpOrder:
    """The order, if this visitor may talk about it: its customer, its line's
    owner, or the browser that paid for it. Anyone else sees a 404."""
    order = (
        TopUpOrder.objects.select_related("line__phone_number").filter(public_id=order_id).first()
    )
    if order is None:
        raise Http404
    user = request.user
    if user.is_authenticated and user.pk in (order.customer_id, order.line.owner_id):
        return order
    known = [str(a) for a in request.session.get(PAYMENT_SESSION_KEY, [])]
    if known:
        attempts = PaymentAttempt.objects.filter(order=order).values_list("public_id", flat=True)
        if any(str(public_id) in known for public_id in attempts):
            return order
    raise Http404


@require_http_methods(["GET", "HEAD", "POST"])
@private
def report_topup(request: HttpRequest, order_id: UUID) -> HttpResponse:
    order = _reportable_order(request, order_id)
    reference = order.receipt_number or str(order.public_id)[:8].upper()
    initial = {"subject": _("Problem with top-up %(reference)s") % {"reference": reference}}
    data = request.POST if request.method == "POST" else None
    form = TicketForm(data, user=request.user, order=order, initial=initial)
    context = {"order": order, "reference": reference, "reason": _failure_reason(order)}
    return _ticket_form_page(request, form, "support/report_topup.html", context, order)


def _failure_reason(order: TopUpOrder) -> str:
    """Why the top-up failed, in the reader's language: the provider's code
    mapped to leb's wording, else the recorded reason (leb's own English text,
    translated now), never a provider's raw message."""
    if not order.failure_reason:
        return ""
    recorded = _(order.failure_reason)
    attempt = (
        PaymentAttempt.objects.filter(order=order).exclude(failure_code="").order_by("-pk").first()
    )
    return failure_message(attempt.failure_code, recorded) if attempt else recorded


@require_safe
@login_required
@private
def ticket_list(request: HttpRequest) -> HttpResponse:
    user: Any = request.user  # signed in: login_required
    tickets = (
        Ticket.objects.filter(user=user)
        .select_related("line__phone_number")
        .annotate(message_count=Count("messages"))
        .order_by("-updated_at", "-pk")
    )
    page = Paginator(tickets, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "support/list.html", {"page": page})


def _thread(request: HttpRequest, ticket: Ticket, *, guest: bool) -> HttpResponse:
    form = ReplyForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        status = 400
        if not _within_limit(request, "support-reply", "SUPPORT_REPLY_RATE", "30/3600"):
            form.add_error(None, _("Too many messages in a short time. Please try again later."))
            status = 429
        elif form.is_valid():
            try:
                do_reply(
                    ticket,
                    body=form.cleaned_data["message"],
                    author=None if guest else request.user,
                    guest=guest,
                )
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                messages.success(request, _("Your reply was sent."))
                return redirect(request.path)
    thread: list[Any] = list(ticket.messages.all())
    dispute = Dispute.objects.filter(ticket=ticket).select_related("order").first()
    if dispute is not None:
        # The dispute's steps, between the messages in the order they happened.
        events = list(dispute.events.select_related("refund"))
        # A failed refund is said while it is still failed (staff ask the
        # provider again), once per refund, at its latest failure; once a
        # retry succeeds only the confirmation is left.
        latest_failure = {
            event.refund_id: event.pk
            for event in events
            if event.kind == DisputeEventKind.REFUND_FAILED
        }
        thread += [
            event
            for event in events
            if event.kind != DisputeEventKind.REFUND_FAILED
            or (
                latest_failure.get(event.refund_id) == event.pk
                and event.refund is not None
                and event.refund.status == RefundStatus.FAILED
            )
        ]
        thread.sort(key=lambda item: (item.created_at, isinstance(item, DisputeEvent)))
    context = {
        "dispute": dispute,
        "ticket": ticket,
        "thread": thread,
        "form": form,
        "guest": guest,
        "private_link": request.build_absolute_uri(request.path) if guest else "",
    }
    return render(request, "support/thread.html", context, status=status)


@require_http_methods(["GET", "HEAD", "POST"])
@login_required
@private
def ticket_detail(request: HttpRequest, ticket_id: UUID) -> HttpResponse:
    user: Any = request.user  # signed in: login_required
    ticket = (
        Ticket.objects.select_related("line__phone_number", "order")
        .filter(public_id=ticket_id, user=user)
        .first()
    )
    if ticket is None:
        # Someone else's ticket looks exactly like one that does not exist.
        raise Http404
    return _thread(request, ticket, guest=False)


@require_http_methods(["GET", "HEAD", "POST"])
@private
def guest_thread(request: HttpRequest, token: str) -> HttpResponse:
    ticket = ticket_from_token(token)
    if ticket is None:
        raise Http404
    return _thread(request, ticket, guest=True)
