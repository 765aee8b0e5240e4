"""Reads the phone channels share: plans sold by phone, a line's facts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from leb.catalog.models import Plan
from leb.ledger.queries import balance_of
from leb.lines import lifecycle
from leb.lines.models import Line

from .models import CallSession


def plans_on_sale(currency: str, channel: str, now: datetime, limit: int = 8) -> list[Plan]:
    """Plans on sale now on `channel` for `currency`, in catalog order."""
    plans = Plan.objects.filter(currency=currency.upper(), is_active=True).order_by(
        "sort_order", "price", "pk"
    )
    found = [
        plan
        for plan in plans
        if channel in (plan.channels or [])
        and (plan.active_from is None or plan.active_from <= now)
        and (plan.active_until is None or now < plan.active_until)
    ]
    return found[:limit]


@dataclass(frozen=True)
class LineFacts:
    status: str
    valid_until: datetime | None
    number_lost_on: datetime | None
    balance: int
    currency: str


def line_facts(line: Line, now: datetime) -> LineFacts:
    status = lifecycle.effective_status(line, now)
    valid_until = line.valid_until
    return LineFacts(
        status=status,
        valid_until=valid_until,
        number_lost_on=lifecycle.terminated_from(valid_until, line.policy) if valid_until else None,
        balance=balance_of(line.wallet) if line.wallet_id else 0,  # type: ignore[arg-type]
        currency=line.currency,
    )


def live_call_session(call_sid: str, now: datetime) -> CallSession | None:
    """The call's state, unless it has expired."""
    return (
        CallSession.objects.select_related("line__policy", "line__phone_number", "line__wallet")
        .filter(call_sid=call_sid, expires_at__gt=now)
        .first()
    )
