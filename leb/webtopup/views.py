"""Online top-up pages: find the line, choose, confirm, hand over to payments.

Nothing is written before the subscriber presses "Pay": the pages before it
only read and price. Guests top up by number and never see a balance.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from babel.numbers import get_currency_precision
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from leb.catalog.models import FreeAmountRule, Plan
from leb.catalog.quotes import Quote, QuoteError, days_added_sentence, quote
from leb.common import clock, ratelimit
from leb.common.formatting import format_local_date, format_money, user_timezone
from leb.ledger.queries import balance_of
from leb.lines import lifecycle
from leb.lines.models import Line, LineStatus
from leb.lines.queries import live_line_for_number
from leb.payments.providers.base import (
    default_provider_name,
    enabled_provider_names,
    get_provider,
)
from leb.topups.actions import do_create_order
from leb.topups.models import TopUpOrder

from . import tokens
from .forms import AMOUNT, ChoiceForm, NumberForm
from .tokens import Choice, Ticket

CHANNEL = "web"
# Which form field a pricing refusal belongs to, by QuoteError code prefix.
_ERROR_FIELDS = {"promo_": "promo_code", "amount_": "amount"}


class LinkProblem(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def _problem(request: HttpRequest, problem: LinkProblem) -> HttpResponse:
    return render(
        request, "webtopup/problem.html", {"message": problem.message}, status=problem.status
    )


def _unusable_reason(line: Line, now: datetime) -> str:
    """Why this line cannot be topped up now; empty when it can."""
    status = lifecycle.effective_status(line, now)
    if status == LineStatus.TERMINATED:
        return _("This line has been terminated and can no longer be topped up.")
    if status == LineStatus.INVENTORY:
        return _("This line is not activated yet.")
    return ""


def _token_problem(exc: Exception) -> LinkProblem:
    """What to tell someone whose signed link (or hidden field) did not check out."""
    if isinstance(exc, tokens.TokenExpired):
        return LinkProblem(
            _("This top-up page has expired. Please enter the number again."), status=410
        )
    return LinkProblem(_("This top-up link is not valid. Please enter the number again."))


def _line_for_token(token: str, now: datetime) -> Line:
    try:
        line_id = tokens.line_from_token(token)
    except (tokens.TokenExpired, tokens.TokenInvalid) as exc:
        raise _token_problem(exc) from exc
    line = Line.objects.select_related("policy", "phone_number").filter(pk=line_id).first()
    if line is None:
        raise LinkProblem(_("This top-up link is not valid. Please enter the number again."))
    if reason := _unusable_reason(line, now):
        raise LinkProblem(reason, status=409)
    return line


def _same_line(line: Line, choice: Choice) -> None:
    # A choice or ticket made for one line must not be replayed on another.
    if choice.line_id != line.pk:
        raise LinkProblem(_("This top-up link is not valid. Please enter the number again."))


def _is_owner(request: HttpRequest, line: Line) -> bool:
    return bool(request.user.is_authenticated and line.owner_id == request.user.pk)


# --- Step 1: which line ------------------------------------------------------


def _own_lines(request: HttpRequest) -> list[Line]:
    if not request.user.is_authenticated:
        return []
    return list(
        Line.objects.filter(owner=request.user)
        .exclude(status__in=[LineStatus.TERMINATED, LineStatus.INVENTORY])
        .select_related("phone_number")
        .order_by("pk")
    )


def _to_plans(line: Line) -> HttpResponse:
    return redirect("webtopup:plans", token=tokens.line_token(line.pk))


@require_http_methods(["GET", "POST"])
def start(request: HttpRequest) -> HttpResponse:
    now = clock.now()
    picking = request.method == "POST" and "line" in request.POST
    form = NumberForm(request.POST if request.method == "POST" and not picking else None)
    message = ""
    status = 200
    if picking:
        if not request.user.is_authenticated:
            raise Http404
        try:
            line_id = int(request.POST["line"])
        except ValueError as exc:
            raise Http404 from exc
        line = Line.objects.filter(pk=line_id, owner=request.user).first()
        if line is None:
            raise Http404
        message = _unusable_reason(line, now)
        if not message:
            return _to_plans(line)
        status = 409
    elif request.method == "POST":
        limit, window = ratelimit.quick_check_limit()
        if not ratelimit.hit("webtopup-number", ratelimit.client_ip(request), limit, window):
            message = _(
                "You have entered many numbers in a short time. Please wait a minute and try again."
            )
            status = 429
        elif form.is_valid():
            msisdn = form.cleaned_data["number"]
            line = live_line_for_number(msisdn)
            if line is None:
                if Line.objects.filter(
                    phone_number__msisdn=msisdn, status=LineStatus.TERMINATED
                ).exists():
                    message = _("This line has been terminated and can no longer be topped up.")
                else:
                    message = _(
                        "We could not find a leb line with this number. "
                        "Check the number and try again."
                    )
            else:
                message = _unusable_reason(line, now)
                if not message:
                    return _to_plans(line)
            status = 404 if line is None else 409
        else:
            status = 400
    context = {"form": form, "message": message, "own_lines": _own_lines(request)}
    return render(request, "webtopup/start.html", context, status=status)


# --- Step 2: what to buy -----------------------------------------------------


@dataclass(frozen=True)
class Offer:
    plan: Plan
    # None when the plan would add nothing to this line: `refusal` says why.
    quote: Quote | None
    refusal: str = ""


# Refusals that depend on this line's validity: the plan is still shown,
# marked with the reason, rather than hidden.
_SHOWN_REFUSALS = frozenset({"adds_nothing"})


def _offers(line: Line, now: datetime) -> list[Offer]:
    """The plans the line can buy on the web now, each priced with the
    automatic promotion it would get; a plan that would add nothing to this
    line is kept, with the reason, so the subscriber sees why."""
    offers = []
    for plan in Plan.objects.filter(currency=line.currency, is_active=True):
        if CHANNEL not in (plan.channels or []):
            continue
        try:
            offers.append(Offer(plan, quote(line, plan, CHANNEL, "", now)))
        except QuoteError as exc:
            if exc.code in _SHOWN_REFUSALS:
                offers.append(Offer(plan, None, " ".join(exc.messages)))
    return offers


def days_text(request: HttpRequest, line: Line, frozen: Quote) -> str:
    """The days a top-up really adds and the date it gives, in plain words."""
    date = format_local_date(frozen.new_valid_until, user_timezone(request))
    return days_added_sentence(frozen, date=date, cap_days=line.policy.max_validity_days)


def _free_amount_rule(line: Line) -> FreeAmountRule | None:
    rule = FreeAmountRule.objects.filter(currency=line.currency, is_active=True).first()
    if rule is None or CHANNEL not in (rule.channels or []):
        return None
    return rule


def _price(line: Line, choice: Choice, now: datetime) -> tuple[Quote, Plan | None]:
    plan = None
    if choice.plan_code:
        plan = Plan.objects.filter(code=choice.plan_code).first()
        if plan is None:
            raise QuoteError(_("This plan is not on sale."), code="plan_inactive")
    target: Plan | int = plan if plan is not None else int(choice.amount or 0)
    return quote(line, target, CHANNEL, choice.promo_code, now), plan


def _add_pricing_error(form: ChoiceForm, exc: ValidationError) -> None:
    code = str(getattr(exc, "code", "") or "")
    field = next((f for prefix, f in _ERROR_FIELDS.items() if code.startswith(prefix)), None)
    for message in exc.messages:
        form.add_error(field, message)


def _plans_page(
    request: HttpRequest,
    line: Line,
    now: datetime,
    form: ChoiceForm | None = None,
    status: int = 200,
) -> HttpResponse:
    offers = _offers(line, now)
    rule = _free_amount_rule(line)
    if form is None:
        form = ChoiceForm(plans=[o.plan for o in offers], rule=rule, currency=line.currency)
    is_owner = _is_owner(request, line)
    context: dict[str, Any] = {
        "line": line,
        "msisdn": line.phone_number.msisdn if line.phone_number else "",
        "status": lifecycle.effective_status(line, now),
        "offers": offers,
        "rule": rule,
        "form": form,
        "token": tokens.line_token(line.pk),
        "is_owner": is_owner,
    }
    if rule is not None:
        context["amount_range"] = {
            "min": format_money(rule.min_amount, line.currency),
            "max": format_money(rule.max_amount, line.currency),
        }
    if is_owner and line.wallet_id:
        context["balance"] = balance_of(line.wallet)  # type: ignore[arg-type]
    return render(request, "webtopup/plans.html", context, status=status)


@require_http_methods(["GET", "POST"])
def plans(request: HttpRequest, token: str) -> HttpResponse:
    now = clock.now()
    try:
        line = _line_for_token(token, now)
    except LinkProblem as problem:
        return _problem(request, problem)
    if request.method != "POST":
        return _plans_page(request, line, now)
    form = ChoiceForm(
        request.POST,
        plans=[o.plan for o in _offers(line, now)],
        rule=_free_amount_rule(line),
        currency=line.currency,
    )
    if not form.is_valid():
        return _plans_page(request, line, now, form, status=400)
    data = form.cleaned_data
    plan: Plan | None = data["plan"]
    choice = Choice(
        line_id=line.pk,
        plan_code=plan.code if plan else "",
        amount=None if plan else data["amount_minor"],
        promo_code=data["promo_code"],
    )
    try:
        _price(line, choice, now)
    except QuoteError as exc:
        _add_pricing_error(form, exc)
        return _plans_page(request, line, now, form, status=400)
    return redirect("webtopup:confirm", token=tokens.line_token(line.pk), choice=choice.to_token())


def _choice_form_with_error(
    line: Line, choice: Choice, now: datetime, exc: ValidationError
) -> ChoiceForm:
    """The plans form as the subscriber filled it, with why it failed."""
    amount = ""
    if choice.amount is not None:
        digits = get_currency_precision(line.currency)
        amount = f"{Decimal(choice.amount).scaleb(-digits):f}"
    form = ChoiceForm(
        {"choice": choice.plan_code or AMOUNT, "amount": amount, "promo_code": choice.promo_code},
        plans=[o.plan for o in _offers(line, now)],
        rule=_free_amount_rule(line),
        currency=line.currency,
    )
    form.is_valid()
    _add_pricing_error(form, exc)
    return form


# --- Step 3: confirm and pay -------------------------------------------------


def terms_of(frozen: Quote) -> str:
    """What the subscriber agrees to; a change in any of these needs a new look."""
    return ":".join(
        str(v)
        for v in (
            frozen.currency,
            frozen.plan_code,
            frozen.list_price,
            frozen.discount,
            frozen.price,
            frozen.credit,
            frozen.bonus_credit,
            frozen.restore_fee,
            frozen.plan_days,
            frozen.bonus_days,
            frozen.promotion_id,
        )
    )


def _providers(amount: str) -> list[dict[str, str]]:
    rows = []
    for index, name in enumerate(enabled_provider_names()):
        try:
            label = str(get_provider(name).label or name)
        except (LookupError, ImproperlyConfigured):
            continue
        if index == 0:
            button = _("Pay %(amount)s") % {"amount": amount}
        else:
            button = _("Pay %(amount)s with %(method)s") % {"amount": amount, "method": label}
        rows.append({"name": name, "label": label, "button": button})
    return rows


def _confirm_page(
    request: HttpRequest,
    line: Line,
    choice: Choice,
    frozen: Quote,
    plan: Plan | None,
    *,
    changed: bool = False,
) -> HttpResponse:
    ticket = Ticket(choice=choice, key=f"web:{uuid.uuid4().hex}", terms=terms_of(frozen))
    amount = format_money(frozen.price, frozen.currency)
    context = {
        "line": line,
        "msisdn": line.phone_number.msisdn if line.phone_number else "",
        "quote": frozen,
        "plan": plan,
        "ticket": ticket.to_token(),
        "token": tokens.line_token(line.pk),
        "choice_token": choice.to_token(),
        "providers": _providers(amount),
        "changed": changed,
        "days_text": days_text(request, line, frozen),
    }
    return render(request, "webtopup/confirm.html", context, status=409 if changed else 200)


@require_http_methods(["GET"])
def confirm(request: HttpRequest, token: str, choice: str) -> HttpResponse:
    now = clock.now()
    try:
        line = _line_for_token(token, now)
        picked = Choice.from_token(choice)
        _same_line(line, picked)
    except (tokens.TokenExpired, tokens.TokenInvalid) as exc:
        return _problem(request, _token_problem(exc))
    except LinkProblem as problem:
        return _problem(request, problem)
    try:
        frozen, plan = _price(line, picked, now)
    except QuoteError as exc:
        form = _choice_form_with_error(line, picked, now, exc)
        return _plans_page(request, line, now, form, status=409)
    return _confirm_page(request, line, picked, frozen, plan)


def _to_payment(order: TopUpOrder, provider: str) -> HttpResponse:
    # 307 keeps the POST (and its CSRF token): payments starts a checkout only on POST.
    url = reverse("payments:start", args=[order.public_id]) + "?provider=" + provider
    return HttpResponseRedirect(url, status=307)


@require_POST
def pay(request: HttpRequest, token: str) -> HttpResponse:
    now = clock.now()
    try:
        line = _line_for_token(token, now)
        ticket = Ticket.from_token(request.POST.get("ticket", ""))
        _same_line(line, ticket.choice)
    except (tokens.TokenExpired, tokens.TokenInvalid) as exc:
        return _problem(request, _token_problem(exc))
    except LinkProblem as problem:
        return _problem(request, problem)
    provider = request.POST.get("provider", "")
    if provider not in enabled_provider_names():
        provider = default_provider_name()
    customer = request.user if request.user.is_authenticated else None

    # A second press of "Pay" goes on with the order the first one made, even
    # if that order's promotion reservation now changes the price.
    existing = TopUpOrder.objects.filter(idempotency_key=ticket.key, line=line).first()
    if existing is not None:
        if existing.customer_id is not None and (
            customer is None or existing.customer_id != customer.pk
        ):
            raise Http404
        return _to_payment(existing, provider)

    choice = ticket.choice
    try:
        frozen, plan = _price(line, choice, now)
    except QuoteError as exc:
        form = _choice_form_with_error(line, choice, now, exc)
        return _plans_page(request, line, now, form, status=409)
    if terms_of(frozen) != ticket.terms:
        return _confirm_page(request, line, choice, frozen, plan, changed=True)
    try:
        order = do_create_order(
            line=line,
            channel=CHANNEL,
            idempotency_key=ticket.key,
            plan=plan,
            amount=None if plan else choice.amount,
            promo_code=choice.promo_code,
            customer=customer,
            now=now,
        )
    except ValidationError as exc:
        form = _choice_form_with_error(line, choice, now, exc)
        return _plans_page(request, line, now, form, status=409)
    return _to_payment(order, provider)
