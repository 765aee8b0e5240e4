"""Agent reads: float balance, the float statement, and the public check of\nwhether someone is an authorised agent."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Prefetch, Q, QuerySet, Sum
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from leb.ledger.models import Account, Transfer
from leb.receipts.queries import Seller

from .models import (
    Agent,
    AgentChannel,
    AgentStatus,
    ChannelKind,
    normalise_channel,
    normalise_handle,
    normalise_url,
)


@dataclass(frozen=True)
class Balance:
    currency: str
    available: int
    reserved: int

    @property
    def total(self) -> int:
        return self.available + self.reserved


def _balance_of(code: str) -> int:
    return Account.objects.filter(code=code).values_list("balance", flat=True).first() or 0


def float_code(agent: Agent) -> str:
    return f"agent_float:{agent.code}:{agent.currency}"


def reservation_code(agent: Agent) -> str:
    return f"agent_reservation:{agent.code}:{agent.currency}"


def balance(agent: Agent) -> Balance:
    return Balance(
        currency=agent.currency,
        available=_balance_of(float_code(agent)),
        reserved=_balance_of(reservation_code(agent)),
    )


@dataclass(frozen=True)
class StatementRow:
    posted_at: datetime
    code: str
    reference: str
    description: str
    amount: int  # signed: + into the float, - out of it
    balance: int


@dataclass(frozen=True)
class Statement:
    currency: str
    date_from: date
    date_to: date
    opening: int
    closing: int
    rows: list[StatementRow]


def _start_of(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def _net(account_id: int, query: Q) -> int:
    credits = Transfer.objects.filter(query, credit_account_id=account_id).aggregate(
        s=Sum("amount")
    )["s"]
    debits = Transfer.objects.filter(query, debit_account_id=account_id).aggregate(s=Sum("amount"))[
        "s"
    ]
    return (credits or 0) - (debits or 0)


def statement(agent: Agent, date_from: date, date_to: date) -> Statement:
    """Every movement of the float between two dates (operator's time zone,
    both included), with the running balance."""
    account = Account.objects.filter(code=float_code(agent)).first()
    if account is None:
        return Statement(agent.currency, date_from, date_to, 0, 0, [])
    start, end = _start_of(date_from), _start_of(date_to + timedelta(days=1))
    opening = _net(account.pk, Q(created_at__lt=start))
    transfers = (
        Transfer.objects.filter(
            Q(debit_account_id=account.pk) | Q(credit_account_id=account.pk),
            created_at__gte=start,
            created_at__lt=end,
        )
        .select_related("group")
        .order_by("created_at", "pk")
    )
    running = opening
    rows = []
    for transfer in transfers:
        amount = transfer.amount if transfer.credit_account_id == account.pk else -transfer.amount
        running += amount
        rows.append(
            StatementRow(
                posted_at=transfer.created_at,
                code=transfer.code,
                reference=transfer.group.idempotency_key,
                description=transfer.group.description,
                amount=amount,
                balance=running,
            )
        )
    return Statement(agent.currency, date_from, date_to, opening, running, rows)


MAX_STATEMENT_DAYS = 366
STATEMENT_COLUMNS = [
    "posted_at",
    "code",
    "reference",
    "description",
    "amount",
    "balance",
    "currency",
]
# Characters a spreadsheet may read as the start of a formula.
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def statement_range_ok(date_from: date, date_to: date) -> bool:
    """`to` on or after `from`, at most MAX_STATEMENT_DAYS apart."""
    return date_from <= date_to and (date_to - date_from).days < MAX_STATEMENT_DAYS


def _spreadsheet_text(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_PREFIXES) else value


def statement_csv(found: Statement, *, for_spreadsheet: bool = False) -> str:
    """The statement as CSV, one row per movement. `for_spreadsheet` quotes
    text a spreadsheet would run as a formula (a download a person opens);
    amounts stay signed numbers."""
    text = _spreadsheet_text if for_spreadsheet else str
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(STATEMENT_COLUMNS)
    for row in found.rows:
        writer.writerow(
            [
                row.posted_at.isoformat(),
                text(row.code),
                text(row.reference),
                text(row.description),
                row.amount,
                row.balance,
                found.currency,
            ]
        )
    return buffer.getvalue()


# --- The public check (反诈骗): public fields only -----------------------------------

MAX_QUERY = 200
# HK-7KQ2MX: a region, a dash and six letters or digits; people drop the dash.
_CODE = re.compile(r"^([A-Z]{2})-?([A-Z0-9]{6})$")
_PHONE_LIKE = re.compile(r"^\+?[\d\s\-.()/]{6,}$")
_HANDLE = re.compile(r"^@?[\w.\-]{1,100}$")


@dataclass(frozen=True)
class PublicChannel:
    kind: str
    kind_label: str
    value: str
    label: str


@dataclass(frozen=True)
class PublicAgent:
    """What anyone may know about an agent: no contact, float or terms."""

    code: str
    legal_name: str
    display_name: str
    region: str
    status: str
    status_label: str
    authorised_since: datetime
    # When it stopped being authorised (suspended or terminated), else None.
    not_authorised_since: datetime | None
    channels: list[PublicChannel]

    @property
    def authorised(self) -> bool:
        return self.status == AgentStatus.ACTIVE


@dataclass(frozen=True)
class Search:
    """What a visitor typed, understood: `kind` is code, shop_url, handle or phone."""

    kind: str
    value: str
    # "kowloon.phones" may be an address or a handle with a dot: try both.
    handle: str = ""


def public_agent(agent: Agent) -> PublicAgent:
    stopped: datetime | None = None
    if agent.status == AgentStatus.TERMINATED:
        stopped = agent.terminated_at or agent.status_changed_at
    elif agent.status == AgentStatus.SUSPENDED:
        stopped = agent.suspended_at or agent.status_changed_at
    return PublicAgent(
        code=agent.code,
        legal_name=agent.legal_name,
        display_name=agent.display_name,
        region=agent.region,
        status=agent.status,
        status_label=str(AgentStatus(agent.status).label),
        authorised_since=agent.created_at,
        not_authorised_since=stopped,
        channels=[
            PublicChannel(c.kind, str(ChannelKind(c.kind).label), c.value, c.label)
            for c in agent.channels.all()
        ],
    )


def normalise_code(text: str) -> str | None:
    """HK-7KQ2MX from "hk 7kq2mx", "HK7KQ2MX"…; None if it is not shaped like a code."""
    compact = re.sub(r"\s+", "", text).upper()
    found = _CODE.match(compact)
    return f"{found.group(1)}-{found.group(2)}" if found else None


def parse_search(text: str) -> Search:
    """Read a code, a shop URL, a phone number or a handle from what was typed;
    ValidationError (translated) for input that is none of them."""
    raw = (text or "").strip()
    if not raw:
        raise ValidationError(
            _("Enter an agent code, a shop address, a phone number or a social media handle."),
            code="query_empty",
        )
    if len(raw) > MAX_QUERY or not raw.isprintable():
        raise ValidationError(
            _(
                "This is too long or contains characters an agent code, address or handle never has."
            ),
            code="query_invalid",
        )
    code = normalise_code(raw)
    if code is not None:
        return Search("code", code)
    if _PHONE_LIKE.match(raw):
        return Search(ChannelKind.PHONE, normalise_channel(ChannelKind.PHONE, raw))
    if "." in raw and " " not in raw and not raw.startswith("@"):
        handle = normalise_handle(raw) if _HANDLE.match(raw) else ""
        return Search(ChannelKind.SHOP_URL, normalise_url(raw), handle)
    if _HANDLE.match(raw):
        return Search(ChannelKind.HANDLE, normalise_handle(raw))
    raise ValidationError(
        _("Enter an agent code such as HK-7KQ2MX, a shop address, a phone number or a handle."),
        code="query_invalid",
    )


def _public_agents() -> QuerySet[Agent]:
    return Agent.objects.prefetch_related(
        Prefetch("channels", queryset=AgentChannel.objects.order_by("kind", "value"))
    )


def find_public_agent(search: Search) -> PublicAgent | None:
    agents = _public_agents()
    if search.kind == "code":
        agent = agents.filter(code=search.value).first()
    else:
        agent = agents.filter(channels__kind=search.kind, channels__value=search.value).first()
        if agent is None and search.handle:
            agent = agents.filter(
                channels__kind=ChannelKind.HANDLE, channels__value=search.handle
            ).first()
    return public_agent(agent) if agent is not None else None


def agent_by_code(code: str) -> Agent | None:
    """The agent with this public code (any status), for receipts that name it."""
    normalised = normalise_code(code or "")
    return Agent.objects.filter(code=normalised).first() if normalised else None


def active_agents(region: str = "") -> list[PublicAgent]:
    """Authorised agents, by region then name; `region` an ISO code or empty."""
    agents = _public_agents().filter(status=AgentStatus.ACTIVE)
    if region:
        agents = agents.filter(region=region.upper())
    return [public_agent(a) for a in agents.order_by("region", "display_name", "code")]


def active_regions() -> list[str]:
    return list(
        Agent.objects.filter(status=AgentStatus.ACTIVE)
        .order_by("region")
        .values_list("region", flat=True)
        .distinct()
    )


def agent_check_url(code: str) -> str:
    """The public check of an agent, on the configured site address (it is
    printed on the PDF, like the receipt's own verification link)."""
    path = reverse("agents:verify") + "?" + urlencode({"q": code})
    return getattr(settings, "SITE_URL", "").rstrip("/") + path


def seller_on_receipt(order: Any, code: str) -> Seller | None:
    """The agent that sold `order`, as receipts name it (registered with
    receipts when the app loads)."""
    agent = agent_by_code(code)
    if agent is None:
        return None
    return Seller("agent", agent.display_name, agent.code, agent_check_url(agent.code))
