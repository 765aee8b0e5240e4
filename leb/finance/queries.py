"""Reads of the finance app: the settlement table and the mismatch figures."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.db.models import Count, Max

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
class LatestDay:
    day: date
    by_kind: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.by_kind.values())


@dataclass(frozen=True)
class MismatchCounts:
    """Mismatches of each provider's most recently reconciled day, by kind."""

    by_provider: dict[str, LatestDay]

    @property
    def total(self) -> int:
        return sum(latest.total for latest in self.by_provider.values())


def latest_mismatch_counts() -> MismatchCounts:
    """Two queries whatever the number of runs: each provider's latest day,
    then the mismatches of those days counted by kind."""
    latest = dict(
        SettlementRun.objects.values("provider")
        .annotate(day=Max("date"))
        .values_list("provider", "day")
    )
    if not latest:
        return MismatchCounts(by_provider={})
    by_provider = {name: LatestDay(day, {}) for name, day in latest.items()}
    rows = (
        Mismatch.objects.filter(run__date__in=set(latest.values()))
        .values("run__provider", "run__date", "kind")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for row in rows:
        if latest.get(row["run__provider"]) == row["run__date"]:
            by_provider[row["run__provider"]].by_kind[row["kind"]] = int(row["n"])
    return MismatchCounts(by_provider=by_provider)
