from __future__ import annotations

from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction

from leb.ledger.actions import (
    IdempotencyConflict,
    InsufficientFunds,
    InvalidTransfer,
    Leg,
    get_account,
    post_transfers,
    reverse_group,
    system_account,
)
from leb.ledger.models import Account, AccountKind, Transfer, TransferGroup
from leb.ledger.queries import balance_of, verify_ledger

pytestmark = pytest.mark.django_db


@pytest.fixture
def accounts() -> dict[str, Account]:
    return {
        "clearing": system_account(AccountKind.CLEARING, "HKD", "sandbox"),
        "revenue": system_account(AccountKind.REVENUE, "HKD", "topup"),
        "wallet": get_account(
            "wallet:test:1", AccountKind.WALLET, "HKD", no_negative=True, tracks_balance=True
        ),
        "wallet_gbp": get_account(
            "wallet:test:2", AccountKind.WALLET, "GBP", no_negative=True, tracks_balance=True
        ),
    }


def test_group_posts_all_legs_and_balances_sum_to_zero(
    accounts: dict[str, Account], ledger_ok: Any
) -> None:
    # given / when
    post_transfers(
        "evt:1",
        [
            Leg(accounts["clearing"], accounts["wallet"], 5000, "topup.credit"),
            Leg(accounts["clearing"], accounts["revenue"], 500, "topup.fee"),
        ],
    )
    # then
    assert balance_of(accounts["wallet"]) == 5000
    assert balance_of(accounts["revenue"]) == 500
    assert balance_of(accounts["clearing"]) == -5500
    ledger_ok()
    assert verify_ledger().totals["HKD"] == 0


def test_same_key_same_content_returns_first_group(
    accounts: dict[str, Account], ledger_ok: Any
) -> None:
    legs = [Leg(accounts["clearing"], accounts["wallet"], 100, "x")]
    first = post_transfers("evt:2", legs)
    second = post_transfers("evt:2", legs)
    assert second.pk == first.pk
    assert Transfer.objects.count() == 1
    assert balance_of(accounts["wallet"]) == 100
    ledger_ok()


def test_same_key_different_content_is_a_conflict(accounts: dict[str, Account]) -> None:
    post_transfers("evt:3", [Leg(accounts["clearing"], accounts["wallet"], 100, "x")])
    with pytest.raises(IdempotencyConflict):
        post_transfers("evt:3", [Leg(accounts["clearing"], accounts["wallet"], 101, "x")])
    assert Transfer.objects.count() == 1


def test_no_negative_account_refuses_overdraft_and_writes_nothing(
    accounts: dict[str, Account],
) -> None:
    post_transfers("evt:4", [Leg(accounts["clearing"], accounts["wallet"], 100, "x")])
    with pytest.raises(InsufficientFunds):
        post_transfers(
            "evt:5",
            [
                Leg(accounts["wallet"], accounts["revenue"], 60, "a"),
                Leg(accounts["wallet"], accounts["revenue"], 60, "b"),
            ],
        )
    assert balance_of(accounts["wallet"]) == 100
    assert not TransferGroup.objects.filter(idempotency_key="evt:5").exists()


def test_net_delta_within_a_group_may_pass_through_zero(
    accounts: dict[str, Account], ledger_ok: Any
) -> None:
    # A credit and a debit in one group: only the net result must stay >= 0.
    post_transfers(
        "evt:6",
        [
            Leg(accounts["clearing"], accounts["wallet"], 100, "in"),
            Leg(accounts["wallet"], accounts["revenue"], 100, "out"),
        ],
    )
    assert balance_of(accounts["wallet"]) == 0
    ledger_ok()


@pytest.mark.parametrize("amount", [0, -5, 1.5, True])
def test_bad_amounts_are_rejected(accounts: dict[str, Account], amount: Any) -> None:
    with pytest.raises(InvalidTransfer):
        post_transfers("evt:bad", [Leg(accounts["clearing"], accounts["wallet"], amount, "x")])
    assert TransferGroup.objects.count() == 0


def test_currency_mismatch_and_same_account_are_rejected(accounts: dict[str, Account]) -> None:
    with pytest.raises(InvalidTransfer):
        post_transfers("evt:cur", [Leg(accounts["clearing"], accounts["wallet_gbp"], 1, "x")])
    with pytest.raises(InvalidTransfer):
        post_transfers("evt:same", [Leg(accounts["wallet"], accounts["wallet"], 1, "x")])
    with pytest.raises(InvalidTransfer):
        post_transfers("evt:empty", [])
    assert TransferGroup.objects.count() == 0


def test_reversal_mirrors_and_can_happen_once(accounts: dict[str, Account], ledger_ok: Any) -> None:
    post_transfers("evt:7", [Leg(accounts["clearing"], accounts["wallet"], 300, "x")])
    reverse_group("evt:7", "evt:7:rev")
    assert balance_of(accounts["wallet"]) == 0
    reversal = Transfer.objects.get(group__idempotency_key="evt:7:rev")
    assert reversal.reverses is not None and reversal.reverses.amount == 300
    # replay of the same reversal is a no-op; a second reversal under another key is refused
    reverse_group("evt:7", "evt:7:rev")
    assert Transfer.objects.filter(reverses__isnull=False).count() == 1
    ledger_ok()


def test_a_transfer_is_reversed_at_most_once(accounts: dict[str, Account], ledger_ok: Any) -> None:
    post_transfers("evt:12", [Leg(accounts["clearing"], accounts["revenue"], 300, "x")])
    reverse_group("evt:12", "evt:12:rev")
    with pytest.raises(IntegrityError), transaction.atomic():
        reverse_group("evt:12", "evt:12:rev2")
    ledger_ok()


def test_reversal_of_spent_credit_is_refused(accounts: dict[str, Account]) -> None:
    post_transfers("evt:8", [Leg(accounts["clearing"], accounts["wallet"], 300, "x")])
    post_transfers("evt:9", [Leg(accounts["wallet"], accounts["revenue"], 200, "spend")])
    with pytest.raises(InsufficientFunds):
        reverse_group("evt:8", "evt:8:rev")


def test_no_negative_requires_running_balance() -> None:
    with pytest.raises(InvalidTransfer):
        get_account("x:1", AccountKind.WALLET, "HKD", no_negative=True, tracks_balance=False)


def test_verify_reports_tampering(accounts: dict[str, Account]) -> None:
    # given a clean ledger
    post_transfers("evt:10", [Leg(accounts["clearing"], accounts["wallet"], 300, "x")])
    call_command("ledger", "verify")
    # when a running balance is edited behind the ledger's back
    Account.objects.filter(pk=accounts["wallet"].pk).update(balance=999)
    # then verify says what is wrong and the command exits non-zero
    report = verify_ledger()
    assert any("running balance 999" in p for p in report.problems)
    with pytest.raises(CommandError, match="problem"):
        call_command("ledger", "verify")


def test_verify_reports_broken_reversal_and_currency(accounts: dict[str, Account]) -> None:
    post_transfers("evt:11", [Leg(accounts["clearing"], accounts["wallet"], 300, "x")])
    reverse_group("evt:11", "evt:11:rev")
    Transfer.objects.filter(group__idempotency_key="evt:11:rev").update(amount=299)
    Transfer.objects.filter(group__idempotency_key="evt:11").update(currency="GBP")
    problems = verify_ledger().problems
    assert any("does not mirror" in p for p in problems)
    assert any("currency differs" in p for p in problems)


def test_batch_posting_keeps_the_single_posting_rules(
    accounts: dict[str, Account], ledger_ok: Any
) -> None:
    from leb.ledger.actions import Posting, post_transfer_groups

    # given one group already posted
    first = Posting("batch:1", [Leg(accounts["clearing"], accounts["wallet"], 100, "x")])
    assert post_transfer_groups([first]) == 1
    # when it is posted again beside a new one, only the new one is posted
    second = Posting("batch:2", [Leg(accounts["clearing"], accounts["wallet"], 50, "x")])
    assert post_transfer_groups([first, second]) == 1
    assert balance_of(accounts["wallet"]) == 150
    # a replay with different content is a conflict, and writes nothing
    with pytest.raises(IdempotencyConflict):
        post_transfer_groups(
            [Posting("batch:1", [Leg(accounts["clearing"], accounts["wallet"], 99, "x")])]
        )
    # an overdraft anywhere in the batch posts nothing
    with pytest.raises(InsufficientFunds):
        post_transfer_groups(
            [
                Posting("batch:3", [Leg(accounts["clearing"], accounts["revenue"], 10, "y")]),
                Posting("batch:4", [Leg(accounts["wallet"], accounts["revenue"], 151, "y")]),
            ]
        )
    assert not TransferGroup.objects.filter(idempotency_key__in=["batch:3", "batch:4"]).exists()
    assert balance_of(accounts["wallet"]) == 150
    ledger_ok()


def test_batch_posting_refuses_a_key_twice(accounts: dict[str, Account]) -> None:
    from leb.ledger.actions import Posting, post_transfer_groups

    posting = Posting("batch:dup", [Leg(accounts["clearing"], accounts["wallet"], 1, "x")])
    with pytest.raises(InvalidTransfer):
        post_transfer_groups([posting, posting])
