"""Every write of the finance app."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta

from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from leb.audit.actions import record
from leb.audit.models import AuditAction
from leb.common import clock
from leb.common.transactions import outside_transaction
from leb.payments.providers.base import (
    PaymentProvider,
    PaymentProviderError,
    enabled_provider_names,
    get_provider,
)

from .models import Mismatch, SettlementRun
from .reconcile import SKEW, Totals, compare_day, day_window

logger = logging.getLogger(__name__)


class SettlementError(Exception):
    """A reconciliation that cannot run; the message is for the person who asked."""

    def __init__(self, message: object, *, code: str) -> None:
        super().__init__(str(message))
        self.message = message
        self.code = code


def reconcilable_providers() -> list[str]:
    """The enabled providers that can list their transactions."""
    names = []
    for name in enabled_provider_names():
        try:
            provider = get_provider(name)
        except (LookupError, ImproperlyConfigured):
            logger.warning("payment provider %s is not configured; not reconciled", name)
            continue
        if type(provider).list_transactions is not PaymentProvider.list_transactions:
            names.append(name)
    return names


@outside_transaction
def do_reconcile_day(
    day: date,
    provider: str | None = None,
    *,
    actor: str,
    now: datetime | None = None,
) -> list[SettlementRun]:
    """Compare one day of leb's ledger with each provider's own books and
    store the result: one run per provider and currency, with its mismatches.
    Running a day again replaces that day's runs for the provider. The
    provider is asked outside any transaction; the runs are written in one."""
    now = now or clock.now()
    _start, end = day_window(day)
    if end > now:
        raise SettlementError(
            _("%(day)s is not over yet; reconcile a day that has ended.") % {"day": day},
            code="day_not_over",
        )
    if provider is None:
        names = reconcilable_providers()
    else:
        if provider not in enabled_provider_names():
            raise SettlementError(
                _("%(provider)s is not an enabled payment provider.") % {"provider": provider},
                code="provider_unknown",
            )
        names = [provider]
    runs: list[SettlementRun] = []
    for name in names:
        runs.extend(_reconcile_provider(day, name, actor=actor, now=now))
    return runs


def _reconcile_provider(
    day: date, provider: str, *, actor: str, now: datetime
) -> list[SettlementRun]:
    start, end = day_window(day)
    try:
        # Never ask about the future: some providers refuse a window ending after now.
        records = get_provider(provider).list_transactions(start - SKEW, min(end + SKEW, now))
    except PaymentProviderError as exc:
        if exc.code == "not_supported":
            raise SettlementError(exc.message, code="not_supported") from exc
        logger.warning("settlement of %s for %s: provider unavailable: %s", provider, day, exc)
        raise SettlementError(
            _("%(provider)s could not be asked for its transactions: %(reason)s")
            % {"provider": provider, "reason": exc.message},
            code="provider_unavailable",
        ) from exc
    with transaction.atomic():
        by_currency = compare_day(provider, day, records)
        replaced = SettlementRun.objects.filter(date=day, provider=provider)
        had = list(replaced.values_list("pk", flat=True))
        replaced.delete()
        runs = []
        pairs: list[tuple[str, Totals | None]] = list(sorted(by_currency.items())) or [("", None)]
        for currency, totals in pairs:
            run = SettlementRun.objects.create(
                date=day,
                provider=provider,
                currency=currency,
                created_at=now,
                actor=actor[:100],
                **(
                    {
                        name: getattr(totals, name)
                        for name in (
                            "leb_captured",
                            "leb_refunded",
                            "leb_pending",
                            "leb_captures",
                            "leb_refunds",
                            "provider_captured",
                            "provider_refunded",
                            "provider_pending",
                            "provider_fees",
                            "provider_captures",
                            "provider_refunds",
                        )
                    }
                    if totals
                    else {}
                ),
                mismatch_count=len(totals.mismatches) if totals else 0,
            )
            if totals:
                Mismatch.objects.bulk_create(
                    [
                        Mismatch(
                            run=run,
                            kind=found.kind,
                            order_id=found.order_id,
                            attempt_id=found.attempt_id,
                            reference=found.reference[:255],
                            provider_transaction=found.provider_transaction[:255],
                            leb_amount=found.leb_amount,
                            provider_amount=found.provider_amount,
                            detail=found.detail[:255],
                        )
                        for found in totals.mismatches
                    ]
                )
            runs.append(run)
        record(
            actor,
            AuditAction.SETTLEMENT_RECONCILE,
            f"settlement:{provider}:{day.isoformat()}",
            {
                "replaced": len(had),
                "runs": [
                    {
                        "currency": run.currency,
                        "leb_captured": run.leb_captured,
                        "provider_captured": run.provider_captured,
                        "mismatches": run.mismatch_count,
                    }
                    for run in runs
                ],
            },
            now=now,
        )
    return runs


def yesterday(now: datetime | None = None) -> date:
    """The last day that has ended, in the operator's time zone."""
    from .reconcile import operator_zone

    now = now or clock.now()
    return (now.astimezone(operator_zone()) - timedelta(days=1)).date()
