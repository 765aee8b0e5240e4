"""The benchmarks run end to end in a tiny configuration. Speed is not tested
here: the goals live in `leb bench` output and docs/performance.md."""

from __future__ import annotations

import pytest
from django.db import connection

from leb.ops.bench.agents import run_agents_bench
from leb.ops.bench.fulfil import run_fulfil_bench
from leb.ops.bench.sweep import run_sweep_bench

# transaction=True: the raw replay and the worker processes use their own
# connections, which only see committed rows.
pytestmark = pytest.mark.django_db(transaction=True)


def test_fulfil_bench_fulfils_every_order_and_the_ledger_verifies() -> None:
    # given an empty database
    # when
    result = run_fulfil_bench(orders=20, clients=1)

    # then
    assert [(p.name, p.orders, p.errors) for p in result.phases] == [
        ("spread", 20, 0),
        ("hot", 20, 0),
    ]
    assert result.fulfilled == 40
    # the raw replay wrote its orders too, and the books still balance
    assert [(r.name, r.orders, r.transactions) for r in result.raw] == [
        ("spread", 20, 3),
        ("hot", 20, 3),
    ]
    assert result.verify_ok, result.verify_problems


@pytest.mark.postgres
def test_fulfil_bench_with_worker_processes() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("several clients need a database other processes can reach")
    # given an empty database
    # when
    result = run_fulfil_bench(orders=10, clients=2)

    # then
    assert [(p.orders, p.errors) for p in result.phases] == [(10, 0), (10, 0)]
    assert [r.orders for r in result.raw] == [10, 10]
    assert result.fulfilled == 20
    assert result.verify_ok, result.verify_problems


def test_sweep_bench_sweeps_exactly_the_due_lines_and_the_ledger_verifies() -> None:
    # given an empty database
    # when
    result = run_sweep_bench(lines=400, due=40)

    # then
    assert result.swept_lines == 40
    assert result.complete
    assert result.terminated == result.expected_terminated > 0
    assert result.forfeited_minor["HKD"] == result.expected_forfeited > 0
    assert result.plan
    assert result.verify_ok, result.verify_problems


@pytest.mark.postgres
def test_sweep_bench_with_two_workers_splits_the_due_lines() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("several sweep workers need SKIP LOCKED and a shared database")
    # given an empty database
    # when
    result = run_sweep_bench(lines=400, due=40, workers=2)

    # then every due line was swept once, by one worker or the other
    assert result.swept_lines == 40
    assert result.complete
    assert result.verify_ok, result.verify_problems


def test_agents_bench_sells_every_top_up_once_from_one_float() -> None:
    # given an empty database
    # when
    result = run_agents_bench(lines=6, clients=1, count=12)

    # then every top-up was sold once, from the one float, and the books balance
    assert (result.service.topups, result.service.errors) == (12, 0)
    assert result.service.rate > 0
    assert result.verified is not None
    assert result.verified.ok, result.verified.problems
    # 12 timed and one warm-up sale, each 10,000 less the agent's 8 %
    assert result.verified.completed == 13
    assert result.verified.float_available == result.seeded.deposit - 13 * 9_200
