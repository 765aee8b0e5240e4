"""Every action says its transaction shape, and the shapes hold."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest
from django.db import transaction

import leb
from leb.common.transactions import (
    SHAPE_ATTRIBUTE,
    in_transaction,
    one_transaction,
    outside_transaction,
)
from leb.ledger.models import Account, AccountKind


def _actions() -> list[tuple[str, object]]:
    found: list[tuple[str, object]] = []
    for info in pkgutil.walk_packages(leb.__path__, "leb."):
        name = info.name
        if ".tests" in name or ".migrations" in name or name.endswith(("conftest", "e2e")):
            continue
        if ".e2e" in name or ".management" in name:
            continue
        module = importlib.import_module(name)
        for attr, value in vars(module).items():
            defined_here = getattr(value, "__module__", "") == name
            if attr.startswith("do_") and inspect.isfunction(value) and defined_here:
                found.append((f"{name}.{attr}", value))
    return found


def test_every_action_says_its_transaction_shape() -> None:
    actions = _actions()
    assert len(actions) > 50
    missing = sorted(name for name, fn in actions if not hasattr(fn, SHAPE_ATTRIBUTE))
    assert not missing, f"actions without a transaction shape: {missing}"


@pytest.mark.django_db
def test_an_outside_action_refuses_to_run_inside_a_transaction() -> None:
    calls = []

    @outside_transaction
    def do_call_provider() -> None:
        calls.append(1)

    # given no transaction of our own (the test case's does not count)
    assert not in_transaction()
    do_call_provider()
    # when it is called inside one, then it refuses before doing anything
    with transaction.atomic(), pytest.raises(RuntimeError):
        do_call_provider()
    assert calls == [1]


@pytest.mark.django_db
def test_one_transaction_rolls_back_everything_it_wrote() -> None:
    @one_transaction
    def do_write_then_fail() -> None:
        Account.objects.create(code="test:shape", kind=AccountKind.SUSPENSE, currency="HKD")
        raise ValueError("boom")

    with pytest.raises(ValueError):
        do_write_then_fail()
    assert not Account.objects.filter(code="test:shape").exists()
