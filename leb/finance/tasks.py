"""The daily settlement job."""

from __future__ import annotations

import logging

from django_tasks import task

from leb.common import clock

logger = logging.getLogger(__name__)

JOB_ACTOR = "job:settlement-daily"


def reconcile_yesterday() -> dict[str, int]:
    """Reconcile yesterday, in the operator's time zone, for every provider
    that can list its transactions. One provider that cannot be reached does
    not stop the others; the next run tries it again (and replaces the run)."""
    from .actions import SettlementError, do_reconcile_day, reconcilable_providers, yesterday

    now = clock.now()
    day = yesterday(now)
    result = {"runs": 0, "mismatches": 0, "errors": 0}
    for provider in reconcilable_providers():
        try:
            runs = do_reconcile_day(day, provider, actor=JOB_ACTOR, now=now)
        except SettlementError as exc:
            logger.warning("settlement of %s for %s failed: %s", provider, day, exc)
            result["errors"] += 1
            continue
        result["runs"] += len(runs)
        result["mismatches"] += sum(run.mismatch_count for run in runs)
    return result


@task()
def reconcile_yesterday_task() -> dict[str, int]:
    return reconcile_yesterday()
