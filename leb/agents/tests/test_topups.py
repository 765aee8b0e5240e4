"""POST /agent/v1/topups and friends: the books of a sale, idempotency by
external id, every refusal, two-step mode, reversal."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.core.management import call_command

from leb.agents.actions import (
    AgentError,
    do_confirm_agent_topup,
    do_create_agent_topup,
    do_reverse_agent_topup,
)
from leb.agents.models import Agent, AgentTopUp, AgentTopUpStatus
from leb.agents.queries import balance
from leb.agents.tests.helpers import SignedClient, problem
from leb.common import clock
from leb.ledger.models import Account, Transfer
from leb.topups.models import OrderStatus, TopUpOrder

pytestmark = pytest.mark.django_db
URL = "/agent/v1/topups"


def _account(code: str) -> int:
    account = Account.objects.get(code=code)
    if account.tracks_balance:
        return account.balance
    credits = sum(t.amount for t in Transfer.objects.filter(credit_account=account))
    debits = sum(t.amount for t in Transfer.objects.filter(debit_account=account))
    return credits - debits


def terminate(line: Any) -> None:
    """Validity long past: the line is terminated on read, before any sweep."""
    line.valid_until = clock.now() - timedelta(days=400)
    line.save(update_fields=["valid_until"])


def sell(api: SignedClient, line: Any, plan: Any, external_id: str = "ext-1", **extra: Any) -> Any:
    body = {"external_id": external_id, "msisdn": line.msisdn, "plan_code": plan.code, **extra}
    return api.post(URL, body)


def test_an_instant_sale_debits_the_float_wholesale_and_credits_the_wallet_retail(
    api: SignedClient, agent: Agent, make_line: Callable[..., Any], hkd_plan: Any, ledger_ok: Any
) -> None:
    # given
    line = make_line()

    # when
    response = sell(api, line, hkd_plan)

    # then
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "completed"
    assert body["wholesale_price"]["amount"] == 4500  # 10 % off 5000
    assert body["retail_value"]["amount"] == 5000
    assert body["receipt_number"]
    assert body["days_added"] == 180
    order = TopUpOrder.objects.get()
    assert order.channel == "agent"
    assert order.actor == f"agent:{agent.code}"
    assert order.status == OrderStatus.FULFILLED
    assert order.idempotency_key == f"agent:{agent.code}:ext-1"
    assert _account(f"agent_float:{agent.code}:HKD") == 100_000 - 4500
    assert _account(f"agent_commission:{agent.code}:HKD") == -500
    assert _account(f"wallet:line:{line.pk}") == 5000
    assert _account("clearing:agent:HKD") == 0
    ledger_ok()


def test_the_same_external_id_and_body_returns_the_first_result(
    api: SignedClient, agent: Agent, make_line: Callable[..., Any], hkd_plan: Any, ledger_ok: Any
) -> None:
    # given
    line = make_line()
    first = sell(api, line, hkd_plan)

    # when
    again = sell(api, line, hkd_plan)

    # then
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert TopUpOrder.objects.count() == 1
    assert balance(agent).available == 100_000 - 4500
    ledger_ok()


def test_the_same_external_id_with_another_body_is_a_conflict(
    api: SignedClient, agent: Agent, make_line: Callable[..., Any], hkd_plan: Any
) -> None:
    # given
    sell(api, make_line(), hkd_plan)

    # when
    response = sell(api, make_line(), hkd_plan)

    # then
    problem(response, 409, "external_id_conflict")
    assert AgentTopUp.objects.count() == 1


def test_a_float_too_low_fails_the_sale_and_moves_no_money(
    api: SignedClient,
    make_agent: Callable[..., Agent],
    make_line: Callable[..., Any],
    hkd_plan: Any,
    ledger_ok: Any,
    key: Any,
) -> None:
    # given: the agent's float holds 100,000; drain it to 1,000
    agent = key.key.agent
    line = make_line()
    for n in range(22):
        do_create_agent_topup(
            agent,
            external_id=f"drain-{n}",
            msisdn=make_line().msisdn,
            plan_code=hkd_plan.code,
        )
    before = balance(agent).available
    assert before == 100_000 - 22 * 4500
    orders = TopUpOrder.objects.count()

    # when
    response = sell(api, line, hkd_plan, external_id="too-much")

    # then
    assert response.status_code == 201
    assert response.json()["status"] == "failed"
    assert response.json()["reason"] == "insufficient_float"
    assert balance(agent).available == before
    assert TopUpOrder.objects.count() == orders
    outcome = api.get(f"{URL}?external_id=too-much")
    assert outcome.json()["reason"] == "insufficient_float"
    ledger_ok()


@pytest.mark.parametrize(
    ("limits", "detail"),
    [
        ({"max_transaction_amount": 4000}, "per_transaction"),
        ({"daily_count_limit": 1}, "daily_count"),
        ({"daily_amount_limit": 8000}, "daily_amount"),
    ],
)
def test_limits_fail_the_sale(
    make_agent: Callable[..., Agent],
    fund: Any,
    make_line: Callable[..., Any],
    hkd_plan: Any,
    limits: dict[str, int],
    detail: str,
    ledger_ok: Any,
) -> None:
    # given
    agent = make_agent(**limits)
    fund(agent, 50_000)
    if detail != "per_transaction":
        first = do_create_agent_topup(
            agent, external_id="first", msisdn=make_line().msisdn, plan_code=hkd_plan.code
        )
        assert first.topup.status == AgentTopUpStatus.COMPLETED

    # when
    result = do_create_agent_topup(
        agent, external_id="second", msisdn=make_line().msisdn, plan_code=hkd_plan.code
    )

    # then
    assert result.topup.status == AgentTopUpStatus.FAILED
    assert (result.topup.reason, result.topup.reason_detail) == ("limit_reached", detail)
    assert result.topup.order is None
    ledger_ok()


def test_the_daily_limits_start_again_the_next_day(
    make_agent: Callable[..., Agent], fund: Any, make_line: Callable[..., Any], hkd_plan: Any
) -> None:
    # given
    agent = make_agent(daily_count_limit=1)
    fund(agent, 50_000)
    do_create_agent_topup(
        agent, external_id="a", msisdn=make_line().msisdn, plan_code=hkd_plan.code
    )

    # when
    clock.advance(timedelta(days=1))
    result = do_create_agent_topup(
        agent, external_id="b", msisdn=make_line().msisdn, plan_code=hkd_plan.code
    )

    # then
    assert result.topup.status == AgentTopUpStatus.COMPLETED


def test_a_plan_outside_the_agents_list_is_not_allowed(
    make_agent: Callable[..., Agent], fund: Any, make_line: Callable[..., Any], hkd_plan: Any
) -> None:
    # given
    agent = make_agent(allowed_plan_codes=["hk-100"])
    fund(agent, 50_000)

    # when
    result = do_create_agent_topup(
        agent, external_id="x", msisdn=make_line().msisdn, plan_code=hkd_plan.code
    )

    # then
    assert result.topup.status == AgentTopUpStatus.FAILED
    assert result.topup.reason == "plan_not_allowed"
    assert balance(agent).available == 50_000


def test_a_plan_in_another_currency_or_unknown_is_not_allowed(
    agent: Agent, make_line: Callable[..., Any], gbp_plan: Any
) -> None:
    # given
    line = make_line()

    # when
    other = do_create_agent_topup(
        agent, external_id="x", msisdn=line.msisdn, plan_code=gbp_plan.code
    )
    unknown = do_create_agent_topup(agent, external_id="y", msisdn=line.msisdn, plan_code="nope")

    # then
    assert other.topup.reason == "plan_not_allowed"
    assert unknown.topup.reason == "plan_not_allowed"


def test_a_plan_not_sold_on_the_agent_channel_is_not_allowed(
    agent: Agent, make_line: Callable[..., Any], hkd_plan: Any
) -> None:
    # given
    hkd_plan.channels = ["web"]
    hkd_plan.save()

    # when
    result = do_create_agent_topup(
        agent, external_id="x", msisdn=make_line().msisdn, plan_code=hkd_plan.code
    )

    # then
    assert (result.topup.reason, result.topup.reason_detail) == ("plan_not_allowed", "plan_channel")


def test_the_same_line_and_plan_again_within_minutes_needs_allow_repeat(
    api: SignedClient, agent: Agent, make_line: Callable[..., Any], hkd_plan: Any
) -> None:
    # given
    line = make_line()
    sell(api, line, hkd_plan, external_id="one")

    # when
    refused = sell(api, line, hkd_plan, external_id="two")
    intended = sell(api, line, hkd_plan, external_id="three", allow_repeat=True)

    # then
    assert refused.json()["reason"] == "recently_topped_up"
    assert intended.json()["status"] == "completed"


def test_a_terminated_line_fails_the_sale(
    agent: Agent, make_line: Callable[..., Any], hkd_plan: Any, now: datetime
) -> None:
    # given
    line = make_line()
    terminate(line)

    # when
    result = do_create_agent_topup(
        agent, external_id="x", msisdn=line.msisdn, plan_code=hkd_plan.code
    )

    # then
    assert (result.topup.status, result.topup.reason) == ("failed", "line_terminated")
    assert TopUpOrder.objects.count() == 0
    assert balance(agent).available == 100_000


def test_a_line_not_yet_activated_fails_as_line_terminated(
    agent: Agent, make_line: Callable[..., Any], hkd_plan: Any
) -> None:
    # given
    line = make_line(activate=False)

    # when
    result = do_create_agent_topup(
        agent, external_id="x", msisdn=line.msisdn, plan_code=hkd_plan.code
    )

    # then
    assert (result.topup.reason, result.topup.reason_detail) == (
        "line_terminated",
        "line_inventory",
    )


def test_a_top_up_that_adds_nothing_fails(
    agent: Agent, make_line: Callable[..., Any], hkd_plan: Any
) -> None:
    # given: a plan with no credit, on a line already at its validity cap
    hkd_plan.credit = 0
    hkd_plan.save()
    line = make_line()
    line.valid_until = clock.now() + timedelta(days=365)
    line.save(update_fields=["valid_until"])

    # when
    result = do_create_agent_topup(
        agent, external_id="x", msisdn=line.msisdn, plan_code=hkd_plan.code
    )

    # then
    assert result.topup.reason == "adds_nothing"


def test_an_unknown_or_invalid_number_is_refused_and_nothing_written(
    api: SignedClient, agent: Agent, hkd_plan: Any
) -> None:
    # when
    unknown = api.post(URL, {"external_id": "x", "msisdn": "+85294999999", "plan_code": "hk-50"})
    invalid = api.post(URL, {"external_id": "y", "msisdn": "12ab", "plan_code": "hk-50"})
    bad_body = api.post(URL, {"external_id": "", "msisdn": "+85294999999", "plan_code": "hk-50"})
    bad_mode = api.post(
        URL, {"external_id": "z", "msisdn": "+85294999999", "plan_code": "hk-50", "mode": "later"}
    )

    # then
    problem(unknown, 404, "line_unknown")
    problem(invalid, 422, "invalid_number")
    problem(bad_body, 422, "validation_error")
    problem(bad_mode, 422, "validation_error")
    assert AgentTopUp.objects.count() == 0


def test_a_two_step_top_up_reserves_then_completes_on_confirm(
    api: SignedClient, agent: Agent, make_line: Callable[..., Any], hkd_plan: Any, ledger_ok: Any
) -> None:
    # given
    line = make_line()
    created = sell(api, line, hkd_plan, mode="two_step").json()
    assert created["status"] == "created"
    assert created["expires_at"]
    assert balance(agent).available == 100_000 - 4500
    assert balance(agent).reserved == 4500
    ledger_ok()

    # when
    confirmed = api.post(f"{URL}/{created['id']}/confirm")

    # then
    assert confirmed.status_code == 200, confirmed.content
    assert confirmed.json()["status"] == "completed"
    assert confirmed.json()["receipt_number"]
    assert balance(agent).available == 100_000 - 4500
    assert balance(agent).reserved == 0
    assert _account(f"wallet:line:{line.pk}") == 5000
    again = api.post(f"{URL}/{created['id']}/confirm")
    assert again.json()["status"] == "completed"
    ledger_ok()


def test_an_unconfirmed_two_step_top_up_expires_and_releases_the_float(
    agent: Agent, make_line: Callable[..., Any], hkd_plan: Any, ledger_ok: Any
) -> None:
    # given
    result = do_create_agent_topup(
        agent, external_id="x", msisdn=make_line().msisdn, plan_code=hkd_plan.code, mode="two_step"
    )

    # when
    clock.advance(timedelta(minutes=16))
    call_command("agents", "expire")

    # then
    topup = AgentTopUp.objects.get(pk=result.topup.pk)
    assert topup.status == AgentTopUpStatus.EXPIRED
    assert balance(agent).available == 100_000
    assert balance(agent).reserved == 0
    assert TopUpOrder.objects.get().status == OrderStatus.CANCELLED
    ledger_ok()


def test_a_sale_short_of_float_first_gives_back_the_overdue_holds(
    make_agent: Callable[..., Agent],
    fund: Any,
    make_line: Callable[..., Any],
    hkd_plan: Any,
    ledger_ok: Any,
) -> None:
    # given: the float's only sale is held by a two-step top-up past its time
    agent = make_agent()
    fund(agent, 4500)
    held = do_create_agent_topup(
        agent,
        external_id="hold",
        msisdn=make_line().msisdn,
        plan_code=hkd_plan.code,
        mode="two_step",
    ).topup
    assert balance(agent).available == 0
    clock.advance(timedelta(minutes=16))

    # when
    result = do_create_agent_topup(
        agent, external_id="sale", msisdn=make_line().msisdn, plan_code=hkd_plan.code
    )

    # then
    assert result.topup.status == AgentTopUpStatus.COMPLETED
    assert AgentTopUp.objects.get(pk=held.pk).status == AgentTopUpStatus.EXPIRED
    assert (balance(agent).available, balance(agent).reserved) == (0, 0)
    ledger_ok()


def test_a_refused_sale_writes_nothing_but_its_refusal(
    make_agent: Callable[..., Agent],
    fund: Any,
    make_line: Callable[..., Any],
    hkd_plan: Any,
    ledger_ok: Any,
) -> None:
    # given a float one sale short, after the sale was priced and paid for
    from leb.ledger.models import TransferGroup

    agent = make_agent()
    fund(agent, 4499)
    line = make_line()
    groups = TransferGroup.objects.count()

    # when
    result = do_create_agent_topup(
        agent, external_id="short", msisdn=line.msisdn, plan_code=hkd_plan.code
    )

    # then no order, no posting, the line untouched; the refusal kept with its prices
    topup = AgentTopUp.objects.get()
    assert (topup.pk, topup.status, topup.reason) == (
        result.topup.pk,
        "failed",
        "insufficient_float",
    )
    assert (topup.wholesale_price, topup.retail_price, topup.order) == (4500, 5000, None)
    assert TopUpOrder.objects.count() == 0
    assert TransferGroup.objects.count() == groups
    assert type(line).objects.get(pk=line.pk).valid_until == line.valid_until
    assert balance(agent).available == 4499
    again = do_create_agent_topup(
        agent, external_id="short", msisdn=line.msisdn, plan_code=hkd_plan.code
    )
    assert (again.replayed, again.topup.pk) == (True, topup.pk)
    ledger_ok()


def test_confirming_after_expiry_is_refused_and_releases_on_read(
    api: SignedClient, agent: Agent, make_line: Callable[..., Any], hkd_plan: Any, ledger_ok: Any
) -> None:
    # given
    created = sell(api, make_line(), hkd_plan, mode="two_step").json()
    clock.advance(timedelta(minutes=16))

    # when
    response = api.post(f"{URL}/{created['id']}/confirm")

    # then
    problem(response, 409, "topup_expired")
    assert api.get(f"{URL}/{created['id']}").json()["status"] == "expired"
    assert balance(agent).available == 100_000
    ledger_ok()


def test_reading_an_expired_two_step_top_up_releases_it(
    api: SignedClient, agent: Agent, make_line: Callable[..., Any], hkd_plan: Any
) -> None:
    # given
    created = sell(api, make_line(), hkd_plan, mode="two_step").json()
    clock.advance(timedelta(minutes=16))

    # when
    response = api.get(f"{URL}?external_id=ext-1")

    # then
    assert response.json()["status"] == "expired"
    assert balance(agent).reserved == 0
    assert created["id"] == response.json()["id"]


def test_confirming_an_instant_or_unknown_top_up_is_refused(
    api: SignedClient, agent: Agent, make_line: Callable[..., Any], hkd_plan: Any
) -> None:
    # given
    line = make_line()
    instant = sell(api, line, hkd_plan).json()
    failed = sell(api, line, hkd_plan, external_id="again").json()  # recently_topped_up

    # when / then
    assert api.post(f"{URL}/{instant['id']}/confirm").json()["status"] == "completed"
    problem(api.post(f"{URL}/{failed['id']}/confirm"), 409, "topup_not_open")
    problem(api.post(f"{URL}/nope/confirm"), 404, "not_found")


def test_a_two_step_confirm_on_a_line_gone_out_of_service_fails_and_releases(
    agent: Agent, make_line: Callable[..., Any], hkd_plan: Any, now: datetime, ledger_ok: Any
) -> None:
    # given
    line = make_line()
    result = do_create_agent_topup(
        agent, external_id="x", msisdn=line.msisdn, plan_code=hkd_plan.code, mode="two_step"
    )
    terminate(line)

    # when
    topup = do_confirm_agent_topup(agent, result.topup.public_id)

    # then
    assert (topup.status, topup.reason) == ("failed", "line_terminated")
    assert balance(agent).available == 100_000
    ledger_ok()


def test_an_agent_learns_the_outcome_by_id_or_external_id_and_not_another_agents(
    api: SignedClient,
    agent: Agent,
    make_agent: Callable[..., Agent],
    fund: Any,
    make_line: Callable[..., Any],
    hkd_plan: Any,
) -> None:
    # given
    other = make_agent(display_name="Other")
    fund(other, 10_000)
    theirs = do_create_agent_topup(
        other, external_id="theirs", msisdn=make_line().msisdn, plan_code=hkd_plan.code
    ).topup
    mine = sell(api, make_line(), hkd_plan).json()

    # when / then
    assert api.get(f"{URL}/{mine['id']}").json()["external_id"] == "ext-1"
    assert api.get(f"{URL}?external_id=ext-1").json()["id"] == mine["id"]
    problem(api.get(f"{URL}/{theirs.public_id}"), 404, "not_found")
    problem(api.get(f"{URL}?external_id=theirs"), 404, "not_found")
    problem(api.get(f"{URL}?external_id="), 422, "external_id_invalid")


def test_staff_reverse_a_sale_and_the_float_is_made_whole(
    api: SignedClient,
    agent: Agent,
    make_line: Callable[..., Any],
    hkd_plan: Any,
    approver: Any,
    ledger_ok: Any,
) -> None:
    # given
    line = make_line()
    sell(api, line, hkd_plan)
    topup = AgentTopUp.objects.get()

    # when
    reversed_ = do_reverse_agent_topup(topup, staff=approver, reason="sold to wrong number")

    # then
    assert reversed_.status == AgentTopUpStatus.REVERSED
    order = TopUpOrder.objects.get()
    assert order.status == OrderStatus.REFUNDED
    assert order.refund_due is False
    assert balance(agent).available == 100_000
    assert _account(f"agent_commission:{agent.code}:HKD") == 0
    assert _account(f"wallet:line:{line.pk}") == 0
    assert api.get(f"{URL}/{topup.public_id}").json()["status"] == "reversed"
    again = do_reverse_agent_topup(topup, staff=approver, reason="twice")
    assert again.status == AgentTopUpStatus.REVERSED
    ledger_ok()


def test_only_a_completed_sale_can_be_reversed_and_a_reason_is_needed(
    agent: Agent, make_line: Callable[..., Any], hkd_plan: Any, approver: Any
) -> None:
    # given
    held = do_create_agent_topup(
        agent, external_id="x", msisdn=make_line().msisdn, plan_code=hkd_plan.code, mode="two_step"
    ).topup

    # when / then
    with pytest.raises(AgentError) as not_completed:
        do_reverse_agent_topup(held, staff=approver, reason="no")
    assert not_completed.value.code == "not_completed"
    with pytest.raises(AgentError) as no_reason:
        do_reverse_agent_topup(held, staff=approver, reason=" ")
    assert no_reason.value.code == "reason_required"


def test_an_instant_sale_stays_within_its_query_budget(
    api: SignedClient,
    agent: Agent,
    make_line: Callable[..., Any],
    hkd_plan: Any,
    django_assert_max_num_queries: Any,
) -> None:
    # given
    line = make_line()
    sell(api, make_line(), hkd_plan, external_id="warm-up")

    # when / then: 46 statements on SQLite (savepoints included; 54 before the
    # sale quoted once and took one accounts lookup): the order path's own
    # plus the agent's row, the external id's claim and the repeat check
    with django_assert_max_num_queries(48):
        response = sell(api, line, hkd_plan, external_id="measured")
    assert response.json()["status"] == "completed"


def test_the_periodic_job_releases_overdue_reservations(
    agent: Agent, make_line: Callable[..., Any], hkd_plan: Any, ledger_ok: Any
) -> None:
    # given
    from leb.agents.tasks import expire_agent_topups_task

    do_create_agent_topup(
        agent, external_id="x", msisdn=make_line().msisdn, plan_code=hkd_plan.code, mode="two_step"
    )
    not_yet = expire_agent_topups_task.call()

    # when
    clock.advance(timedelta(minutes=15))
    released = expire_agent_topups_task.call()

    # then
    assert (not_yet, released) == (0, 1)
    assert balance(agent).reserved == 0
    ledger_ok()


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"external_id": ""}, "external_id_invalid"),
        ({"external_id": "x" * 65}, "external_id_invalid"),
        ({"mode": "later"}, "mode_invalid"),
    ],
)
def test_the_action_refuses_bad_input_and_writes_nothing(
    agent: Agent, make_line: Callable[..., Any], hkd_plan: Any, fields: dict[str, str], code: str
) -> None:
    # given
    from leb.agents.actions import AgentRefused

    values = {"external_id": "ok", "msisdn": make_line().msisdn, "plan_code": hkd_plan.code}
    values.update(fields)

    # when
    with pytest.raises(AgentRefused) as refused:
        do_create_agent_topup(agent, **values)

    # then
    assert refused.value.code == code
    assert AgentTopUp.objects.count() == 0


def test_a_suspended_agent_cannot_sell_or_confirm_even_past_the_api(
    agent: Agent, make_line: Callable[..., Any], hkd_plan: Any
) -> None:
    # given
    from leb.agents.actions import AgentRefused, do_set_agent_status

    held = do_create_agent_topup(
        agent,
        external_id="held",
        msisdn=make_line().msisdn,
        plan_code=hkd_plan.code,
        mode="two_step",
    ).topup
    do_set_agent_status(agent, "suspended", actor="staff:test")

    # when / then
    with pytest.raises(AgentRefused) as selling:
        do_create_agent_topup(
            agent, external_id="new", msisdn=make_line().msisdn, plan_code=hkd_plan.code
        )
    with pytest.raises(AgentRefused) as confirming:
        do_confirm_agent_topup(agent, held.public_id)
    assert selling.value.code == confirming.value.code == "agent_suspended"
    assert AgentTopUp.objects.count() == 1
