"""Reads of payment attempts for the back office, grouped in the database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Q

from .models import OPEN_STATUSES, AttemptStatus, PaymentAttempt


@dataclass(frozen=True)
class AttemptCount:
    provider: str
    status: str
    count: int


def attempts_needing_attention(since: datetime) -> list[AttemptCount]:
    """Per provider: attempts that failed since `since`, and attempts still
    open (created or pending at the provider), however old."""
    rows = (
        PaymentAttempt.objects.filter(
            Q(status__in=OPEN_STATUSES) | Q(status=AttemptStatus.FAILED, created_at__gte=since)
        )
        .order_by()
        .values("provider", "status")
        .annotate(count=Count("pk"))
        .order_by("provider", "status")
    )
    return [AttemptCount(row["provider"], row["status"], row["count"]) for row in rows]
