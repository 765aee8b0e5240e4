"""The agent portal (/agent/portal/): an agent's people sell top-ups from the
float, read the float and its statement, and (owners) manage the API keys
and the callback URL. Thin: every sale, key and setting goes through the
actions the agent API and the back office use (leb.agents.actions)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from leb.catalog.models import Plan
from leb.common import clock
from leb.lines.models import Line
from leb.receipts.queries import guest_path, verify_path

from . import queries
from .actions import (
    KEY_ID_RE,
    PLAN_CODE_RE,
    PUBLIC_ID_RE,
    AgentQuote,
    AgentRefused,
    do_create_api_key,
    do_revoke_api_key,
    do_rotate_api_key,
    do_sell_from_portal,
    do_set_callback_url,
    key_is_usable,
    offers_for_agent,
    quote_for_agent,
    refresh_topup,
)
from .forms import CallbackForm, ConfirmForm, DateRangeForm, KeyForm, NumberForm, PlanForm
from .members import (
    SaleTicket,
    TokenExpired,
    TokenInvalid,
    line_from_token,
    line_token,
    portal_page,
)
from .models import AgentApiKey, AgentMember, AgentTopUp, AgentTopUpStatus, FailureReason
from .views import region_name

MOVEMENTS_PAGE_SIZE = 25
DEFAULT_MOVEMENT_DAYS = 30


def _context(member: AgentMember, **extra: Any) -> dict[str, Any]:
    return {"member": member, "agent": member.agent, **extra}


def _link_problem(request: HttpRequest, member: AgentMember, message: str) -> HttpResponse:
    return render(
        request,
        "agents/portal/problem.html",
        _context(member, message=message),
        status=400,
    )


def _expired_message() -> str:
    return _("This page was open too long. Enter the number again.")


def _invalid_message() -> str:
    return _("This link is not valid. Start the sale again.")


# --- Overview ----------------------------------------------------------------------


@require_safe
@portal_page()
def home(request: HttpRequest, member: AgentMember) -> HttpResponse:
    recent = list(
        AgentTopUp.objects.filter(agent=member.agent)
        .select_related("order")
        .order_by("-created_at", "-pk")[:10]
    )
    return render(
        request,
        "agents/portal/home.html",
        _context(member, balance=queries.balance(member.agent), recent=recent),
    )


# --- Selling -----------------------------------------------------------------------


@require_http_methods(["GET", "HEAD", "POST"])
@portal_page()
def sell_number(request: HttpRequest, member: AgentMember) -> HttpResponse:
    form = NumberForm(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        if form.is_valid():
            line: Line = form.cleaned_data["msisdn"]
            return redirect("agent-portal:sell_plans", token=line_token(member, line.pk))
        context = _context(member, form=form)
        return render(request, "agents/portal/sell_number.html", context, status=400)
    return render(request, "agents/portal/sell_number.html", _context(member, form=form))


def _line(member: AgentMember, token: str) -> Line:
    line_id = line_from_token(member, token)
    line = Line.objects.select_related("phone_number", "policy").filter(pk=line_id).first()
    if line is None or not line.msisdn:
        raise TokenInvalid
    return line


@require_http_methods(["GET", "HEAD", "POST"])
@portal_page()
def sell_plans(request: HttpRequest, member: AgentMember, token: str) -> HttpResponse:
    try:
        line = _line(member, token)
    except TokenExpired:
        return _link_problem(request, member, _expired_message())
    except TokenInvalid:
        return _link_problem(request, member, _invalid_message())
    offers = offers_for_agent(member.agent, line, clock.now())
    sellable = [offer.plan.code for offer in offers if offer.priced is not None]
    form = PlanForm(request.POST if request.method == "POST" else None, codes=sellable)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            return redirect(
                "agent-portal:sell_quote", token=token, plan_code=form.cleaned_data["plan"]
            )
        status = 400
    context = _context(member, form=form, line=line, offers=offers, token=token)
    return render(request, "agents/portal/sell_plans.html", context, status=status)


def _ticket_for(line: Line, priced: AgentQuote) -> SaleTicket:
    q = priced.quote
    return SaleTicket.new(
        line.pk, priced.plan.code, priced.wholesale, q.days_added, q.new_valid_until.isoformat()
    )


def _same_terms(ticket: SaleTicket, priced: AgentQuote) -> bool:
    q = priced.quote
    return (
        ticket.wholesale == priced.wholesale
        and ticket.days_added == q.days_added
        and ticket.new_valid_until == q.new_valid_until.isoformat()
    )


def _quote_page(
    request: HttpRequest,
    member: AgentMember,
    *,
    token: str,
    line: Line,
    plan: Plan | None,
    priced: AgentQuote | None,
    ticket: SaleTicket | None = None,
    form: ConfirmForm | None = None,
    error: str = "",
    error_code: str = "",
    notice: str = "",
    status: int = 200,
) -> HttpResponse:
    if priced is not None and ticket is None:
        ticket = _ticket_for(line, priced)
    # A retry after "sold a few minutes ago" keeps the box the person ticked.
    allow = bool(form is not None and form.is_valid() and form.cleaned_data["allow_repeat"])
    confirm = ConfirmForm(
        initial={"ticket": ticket.to_token(member) if ticket else "", "allow_repeat": allow}
    )
    context = _context(
        member,
        token=token,
        line=line,
        plan=plan,
        priced=priced,
        quote=priced.quote if priced else None,
        form=confirm,
        error=error,
        error_code=error_code,
        notice=notice,
        ask_repeat=error_code == FailureReason.RECENTLY_TOPPED_UP,
    )
    return render(request, "agents/portal/sell_quote.html", context, status=status)


@require_http_methods(["GET", "HEAD", "POST"])
@portal_page()
def sell_quote(
    request: HttpRequest, member: AgentMember, token: str, plan_code: str
) -> HttpResponse:
    agent = member.agent
    try:
        line = _line(member, token)
    except TokenExpired:
        return _link_problem(request, member, _expired_message())
    except TokenInvalid:
        return _link_problem(request, member, _invalid_message())
    plan = (
        Plan.objects.filter(code=plan_code).first() if PLAN_CODE_RE.fullmatch(plan_code) else None
    )
    page: dict[str, Any] = {"token": token, "line": line, "plan": plan}
    now = clock.now()
    if request.method != "POST":
        try:
            priced = quote_for_agent(agent, line.msisdn, plan_code, now)
        except AgentRefused as exc:
            return _quote_page(
                request, member, **page, priced=None, error=exc.messages[0], status=422
            )
        return _quote_page(request, member, **page, priced=priced)

    form = ConfirmForm(request.POST)
    if not form.is_valid():
        return _link_problem(request, member, _invalid_message())
    try:
        ticket = SaleTicket.from_token(member, form.cleaned_data["ticket"])
    except TokenExpired:
        ticket = None
    except TokenInvalid:
        return _link_problem(request, member, _invalid_message())
    if ticket is not None and (ticket.line_id != line.pk or ticket.plan_code != plan_code):
        return _link_problem(request, member, _invalid_message())
    if ticket is not None:
        done = AgentTopUp.objects.filter(agent=agent, external_id=ticket.external_id).first()
        if done is not None:
            # The same confirm form sent twice: that sale, not a second one.
            return redirect("agent-portal:sale", public_id=done.public_id)
    try:
        priced = quote_for_agent(agent, line.msisdn, plan_code, now)
    except AgentRefused as exc:
        return _quote_page(request, member, **page, priced=None, error=exc.messages[0], status=422)
    if ticket is None:
        notice = _("This page was open too long. Check the terms again, then confirm.")
        return _quote_page(request, member, **page, priced=priced, notice=notice, status=409)
    if not _same_terms(ticket, priced):
        notice = _("The terms of this top-up changed since you saw them. Check them again.")
        return _quote_page(request, member, **page, priced=priced, notice=notice, status=409)
    try:
        result = do_sell_from_portal(
            member,
            external_id=ticket.external_id,
            msisdn=line.msisdn,
            plan_code=plan_code,
            allow_repeat=form.cleaned_data["allow_repeat"],
            now=now,
        )
    except AgentRefused as exc:
        if exc.code == "agent_suspended":
            return redirect("agent-portal:home")
        return _quote_page(
            request,
            member,
            **page,
            priced=priced,
            ticket=ticket,
            form=form,
            error=exc.messages[0],
            error_code=exc.code or "",
            status=422,
        )
    return redirect("agent-portal:sale", public_id=result.topup.public_id)


@require_safe
@portal_page()
def sale(request: HttpRequest, member: AgentMember, public_id: str) -> HttpResponse:
    topup = (
        AgentTopUp.objects.select_related("agent", "order__line__phone_number", "order__plan")
        .filter(agent=member.agent, public_id=public_id)
        .first()
        if PUBLIC_ID_RE.fullmatch(public_id)
        else None
    )
    if topup is None:
        # Another agent's sale looks exactly like one that does not exist.
        raise Http404
    topup = refresh_topup(topup, clock.now())
    order = topup.order
    receipt: dict[str, str] = {}
    if topup.status == AgentTopUpStatus.COMPLETED and order is not None and order.receipt_number:
        receipt = {
            "number": order.receipt_number,
            "page": guest_path(order),
            "pdf": guest_path(order, pdf=True),
            "check": verify_path(order),
        }
    plan = Plan.objects.filter(code=topup.plan_code).first()
    context = _context(member, topup=topup, order=order, receipt=receipt, plan=plan)
    return render(request, "agents/portal/sale.html", context)


# --- The float ---------------------------------------------------------------------


@dataclass(frozen=True)
class Movement:
    row: queries.StatementRow
    label: str

    def __getattr__(self, name: str) -> Any:
        return getattr(self.row, name)


def movement_label(code: str) -> str:
    """What a float movement was, for a person: the statement's codes translated."""
    if code.startswith("reversal:"):
        return _("Reversal")
    labels = {
        "agent.deposit": _("Deposit"),
        "agent.sale": _("Sale"),
        "agent.reserve": _("Held for a two-step top-up"),
    }
    return labels.get(code, code)


def _default_range() -> tuple[date, date]:
    today = timezone.localdate(clock.now())
    return today - timedelta(days=DEFAULT_MOVEMENT_DAYS - 1), today


@require_safe
@portal_page()
def float_view(request: HttpRequest, member: AgentMember) -> HttpResponse:
    start, end = _default_range()
    given = "date_from" in request.GET or "date_to" in request.GET
    form = DateRangeForm(
        request.GET if given else None, initial={"date_from": start, "date_to": end}
    )
    status = 200
    if given:
        if form.is_valid():
            start, end = form.cleaned_data["date_from"], form.cleaned_data["date_to"]
        else:
            status = 400
    found = queries.statement(member.agent, start, end) if status == 200 else None
    page = None
    if found is not None:
        newest_first = [Movement(row, movement_label(row.code)) for row in reversed(found.rows)]
        page = Paginator(newest_first, MOVEMENTS_PAGE_SIZE).get_page(request.GET.get("page"))
    context = _context(
        member,
        balance=queries.balance(member.agent),
        form=form,
        statement=found,
        page=page,
        date_from=start,
        date_to=end,
    )
    return render(request, "agents/portal/float.html", context, status=status)


@require_safe
@portal_page()
def statement_csv(request: HttpRequest, member: AgentMember) -> HttpResponse:
    form = DateRangeForm(request.GET)
    if not form.is_valid():
        context = _context(
            member,
            balance=queries.balance(member.agent),
            form=form,
            statement=None,
            page=None,
        )
        return render(request, "agents/portal/float.html", context, status=400)
    start, end = form.cleaned_data["date_from"], form.cleaned_data["date_to"]
    found = queries.statement(member.agent, start, end)
    response = HttpResponse(
        queries.statement_csv(found, for_spreadsheet=True), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = (
        f'attachment; filename="statement-{member.agent.code}-{start}-{end}.csv"'
    )
    return response


# --- API keys and the callback URL (owners) ----------------------------------------


def _key_state(key: AgentApiKey, now: Any) -> str:
    if key.revoked_at is not None:
        return "revoked"
    if key.valid_until is not None:
        return "rotating" if now < key.valid_until else "expired"
    return "active"


def _own_key(member: AgentMember, key_id: str) -> AgentApiKey:
    key = (
        AgentApiKey.objects.select_related("agent")
        .filter(agent=member.agent, key_id=key_id)
        .first()
        if KEY_ID_RE.fullmatch(key_id)
        else None
    )
    if key is None:
        raise Http404
    return key


@require_http_methods(["GET", "HEAD", "POST"])
@portal_page(owner_only=True)
def keys(request: HttpRequest, member: AgentMember) -> HttpResponse:
    form = KeyForm(request.POST if request.method == "POST" else None)
    if form.is_bound and form.is_valid():
        made = do_create_api_key(
            member.agent, actor=member.actor, label=form.cleaned_data["label"], now=clock.now()
        )
        return render(request, "agents/portal/new_key.html", _context(member, new=made))
    now = clock.now()
    rows = [
        {"key": key, "state": _key_state(key, now), "usable": key_is_usable(key, now)}
        for key in AgentApiKey.objects.filter(agent=member.agent).order_by("-created_at", "-pk")
    ]
    status = 400 if form.is_bound else 200
    return render(
        request, "agents/portal/keys.html", _context(member, rows=rows, form=form), status=status
    )


@require_POST
@portal_page(owner_only=True)
def key_rotate(request: HttpRequest, member: AgentMember, key_id: str) -> HttpResponse:
    key = _own_key(member, key_id)
    try:
        made = do_rotate_api_key(key, actor=member.actor, now=clock.now())
    except ValidationError:
        messages.error(request, _("A revoked key cannot be rotated."))
        return redirect("agent-portal:keys")
    return render(request, "agents/portal/new_key.html", _context(member, new=made, rotated=key))


@require_http_methods(["GET", "HEAD", "POST"])
@portal_page(owner_only=True)
def key_revoke(request: HttpRequest, member: AgentMember, key_id: str) -> HttpResponse:
    key = _own_key(member, key_id)
    if request.method == "POST":
        do_revoke_api_key(key, actor=member.actor, now=clock.now())
        messages.success(
            request,
            _("The key %(key_id)s is revoked: it no longer works.") % {"key_id": key.key_id},
        )
        return redirect("agent-portal:keys")
    return render(request, "agents/portal/key_revoke.html", _context(member, key=key))


@require_http_methods(["GET", "HEAD", "POST"])
@portal_page(owner_only=True)
def callback(request: HttpRequest, member: AgentMember) -> HttpResponse:
    agent = member.agent
    form = CallbackForm(
        request.POST if request.method == "POST" else None,
        initial={"callback_url": agent.callback_url},
    )
    if request.method == "POST":
        if form.is_valid():
            do_set_callback_url(
                agent, form.cleaned_data["callback_url"], actor=member.actor, now=clock.now()
            )
            messages.success(request, _("The callback URL is saved."))
            return redirect("agent-portal:callback")
        return render(
            request, "agents/portal/callback.html", _context(member, form=form), status=400
        )
    return render(request, "agents/portal/callback.html", _context(member, form=form))


# --- The public verification card ----------------------------------------------------


@require_safe
@portal_page()
def card(request: HttpRequest, member: AgentMember) -> HttpResponse:
    public = queries.public_agent(member.agent)
    context = _context(
        member,
        public=public,
        region=region_name(public.region),
        check_url=queries.agent_check_url(public.code),
    )
    return render(request, "agents/portal/card.html", context)
