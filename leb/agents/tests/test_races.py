"""Concurrent agent requests on PostgreSQL: one top-up per external id, and
a float that is never overdrawn."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection

from leb.agents.actions import do_create_agent_topup
from leb.agents.models import Agent, AgentTopUp, AgentTopUpStatus
from leb.agents.queries import balance
from leb.ledger.models import Account
from leb.testing import race
from leb.topups.models import TopUpOrder

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs PostgreSQL: concurrent connections with row locks",
    ),
    pytest.mark.django_db(transaction=True),
]


def test_sixteen_requests_with_one_external_id_make_one_top_up(
    make_agent: Callable[..., Agent],
    fund: Any,
    make_line: Callable[..., Any],
    hkd_plan: Any,
    ledger_ok: Any,
) -> None:
    # given
    agent = make_agent()
    fund(agent, 100_000)
    line = make_line()

    # when
    results = race(
        16,
        lambda i: do_create_agent_topup(
            agent, external_id="same", msisdn=line.msisdn, plan_code=hkd_plan.code
        ),
    )

    # then
    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, errors
    assert AgentTopUp.objects.count() == 1
    assert TopUpOrder.objects.count() == 1
    assert sum(1 for r in results if not r.replayed) == 1
    assert {r.topup.pk for r in results} == {AgentTopUp.objects.get().pk}
    assert balance(agent).available == 100_000 - 4500
    ledger_ok()


def test_sixteen_top_ups_draining_one_float_never_overdraw_it(
    make_agent: Callable[..., Agent],
    fund: Any,
    make_line: Callable[..., Any],
    hkd_plan: Any,
    ledger_ok: Any,
) -> None:
    # given: room for exactly 5 sales at 4,500
    agent = make_agent()
    fund(agent, 5 * 4500 + 4000)
    lines = [make_line() for _i in range(16)]

    # when
    results = race(
        16,
        lambda i: do_create_agent_topup(
            agent, external_id=f"drain-{i}", msisdn=lines[i].msisdn, plan_code=hkd_plan.code
        ),
    )

    # then
    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, errors
    statuses = [r.topup.status for r in results]
    assert statuses.count(AgentTopUpStatus.COMPLETED) == 5
    failed = [r.topup for r in results if r.topup.status == AgentTopUpStatus.FAILED]
    assert len(failed) == 11
    assert {t.reason for t in failed} == {"insufficient_float"}
    assert Account.objects.get(code=f"agent_float:{agent.code}:HKD").balance == 4000
    assert TopUpOrder.objects.count() == 5
    ledger_ok()


def test_sixteen_two_step_holds_never_reserve_more_than_the_float(
    make_agent: Callable[..., Agent],
    fund: Any,
    make_line: Callable[..., Any],
    hkd_plan: Any,
    ledger_ok: Any,
) -> None:
    # given
    agent = make_agent()
    fund(agent, 3 * 4500)
    lines = [make_line() for _i in range(16)]

    # when
    results = race(
        16,
        lambda i: do_create_agent_topup(
            agent,
            external_id=f"hold-{i}",
            msisdn=lines[i].msisdn,
            plan_code=hkd_plan.code,
            mode="two_step",
        ),
    )

    # then
    assert not [r for r in results if isinstance(r, Exception)]
    assert [r.topup.status for r in results].count(AgentTopUpStatus.CREATED) == 3
    assert balance(agent).available == 0
    assert balance(agent).reserved == 3 * 4500
    ledger_ok()
