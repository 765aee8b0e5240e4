"""What the "my lines" screens show, computed from the stored dates on read."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import segno
from django.db.models import QuerySet

from leb.ledger.queries import balance_by_code
from leb.lines import lifecycle
from leb.lines.models import Line, LineStatus
from leb.topups.models import TopUpOrder

RECENT_TOPUPS = 10


@dataclass(frozen=True)
class LineSummary:
    line: Line
    status: str
    status_label: str
    valid_until: datetime | None
    days_left: int | None
    balance: int

    @property
    def can_top_up(self) -> bool:
        return self.status in (LineStatus.ACTIVE, LineStatus.GRACE, LineStatus.SUSPENDED)


def owned_lines(user: Any) -> QuerySet[Line]:
    return Line.objects.filter(owner=user).select_related("phone_number", "policy", "wallet")


def wallet_balance(line: Line) -> int:
    wallet = line.wallet
    if wallet is None:
        return 0
    if wallet.tracks_balance:
        return wallet.balance
    return balance_by_code(f"wallet:line:{line.pk}")


def days_left(valid_until: datetime | None, status: str, now: datetime) -> int | None:
    if valid_until is None or status == LineStatus.INVENTORY:
        return None
    # Whole days, rounded up, as on the public status check.
    return max(0, math.ceil((valid_until - now).total_seconds() / 86400))


def summarize(line: Line, now: datetime) -> LineSummary:
    status = lifecycle.effective_status(line, now)
    return LineSummary(
        line=line,
        status=status,
        status_label=str(LineStatus(status).label),
        valid_until=line.valid_until,
        days_left=days_left(line.valid_until, status, now),
        balance=wallet_balance(line),
    )


def line_summaries(user: Any, now: datetime) -> list[LineSummary]:
    return [summarize(line, now) for line in owned_lines(user).order_by("created_at", "pk")]


def recent_topups(line: Line) -> list[TopUpOrder]:
    return list(TopUpOrder.objects.filter(line=line).order_by("-created_at", "-pk")[:RECENT_TOPUPS])


def activation_qr_svg(code: str) -> str:
    """The eSIM activation QR code (`code` without "LPA:") as inline SVG markup
    (no script, no style attribute, so it passes the site's Content-Security-Policy)."""
    return str(segno.make(f"LPA:{code}", error="m").svg_inline(scale=5, light="#fff"))


def shows_activation(line: Line, status: str) -> bool:
    return (
        bool(line.activation_code) and line.installed_at is None and status != LineStatus.TERMINATED
    )
