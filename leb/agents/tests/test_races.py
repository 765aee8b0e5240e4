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


def test_eight_portal_confirms_of_one_form_sell_once(
    agent: Agent,
    agent_seller: Any,
    make_line: Callable[..., Any],
    hkd_plan: Any,
    ledger_ok: Any,
) -> None:
    # given one priced confirm form, and the seller's browser sending it eight times at once
    import re

    from django.urls import reverse

    from leb.agents.tests.conftest import verified_client

    line = make_line()
    client = verified_client(agent_seller)
    token = client.post(reverse("agent-portal:sell"), {"msisdn": line.msisdn})["Location"]
    token = token.rstrip("/").rsplit("/", 1)[-1]
    url = reverse("agent-portal:sell_quote", args=[token, hkd_plan.code])
    found = re.search(r'name="ticket" value="([^"]+)"', client.get(url).content.decode())
    assert found is not None
    cookies = client.cookies

    def press(_i: int) -> Any:
        browser = type(client)()
        browser.cookies = cookies
        return browser.post(url, {"ticket": found.group(1)})

    # when
    answers = race(8, press)

    # then one sale, and every answer leads to it
    assert not [a for a in answers if isinstance(a, Exception)], answers
    topup = AgentTopUp.objects.get()
    assert {a["Location"] for a in answers} == {
        reverse("agent-portal:sale", args=[topup.public_id])
    }
    assert TopUpOrder.objects.count() == 1
    assert balance(agent).available == 100_000 - 4500
    ledger_ok()


def test_portal_sales_racing_for_a_small_float_sell_what_fits_and_keep_no_refusals(
    make_agent: Callable[..., Agent],
    fund: Any,
    make_line: Callable[..., Any],
    hkd_plan: Any,
    ledger_ok: Any,
    fast_passwords: None,
) -> None:
    # given room for three sales, and eight members selling at once
    from leb.agents.actions import do_sell_from_portal
    from leb.agents.models import AgentMember
    from leb.agents.tests.conftest import add_member

    agent = make_agent()
    fund(agent, 3 * 4500 + 100)
    members = [AgentMember.objects.get(user=add_member(agent, f"till-{i}")) for i in range(8)]
    lines = [make_line() for _i in range(8)]

    # when
    results = race(
        8,
        lambda i: do_sell_from_portal(
            members[i], external_id=f"portal-{i}", msisdn=lines[i].msisdn, plan_code=hkd_plan.code
        ),
    )

    # then three sales; the five refusals raised and left nothing behind
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(refused) == 5
    assert {getattr(r, "code", "") for r in refused} == {"insufficient_float"}
    assert AgentTopUp.objects.count() == 3
    assert all(t.status == AgentTopUpStatus.COMPLETED for t in AgentTopUp.objects.all())
    assert TopUpOrder.objects.count() == 3
    assert balance(agent).available == 100
    ledger_ok()
