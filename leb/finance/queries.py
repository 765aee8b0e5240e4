"""Reads of the finance app: the settlement table and the mismatch figures."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.db.models import Max, QuerySet, Sum

from .models import Mismatch, SettlementRun


def settlement_table(
    *,
    since: date | None = None,
    until: date | None = None,
    provider: str | None = None,
    limit: int = 200,
) -> list[SettlementRun]:
    """Settlement runs, newest day first, optionally for a range of days and
    one provider."""
    runs = SettlementRun.objects.all()
    if since is not None:
        runs = runs.filter(date__gte=since)
    if until is not None:
        runs = runs.filter(date__lte=until)
    if provider:
        runs = runs.filter(provider=provider)
    return list(runs.order_by("-date", "provider", "currency")[:limit])


@dataclass(frozen=True)
class MismatchCounts:
    """Mismatches of each provider's most recently reconciled day."""

    total: int
    by_provider: dict[str, tuple[date, int]]


def latest_mismatch_counts() -> MismatchCounts:
    """Two queries whatever the number of runs: each provider's latest day,
    then the mismatch counts of those days."""
    latest = dict(
        SettlementRun.objects.values("provider")
        .annotate(day=Max("date"))
        .values_list("provider", "day")
    )
    if not latest:
        return MismatchCounts(total=0, by_provider={})
    counts: dict[str, int] = {}
    rows = (
        SettlementRun.objects.filter(date__in=set(latest.values()))
        .values("provider", "date")
        .annotate(n=Sum("mismatch_count"))
    )
    for row in rows:
        if latest.get(row["provider"]) == row["date"]:
            counts[row["provider"]] = int(row["n"] or 0)
    by_provider = {name: (day, counts.get(name, 0)) for name, day in latest.items()}
    return MismatchCounts(total=sum(counts.values()), by_provider=by_provider)


def mismatches_of_latest_days() -> QuerySet[Mismatch]:
    """The mismatches behind latest_mismatch_counts()."""
    latest = (
        SettlementRun.objects.values("provider")
        .annotate(day=Max("date"))
        .values_list("provider", "day")
    )
    run_ids: list[int] = []
    for provider, day in latest:
        run_ids.extend(
            SettlementRun.objects.filter(provider=provider, date=day).values_list("pk", flat=True)
        )
    return (
        Mismatch.objects.filter(run_id__in=run_ids)
        .select_related("run", "order", "attempt")
        .order_by("-run__date", "run__provider", "kind", "pk")
    )
