"""Reads the phone channels share: plans sold by phone, a line's facts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from leb.catalog.models import Plan
from leb.ledger.queries import balance_of
from leb.lines import lifecycle
from leb.lines.models import Line, LineStatus, NumberStatus

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


@dataclass(frozen=True)
class TerminatedFacts:
    """What a caller from (or asking about) a number whose line is gone hears."""

    terminated_on: datetime
    # The number's quarantine end while it is held; None once it is released
    # (or given to someone else).
    quarantined_until: datetime | None
    line: Line


def terminated_facts(msisdn: str, now: datetime) -> TerminatedFacts | None:
    """When the newest line that had `msisdn` is terminated and no live line
    holds the number now: since when, and whether the number is still in
    quarantine. None otherwise (never a leb number, or in service)."""
    if not msisdn:
        return None
    line = (
        Line.objects.select_related("policy", "phone_number")
        .filter(phone_number__msisdn=msisdn)
        .order_by("-pk")
        .first()
    )
    if line is None or lifecycle.effective_status(line, now) != LineStatus.TERMINATED:
        return None
    if line.terminated_at is not None:
        since = line.terminated_at
    elif line.valid_until is not None:
        # Terminated by its dates, before the sweep wrote it down.
        since = min(lifecycle.terminated_from(line.valid_until, line.policy), now)
    else:
        return None
    number = line.phone_number
    until: datetime | None
    if number is not None and number.status == NumberStatus.QUARANTINED:
        until = number.quarantined_until
        if until is not None and until <= now:
            until = None  # its quarantine is over: released on the next read
    elif number is not None and number.status == NumberStatus.AVAILABLE:
        until = None
    else:
        # Not swept yet (still "assigned" to the dead line): quarantine by the dates.
        until = lifecycle.number_released_at(since, line.policy)
        if until <= now:
            until = None
    return TerminatedFacts(terminated_on=since, quarantined_until=until, line=line)
