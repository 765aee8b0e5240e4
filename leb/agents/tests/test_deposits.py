"""Deposits: one person records, another approves; only then is the float credited."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from leb.agents.actions import (
    AgentError,
    do_approve_deposit,
    do_record_deposit,
    do_reject_deposit,
)
from leb.agents.models import Agent, AgentDeposit, DepositStatus
from leb.agents.queries import balance
from leb.audit.models import AuditEntry
from leb.ledger.models import TransferGroup

pytestmark = pytest.mark.django_db


@pytest.fixture
def new_agent(make_agent: Callable[..., Agent]) -> Agent:
    return make_agent()


def record(agent: Agent, staff: Any, amount: int = 20_000, ref: str = "HSBC-001") -> AgentDeposit:
    return do_record_deposit(agent, amount=amount, currency="HKD", bank_reference=ref, staff=staff)


def test_a_recorded_deposit_waits_and_credits_nothing(new_agent: Agent, recorder: Any) -> None:
    # when
    deposit = record(new_agent, recorder)

    # then
    assert deposit.status == DepositStatus.PENDING
    assert balance(new_agent).available == 0
    assert AuditEntry.objects.filter(action="agent.deposit.record").count() == 1


def test_a_second_person_approves_and_the_float_is_credited_once(
    new_agent: Agent, recorder: Any, approver: Any, ledger_ok: Any
) -> None:
    # given
    deposit = record(new_agent, recorder)

    # when
    approved = do_approve_deposit(deposit, staff=approver)
    again = do_approve_deposit(deposit, staff=approver)

    # then
    assert approved.status == again.status == DepositStatus.APPROVED
    assert approved.decided_by == approver
    assert balance(new_agent).available == 20_000
    assert (
        TransferGroup.objects.filter(idempotency_key=f"agent-deposit:{deposit.pk}:approve").count()
        == 1
    )
    assert AuditEntry.objects.filter(action="agent.deposit.approve").count() == 1
    ledger_ok()


def test_the_recorder_may_not_approve_or_reject(new_agent: Agent, recorder: Any) -> None:
    # given
    deposit = record(new_agent, recorder)

    # when / then
    with pytest.raises(AgentError) as approving:
        do_approve_deposit(deposit, staff=recorder)
    with pytest.raises(AgentError) as rejecting:
        do_reject_deposit(deposit, staff=recorder)
    assert approving.value.code == rejecting.value.code == "same_person"
    assert AgentDeposit.objects.get().status == DepositStatus.PENDING
    assert balance(new_agent).available == 0


def test_a_rejected_deposit_is_never_credited(
    new_agent: Agent, recorder: Any, approver: Any, ledger_ok: Any
) -> None:
    # given
    deposit = record(new_agent, recorder)

    # when
    rejected = do_reject_deposit(deposit, staff=approver, note="no such transfer")

    # then
    assert rejected.status == DepositStatus.REJECTED
    with pytest.raises(AgentError) as approving:
        do_approve_deposit(deposit, staff=approver)
    assert approving.value.code == "deposit_rejected"
    assert balance(new_agent).available == 0
    assert AuditEntry.objects.filter(action="agent.deposit.reject").count() == 1
    approved = record(new_agent, recorder, ref="HSBC-002")
    do_approve_deposit(approved, staff=approver)
    with pytest.raises(AgentError) as rejecting:
        do_reject_deposit(approved, staff=approver)
    assert rejecting.value.code == "deposit_approved"
    ledger_ok()


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"amount": 0}, "amount_not_positive"),
        ({"amount": -5}, "amount_not_positive"),
        ({"currency": "GBP"}, "currency_mismatch"),
        ({"bank_reference": "  "}, "reference_required"),
    ],
)
def test_bad_deposits_are_refused(
    new_agent: Agent, recorder: Any, fields: dict[str, Any], code: str
) -> None:
    # given
    values: dict[str, Any] = {"amount": 100, "currency": "HKD", "bank_reference": "REF-1"}
    values.update(fields)

    # when
    with pytest.raises(AgentError) as refused:
        do_record_deposit(new_agent, staff=recorder, **values)

    # then
    assert refused.value.code == code
    assert AgentDeposit.objects.count() == 0


def test_a_bank_reference_is_recorded_once(new_agent: Agent, recorder: Any) -> None:
    # given
    record(new_agent, recorder)

    # when
    with pytest.raises(AgentError) as refused:
        record(new_agent, recorder)

    # then
    assert refused.value.code == "reference_taken"
