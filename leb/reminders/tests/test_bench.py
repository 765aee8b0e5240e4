"""`leb bench reminders` end to end in a tiny configuration (no timing asserted)."""

from __future__ import annotations

import pytest

from leb.ops.bench.reminders import run_reminders_bench

pytestmark = pytest.mark.django_db(transaction=True)


def test_reminders_bench_sends_exactly_the_due_reminders() -> None:
    # given an empty database
    # when 400 lines are seeded, 40 of them due, and scanned
    result = run_reminders_bench(lines=400, due=40)

    # then each due line got its one reminder and one message, and nothing else
    assert result.complete, result
    assert result.by_kind == {
        "expiry_reminder": 30,
        "grace_started": 10,
    }
    assert result.skipped == 0
    assert result.plan
