"""Two workers running the auto-keep job at the same moment, each on its own
PostgreSQL connection: each threshold crossing is charged exactly once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection

from leb.autokeep.actions import do_run_autokeep
from leb.autokeep.models import AutoKeepRun
from leb.ledger.queries import balance_by_code
from leb.payments.models import PaymentAttempt
from leb.testing import race_all as race
from leb.topups.models import OrderStatus, TopUpOrder

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL row locks"),
]


@pytest.mark.parametrize("round_", range(3))
def test_two_workers_charge_each_crossing_once(
    make_line: Any,
    owner: Any,
    card: Any,
    make_rule: Any,
    hkd_plan: Any,
    ledger_ok: Any,
    round_: int,
) -> None:
    # given three lines whose thresholds have been crossed
    lines = [make_line(owner=owner) for _ in range(3)]
    for line in lines:
        make_rule(line, card, days_before=7)
    at = lines[0].valid_until - timedelta(days=6)
    # when two workers run the job at the same moment
    results = race([lambda: do_run_autokeep(at), lambda: do_run_autokeep(at)])
    # then nothing failed and every line was charged exactly once
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(r.started for r in results) == 3
    assert AutoKeepRun.objects.count() == 3
    assert PaymentAttempt.objects.count() == 3
    assert TopUpOrder.objects.filter(status=OrderStatus.FULFILLED).count() == 3
    for line in lines:
        assert balance_by_code(f"wallet:line:{line.pk}") == hkd_plan.credit
    # and running again changes nothing
    results = race([lambda: do_run_autokeep(at), lambda: do_run_autokeep(at)])
    assert sum(r.started for r in results) == 0
    assert TopUpOrder.objects.count() == 3
    ledger_ok()
