"""The demo's history reconciles with the sandbox gateway's books: every
historical demo payment and refund has its gateway record."""

from __future__ import annotations

from datetime import datetime

import pytest
from django.db.models import Q

from leb.finance.actions import do_reconcile_day
from leb.finance.reconcile import operator_zone
from leb.ledger.models import Transfer
from leb.ops.demo import load_demo

pytestmark = pytest.mark.django_db


def test_every_day_of_the_demo_reconciles_without_mismatch(
    now: datetime, ledger_ok: object
) -> None:
    # given the demo loaded
    load_demo(now=now)
    moments = Transfer.objects.filter(
        Q(debit_account__code__startswith="clearing:sandbox:", code="payment")
        | Q(
            credit_account__code__startswith="clearing:sandbox:",
            code__in=["reversal:payment", "refund.credit", "refund.fee"],
        )
    ).values_list("created_at", flat=True)
    days = sorted({moment.astimezone(operator_zone()).date() for moment in moments})
    today = now.astimezone(operator_zone()).date()
    days = [day for day in days if day < today]
    assert len(days) > 10
    # when every day with sandbox payments is reconciled
    runs = [run for day in days for run in do_reconcile_day(day, "sandbox", actor="test")]
    # then leb and the gateway agree on every one of them
    assert sum(run.leb_captures for run in runs) > 0
    assert sum(run.leb_refunds for run in runs) > 0
    assert [(run.date, run.mismatch_count) for run in runs if run.mismatch_count] == []
    assert all(run.leb_captured == run.provider_captured for run in runs)
    assert all(run.leb_refunded == run.provider_refunded for run in runs)
