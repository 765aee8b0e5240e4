"""Concurrent agent requests on PostgreSQL: sales of one agent overlap, yet
each external id makes one top-up, the float is never overdrawn, the daily
limits are exact and a suspension waits for the sales in flight and stops
the rest."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, connections, transaction

from leb.agents.actions import AgentRefused, do_create_agent_topup, do_set_agent_status
from leb.agents.models import Agent, AgentTopUp, AgentTopUpStatus
from leb.agents.queries import balance
from leb.ledger.models import Account, TransferGroup
from leb.lines.models import Line
from leb.testing import race, race_all
from leb.topups.models import OrderStatus, TopUpOrder

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


# --- Sixteen clients on one float -------------------------------------------------------

CLIENTS = 16
WHOLESALE = 4500  # hk-50 at the agents' 10 % discount


def _float(agent: Agent) -> int:
    return Account.objects.get(code=f"agent_float:{agent.code}:HKD").balance


def _float_is_deposits_less_sales(agent: Agent, deposited: int) -> None:
    completed = AgentTopUp.objects.filter(agent=agent, status=AgentTopUpStatus.COMPLETED)
    sold = sum(completed.values_list("wholesale_price", flat=True))
    assert _float(agent) == deposited - sold
    assert _float(agent) >= 0
    assert balance(agent).reserved == 0


def _each_completed_once(agent: Agent) -> None:
    """One fulfilled order and one sale posting per completed top-up, and
    nothing of the ones refused."""
    for topup in AgentTopUp.objects.filter(agent=agent).select_related("order"):
        posted = TransferGroup.objects.filter(idempotency_key=topup.ledger_key).count()
        if topup.status == AgentTopUpStatus.COMPLETED:
            assert topup.order is not None
            assert topup.order.status == OrderStatus.FULFILLED
            assert posted == 1
        else:
            assert (topup.order, posted) == (None, 0)
    assert TopUpOrder.objects.count() == AgentTopUp.objects.filter(order__isnull=False).count()


def test_sixteen_clients_on_one_float_sell_each_external_id_once(
    make_agent: Callable[..., Agent],
    fund: Any,
    make_line: Callable[..., Any],
    hkd_plan: Any,
    ledger_ok: Any,
) -> None:
    # given: two clients at a time send the same four requests, as a retry in
    # flight does; the float has room for all of them
    agent = make_agent()
    fund(agent, 200_000)
    lines = {(pair, k): make_line() for pair in range(CLIENTS // 2) for k in range(4)}

    def client(i: int) -> list[Any]:
        out: list[Any] = []
        for k in range(4):
            try:
                out.append(
                    do_create_agent_topup(
                        agent,
                        external_id=f"pos-{i // 2}-{k}",
                        msisdn=lines[(i // 2, k)].msisdn,
                        plan_code=hkd_plan.code,
                    )
                )
            except Exception as exc:  # collected, asserted below
                out.append(exc)
        return out

    # when
    answers = race(CLIENTS, client)

    # then every request was answered, each external id sold once, and a
    # duplicate in flight got the first result
    flat = [a for per_client in answers for a in per_client]
    assert not [a for a in flat if isinstance(a, Exception)], flat
    assert AgentTopUp.objects.count() == len(lines) == 32
    assert {t.status for t in AgentTopUp.objects.all()} == {AgentTopUpStatus.COMPLETED}, [
        (t.external_id, t.reason, t.reason_detail)
        for t in AgentTopUp.objects.exclude(status="completed")
    ]
    for pair in range(CLIENTS // 2):
        for k in range(4):
            first, second = answers[2 * pair][k], answers[2 * pair + 1][k]
            assert first.topup.pk == second.topup.pk
            assert sorted([first.replayed, second.replayed]) == [False, True]
    _each_completed_once(agent)
    _float_is_deposits_less_sales(agent, 200_000)
    assert _float(agent) == 200_000 - 32 * WHOLESALE
    ledger_ok()


def test_sixteen_clients_beyond_the_float_sell_what_fits_and_refuse_the_rest_cleanly(
    make_agent: Callable[..., Agent],
    fund: Any,
    make_line: Callable[..., Any],
    hkd_plan: Any,
    ledger_ok: Any,
) -> None:
    # given: 48 sales (two clients at a time send the same three) against a
    # float with room for 9 and a bit
    agent = make_agent()
    fund(agent, 9 * WHOLESALE + 1000)
    lines = {(pair, k): make_line() for pair in range(CLIENTS // 2) for k in range(3)}

    def client(i: int) -> list[Any]:
        return [
            do_create_agent_topup(
                agent,
                external_id=f"over-{i // 2}-{k}",
                msisdn=lines[(i // 2, k)].msisdn,
                plan_code=hkd_plan.code,
            )
            for k in range(3)
        ]

    # when
    answers = race(CLIENTS, client)

    # then nine sold, fifteen refused for the float and kept as such, each
    # duplicate answered as its first
    assert not [a for a in answers if isinstance(a, Exception)], answers
    topups = AgentTopUp.objects.filter(agent=agent)
    assert topups.count() == 24
    assert topups.filter(status=AgentTopUpStatus.COMPLETED).count() == 9
    failed = topups.filter(status=AgentTopUpStatus.FAILED)
    assert set(failed.values_list("reason", flat=True)) == {"insufficient_float"}
    assert failed.count() == 15
    for pair in range(CLIENTS // 2):
        for k in range(3):
            first, second = answers[2 * pair][k], answers[2 * pair + 1][k]
            assert first.topup.pk == second.topup.pk
            assert first.topup.status == second.topup.status
    _each_completed_once(agent)
    _float_is_deposits_less_sales(agent, 9 * WHOLESALE + 1000)
    assert _float(agent) == 1000
    ledger_ok()


@pytest.mark.parametrize(
    ("limits", "detail", "sold"),
    [
        ({"daily_count_limit": 7}, "daily_count", 7),
        ({"daily_amount_limit": 5 * WHOLESALE + 100}, "daily_amount", 5),
    ],
)
def test_daily_limits_stay_exact_under_sixteen_clients(
    make_agent: Callable[..., Agent],
    fund: Any,
    make_line: Callable[..., Any],
    hkd_plan: Any,
    ledger_ok: Any,
    limits: dict[str, int],
    detail: str,
    sold: int,
) -> None:
    # given: float enough for every sale, a daily limit far below
    agent = make_agent(**limits)
    fund(agent, 100_000)
    lines = [[make_line() for _k in range(2)] for _i in range(CLIENTS)]

    # when
    answers = race(
        CLIENTS,
        lambda i: [
            do_create_agent_topup(
                agent,
                external_id=f"lim-{i}-{k}",
                msisdn=lines[i][k].msisdn,
                plan_code=hkd_plan.code,
            )
            for k in range(2)
        ],
    )

    # then
    assert not [a for a in answers if isinstance(a, Exception)], answers
    topups = AgentTopUp.objects.filter(agent=agent)
    assert topups.filter(status=AgentTopUpStatus.COMPLETED).count() == sold
    refused = topups.exclude(status=AgentTopUpStatus.COMPLETED)
    assert set(refused.values_list("reason", "reason_detail")) == {("limit_reached", detail)}
    assert refused.count() == 2 * CLIENTS - sold
    _each_completed_once(agent)
    _float_is_deposits_less_sales(agent, 100_000)
    ledger_ok()


def _waiting_on_locks() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        (count,) = cursor.fetchone()
    return int(count)


def _until(predicate: Callable[[], bool]) -> None:
    """Wait for another connection to reach a state (a safety bound, not a timing check)."""
    for _i in range(600):
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("the other connections never got there")


def test_a_suspension_waits_for_the_sale_in_flight_and_the_next_sale_waits_for_it(
    make_agent: Callable[..., Agent],
    fund: Any,
    make_line: Callable[..., Any],
    hkd_plan: Any,
    ledger_ok: Any,
) -> None:
    # given a sale stopped half-way (another transaction holds its line)
    agent = make_agent()
    fund(agent, 100_000)
    slow_line, next_line = make_line(), make_line()
    hold, held = threading.Event(), threading.Event()
    results: dict[str, Any] = {}

    def run(name: str, fn: Callable[[], Any]) -> threading.Thread:
        def body() -> None:
            try:
                results[name] = fn()
            except Exception as exc:  # asserted below
                results[name] = exc
            finally:
                connections.close_all()

        thread = threading.Thread(target=body)
        thread.start()
        return thread

    def block_line() -> None:
        with transaction.atomic():
            Line.objects.select_for_update().get(pk=slow_line.pk)
            held.set()
            hold.wait(30)

    def sell(external_id: str, line: Any) -> Any:
        return do_create_agent_topup(
            agent, external_id=external_id, msisdn=line.msisdn, plan_code=hkd_plan.code
        )

    blocker = run("blocker", block_line)
    held.wait(30)
    in_flight = run("in_flight", lambda: sell("in-flight", slow_line))
    _until(lambda: _waiting_on_locks() == 1)

    # when staff suspend the agent, and one more sale comes in meanwhile
    suspend = run("suspend", lambda: do_set_agent_status(agent, "suspended", actor="staff:test"))
    _until(lambda: _waiting_on_locks() == 2)
    later = run("later", lambda: sell("later", next_line))
    _until(lambda: _waiting_on_locks() == 3)
    assert "suspend" not in results and "later" not in results
    hold.set()
    for thread in (blocker, in_flight, suspend, later):
        thread.join()

    # then the sale in flight completed, the suspension came after it, and
    # the sale queued behind the suspension was refused, writing nothing
    assert results["in_flight"].topup.status == AgentTopUpStatus.COMPLETED
    assert Agent.objects.get(pk=agent.pk).status == "suspended"
    assert getattr(results["later"], "code", "") == "agent_suspended"
    assert list(AgentTopUp.objects.values_list("external_id", flat=True)) == ["in-flight"]
    _float_is_deposits_less_sales(agent, 100_000)
    ledger_ok()


def test_a_suspension_under_sixteen_selling_clients_stops_every_one_of_them(
    make_agent: Callable[..., Agent],
    fund: Any,
    make_line: Callable[..., Any],
    hkd_plan: Any,
    ledger_ok: Any,
) -> None:
    # given sixteen clients selling without pause until refused (at most 40
    # each), and staff suspending the agent once sixteen sales are done
    agent = make_agent()
    fund(agent, 10_000_000)
    lines = [[make_line() for _k in range(40)] for _i in range(CLIENTS)]
    done = threading.Semaphore(0)

    def client(i: int) -> list[Any]:
        out: list[Any] = []
        for k in range(40):
            try:
                out.append(
                    do_create_agent_topup(
                        agent,
                        external_id=f"load-{i}-{k}",
                        msisdn=lines[i][k].msisdn,
                        plan_code=hkd_plan.code,
                    )
                )
                done.release()
            except AgentRefused as refused:
                out.append(refused)
                break
        return out

    def staff() -> Any:
        for _n in range(CLIENTS):
            done.acquire(timeout=60)
        return do_set_agent_status(agent, "suspended", actor="staff:test")

    # when
    answers = race_all([*(lambda i=i: client(i) for i in range(CLIENTS)), staff])

    # then the suspension got in while sales went on, and each client's
    # sales completed until it was refused, and none after
    assert answers[-1].status == "suspended"
    for per_client in answers[:-1]:
        assert not isinstance(per_client, Exception), per_client
        *sold, last = per_client
        assert getattr(last, "code", "") == "agent_suspended", per_client
        assert all(r.topup.status == AgentTopUpStatus.COMPLETED for r in sold)
    assert (
        AgentTopUp.objects.filter(agent=agent).exclude(status=AgentTopUpStatus.COMPLETED).count()
        == 0
    )
    _each_completed_once(agent)
    _float_is_deposits_less_sales(agent, 10_000_000)
    ledger_ok()


def test_a_different_request_in_flight_under_the_same_external_id_is_refused(
    make_agent: Callable[..., Agent],
    fund: Any,
    make_line: Callable[..., Any],
    hkd_plan: Any,
    ledger_ok: Any,
) -> None:
    # given: half the clients ask for one line, half for another, one external id
    agent = make_agent()
    fund(agent, 100_000)
    lines = [make_line(), make_line()]

    # when
    results = race(
        CLIENTS,
        lambda i: do_create_agent_topup(
            agent, external_id="shared", msisdn=lines[i % 2].msisdn, plan_code=hkd_plan.code
        ),
    )

    # then one sale; the requests like it get it, the others a conflict
    topup = AgentTopUp.objects.get()
    sold_to = 0 if topup.msisdn == lines[0].msisdn else 1
    for i, result in enumerate(results):
        if i % 2 == sold_to:
            assert result.topup.pk == topup.pk
        else:
            assert isinstance(result, AgentRefused) and result.code == "external_id_conflict"
    assert sum(1 for r in results if not isinstance(r, Exception) and not r.replayed) == 1
    _each_completed_once(agent)
    _float_is_deposits_less_sales(agent, 100_000)
    ledger_ok()
