"""leb.common.money: the sets of records that add up to an amount."""

from __future__ import annotations

from leb.common.money import sets_making


def test_every_set_that_makes_the_amount_smaller_sets_first() -> None:
    # given refunds of 20, 10, 10 and 30
    amounts = [20, 10, 10, 30]

    # when the sets making 30 are asked for
    found = list(sets_making(30, amounts, lambda amount: amount))

    # then the single 30 comes first, then each pair, then none of three
    assert found == [(30,), (20, 10), (20, 10)]


def test_no_set_makes_an_amount_nothing_adds_up_to() -> None:
    assert list(sets_making(25, [20, 10], lambda amount: amount)) == []


def test_the_empty_set_makes_nothing() -> None:
    assert list(sets_making(0, [5], lambda amount: amount)) == [()]
