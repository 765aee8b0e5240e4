"""Voucher fixtures: a distributor, a free-amount rule and a batch factory
that returns the clear PINs read back from the printer's export file."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from leb.vouchers.actions import do_activate_batch, do_generate_batch
from leb.vouchers.models import Distributor, VoucherBatch

from .helpers import read_export


@dataclass
class Made:
    batch: VoucherBatch
    path: Path
    rows: list[dict[str, str]]

    @property
    def pins(self) -> list[str]:
        return [row["pin"] for row in self.rows]

    @property
    def serials(self) -> list[str]:
        return [row["serial"] for row in self.rows]


@pytest.fixture
def distributor(db: Any) -> Distributor:
    return Distributor.objects.create(code="shop", name="Corner Shop")


@pytest.fixture
def free_rule(db: Any) -> Any:
    from leb.catalog.models import FreeAmountRule

    return FreeAmountRule.objects.create(
        currency="HKD", min_amount=1000, max_amount=100000, tiers=[[1000, 30], [5000, 180]]
    )


@pytest.fixture
def make_batch(
    distributor: Distributor, free_rule: Any, tmp_path: Path, now: datetime
) -> Callable[..., Made]:
    counter = iter(range(1, 1000))

    def factory(
        *,
        code: str = "",
        quantity: int = 5,
        value: int | None = 10000,
        plan: Any = None,
        currency: str | None = "HKD",
        luhn: bool = True,
        activate: bool = True,
        expires_on: date | None = None,
        at: datetime | None = None,
    ) -> Made:
        code = code or f"HK{next(counter):02d}"
        out = tmp_path / f"{code}.csv"
        made = do_generate_batch(
            code=code,
            distributor=distributor,
            quantity=quantity,
            expires_on=expires_on or (now + timedelta(days=365)).date(),
            out=out,
            currency=currency,
            value=None if plan is not None else value,
            plan=plan,
            luhn=luhn,
            actor="staff:test",
            now=at or now,
        )
        if activate:
            do_activate_batch(made.batch, actor="staff:test", now=at or now)
        made.batch.refresh_from_db()
        return Made(made.batch, out, read_export(out))

    return factory
