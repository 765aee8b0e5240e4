"""The agent API (/agent/v1/): signed requests, float-funded top-ups.

Thin: pricing, limits and the books live in leb.agents.actions. Its own
NinjaAPI, so its OpenAPI document and docs page (/agent/v1/docs) describe
only what agents may call."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from ninja import NinjaAPI
from ninja.responses import Status

from leb.common import clock, problems
from leb.common.problems import Problem

from . import queries
from .actions import (
    PUBLIC_ID_RE,
    AgentRefused,
    check_external_id,
    do_confirm_agent_topup,
    do_create_agent_topup,
    quote_for_agent,
    refresh_topup,
)
from .auth import key_throttle, signature_auth
from .models import AgentApiKey, AgentTopUp
from .schemas import (
    BalanceOut,
    ProblemOut,
    QuoteIn,
    QuoteOut,
    StatementOut,
    TopUpIn,
    TopUpOut,
    balance_out,
    quote_out,
    topup_out,
)

DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
STATEMENT_FORMATS = ("json", "csv")

api = NinjaAPI(
    title="leb agent API",
    version="1",
    description=(
        "For authorised agents: quote and sell top-ups paid from your prepaid float. "
        "Every request is signed with HMAC-SHA256 (headers Leb-Key-Id, Leb-Timestamp, "
        "Leb-Nonce, Leb-Signature; see docs/agents.md). Errors are RFC 9457 problem "
        "documents (application/problem+json) with a stable `code`."
    ),
    urls_namespace="agent-v1",
    auth=signature_auth,
    throttle=key_throttle,
    docs_url="/docs",
    openapi_url="/openapi.json",
)
problems.install(api)


def _on_refused(request: HttpRequest, exc: Any) -> HttpResponse:
    message = exc.message % exc.params if exc.params else exc.message
    return problems.problem_response(exc.status, exc.code or "refused", message)


api.add_exception_handler(AgentRefused, _on_refused)

ERRORS: dict[int, Any] = {status: ProblemOut for status in (401, 403, 404, 409, 422, 429)}
# 400: a body that is not JSON.
BODY_ERRORS: dict[int, Any] = {400: ProblemOut, **ERRORS}


def _key(request: HttpRequest) -> AgentApiKey:
    key: AgentApiKey = request.auth  # type: ignore[attr-defined]
    return key


@api.post("/quotes", response={200: QuoteOut, **BODY_ERRORS}, summary="Price a top-up")
def post_quote(request: HttpRequest, payload: QuoteIn) -> Any:
    """What your float would pay (wholesale), the retail value, the credit and
    the validity days really added. Refusals: `invalid_number`, `line_unknown`,
    `line_terminated`, `plan_not_allowed`, `adds_nothing`."""
    agent = _key(request).agent
    return quote_out(quote_for_agent(agent, payload.msisdn, payload.plan_code, clock.now()))


@api.post(
    "/topups", response={200: TopUpOut, 201: TopUpOut, **BODY_ERRORS}, summary="Sell a top-up"
)
def post_topup(request: HttpRequest, payload: TopUpIn) -> Any:
    """Instant: completed (or failed with a `reason`) at once. Two-step: created
    with the wholesale price reserved; confirm before `expires_at`. The same
    `external_id` with the same body returns the first result (200); with a
    different body, 409 `external_id_conflict`. A refused sale is a top-up with
    status `failed` and a reason code: `insufficient_float`, `limit_reached`,
    `line_terminated`, `plan_not_allowed`, `recently_topped_up`, `adds_nothing`."""
    agent = _key(request).agent
    result = do_create_agent_topup(
        agent,
        external_id=payload.external_id,
        msisdn=payload.msisdn,
        plan_code=payload.plan_code,
        mode=payload.mode,
        allow_repeat=payload.allow_repeat,
        now=clock.now(),
    )
    return Status(200 if result.replayed else 201, topup_out(result.topup))


def _own_topup(request: HttpRequest, **lookup: Any) -> AgentTopUp:
    topup = (
        AgentTopUp.objects.select_related("agent", "order")
        .filter(agent=_key(request).agent, **lookup)
        .first()
    )
    if topup is None:
        raise Problem(404, "not_found", _("There is no such top-up."))
    return refresh_topup(topup, clock.now())


@api.post(
    "/topups/{topup_id}/confirm",
    response={200: TopUpOut, **ERRORS},
    summary="Confirm a two-step top-up",
)
def confirm_topup(request: HttpRequest, topup_id: str) -> Any:
    """Completes a two-step top-up. Confirming again returns it; after
    `expires_at`, 409 `topup_expired` (the reservation is released)."""
    topup = do_confirm_agent_topup(_key(request).agent, topup_id, now=clock.now())
    if topup.status == "expired":
        raise Problem(
            409, "topup_expired", _("This top-up expired before it was confirmed; send a new one.")
        )
    return topup_out(topup)


@api.get("/topups/{topup_id}", response={200: TopUpOut, **ERRORS}, summary="One top-up")
def get_topup(request: HttpRequest, topup_id: str) -> Any:
    if not PUBLIC_ID_RE.fullmatch(topup_id):
        raise Problem(404, "not_found", _("There is no such top-up."))
    return topup_out(_own_topup(request, public_id=topup_id))


@api.get("/topups", response={200: TopUpOut, **ERRORS}, summary="A top-up by your external id")
def find_topup(request: HttpRequest, external_id: str = "") -> Any:
    """Learn the outcome of a request whose answer you did not receive."""
    try:
        external_id = check_external_id(external_id)
    except AgentRefused as exc:
        raise _field_problem("external_id", "external_id_invalid", exc.messages[0]) from None
    return topup_out(_own_topup(request, external_id=external_id))


@api.get("/balance", response={200: BalanceOut, **ERRORS}, summary="Your float")
def get_balance(request: HttpRequest) -> Any:
    return balance_out(queries.balance(_key(request).agent))


def _field_problem(name: str, code: str, message: str) -> Problem:
    return Problem(422, code, message, errors=[{"field": name, "message": message, "code": code}])


def _date_param(request: HttpRequest, name: str) -> date:
    raw = request.GET.get(name, "")
    try:
        if not DATE_RE.fullmatch(raw):
            raise ValueError(raw)
        return date.fromisoformat(raw)
    except ValueError:
        message = _("Give %(name)s as a date, YYYY-MM-DD.") % {"name": name}
        raise Problem(
            422,
            "date_invalid",
            message,
            errors=[{"field": name, "message": message, "code": "date_invalid"}],
        ) from None


@api.get(
    "/statement",
    response={200: StatementOut, **ERRORS},
    summary="Float statement",
    openapi_extra={
        "responses": {200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
        "parameters": [
            {
                "name": "from",
                "in": "query",
                "required": True,
                "schema": {"type": "string", "format": "date"},
            },
            {
                "name": "to",
                "in": "query",
                "required": True,
                "schema": {"type": "string", "format": "date"},
            },
            {
                "name": "format",
                "in": "query",
                "required": False,
                "schema": {"type": "string", "enum": list(STATEMENT_FORMATS)},
            },
        ],
    },
)
def get_statement(request: HttpRequest) -> Any:
    """Every float movement between `from` and `to` (both included, operator's
    time zone) with the running balance; JSON, or CSV with `format=csv` or
    `Accept: text/csv`."""
    date_from, date_to = _date_param(request, "from"), _date_param(request, "to")
    if "format" in request.GET and request.GET["format"] not in STATEMENT_FORMATS:
        raise _field_problem(
            "format", "format_invalid", _("Give format as json or csv, or leave it out.")
        )
    if not queries.statement_range_ok(date_from, date_to):
        message = _("“to” must be on or after “from”, at most %(days)d days apart.") % {
            "days": queries.MAX_STATEMENT_DAYS
        }
        raise Problem(422, "date_range_invalid", message)
    found = queries.statement(_key(request).agent, date_from, date_to)
    wants_csv = request.GET.get("format") == "csv" or "text/csv" in request.headers.get(
        "Accept", ""
    )
    if wants_csv:
        response = HttpResponse(
            queries.statement_csv(found), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = (
            f'attachment; filename="statement-{date_from}-{date_to}.csv"'
        )
        return response
    return {
        "currency": found.currency,
        "date_from": date_from.isoformat(),
        "date_to": date_to.isoformat(),
        "opening_balance": found.opening,
        "closing_balance": found.closing,
        "rows": [row.__dict__ for row in found.rows],
    }


__all__ = ["api"]
