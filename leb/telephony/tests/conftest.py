"""Telephony fixtures: Twilio's token and the public URL the fake Twilio
signs, a line calling from its own number, vouchers, a saved card."""

from __future__ import annotations

import csv
import itertools
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from .caller import BASE, TOKEN, USSD_SECRET, FakeTwilio

_codes = itertools.count(1)


@pytest.fixture(autouse=True)
def _phone_settings(settings: Any) -> None:
    settings.TWILIO_AUTH_TOKEN = TOKEN
    settings.PHONE_PUBLIC_URL = BASE
    settings.USSD_SECRET = USSD_SECRET
    settings.IVR_SUPPORT_NUMBER = ""
    settings.IVR_CALL_CHARGE_NOTICE = ""
    settings.IVR_SUPPORT_HOURS = ""


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch, now: datetime) -> Callable[[datetime], None]:
    """Views read leb.common.clock.now(); tests set it."""
    from leb.common import clock

    current = {"now": now}
    monkeypatch.setattr(clock, "now", lambda: current["now"])

    def move(to: datetime) -> None:
        current["now"] = to

    return move


@pytest.fixture
def line(make_line: Any, owner: Any, frozen_clock: Any) -> Any:
    return make_line(owner=owner)


@pytest.fixture
def call(line: Any) -> Callable[..., FakeTwilio]:
    def dial(caller: str | None = None, **kwargs: Any) -> FakeTwilio:
        return FakeTwilio(caller=line.msisdn if caller is None else caller, **kwargs)

    return dial


@pytest.fixture
def make_pins(db: Any, tmp_path: Path, now: datetime) -> Callable[..., list[str]]:
    """Active vouchers; returns their clear PINs (read from the printer's file)."""
    from leb.catalog.models import FreeAmountRule
    from leb.vouchers.actions import do_activate_batch, do_generate_batch
    from leb.vouchers.models import Distributor

    def factory(
        *,
        quantity: int = 2,
        value: int = 10000,
        currency: str = "HKD",
        expires_in_days: int = 365,
        activate: bool = True,
    ) -> list[str]:
        for code in ("HKD", "GBP"):
            FreeAmountRule.objects.get_or_create(
                currency=code,
                defaults={
                    "min_amount": 1000,
                    "max_amount": 100000,
                    "tiers": [[1000, 30], [5000, 180]],
                },
            )
        distributor, _created = Distributor.objects.get_or_create(
            code="shop", defaults={"name": "Corner Shop"}
        )
        code = f"TEL{next(_codes):02d}"
        out = tmp_path / f"{code}.csv"
        made = do_generate_batch(
            code=code,
            distributor=distributor,
            quantity=quantity,
            expires_on=(now + timedelta(days=expires_in_days)).date(),
            out=out,
            currency=currency,
            value=value,
            luhn=True,
            actor="staff:test",
            now=now,
        )
        if activate:
            do_activate_batch(made.batch, actor="staff:test", now=now)
        with out.open(newline="", encoding="utf-8") as stream:
            return [row["pin"] for row in csv.DictReader(stream)]

    return factory


@pytest.fixture
def saved_card(owner: Any, now: datetime) -> Callable[..., Any]:
    from leb.autokeep.actions import do_save_sandbox_method

    def save(number: str = "4242424242424242") -> Any:
        return do_save_sandbox_method(owner, number, 12, now.year + 3, now=now)

    return save


@pytest.fixture
def make_batch_for_plan(db: Any, tmp_path: Path, now: datetime) -> Callable[..., str]:
    """One active voucher for `plan`; returns its clear PIN."""
    from leb.vouchers.actions import do_activate_batch, do_generate_batch
    from leb.vouchers.models import Distributor

    def factory(plan: Any) -> str:
        distributor, _created = Distributor.objects.get_or_create(
            code="shop", defaults={"name": "Corner Shop"}
        )
        code = f"TEL{next(_codes):02d}"
        out = tmp_path / f"{code}.csv"
        made = do_generate_batch(
            code=code,
            distributor=distributor,
            quantity=1,
            expires_on=(now + timedelta(days=365)).date(),
            out=out,
            currency=None,
            value=None,
            plan=plan,
            luhn=True,
            actor="staff:test",
            now=now,
        )
        do_activate_batch(made.batch, actor="staff:test", now=now)
        with out.open(newline="", encoding="utf-8") as stream:
            return str(next(csv.DictReader(stream))["pin"])

    return factory
