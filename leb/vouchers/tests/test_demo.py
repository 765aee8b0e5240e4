from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from leb.catalog.models import FreeAmountRule
from leb.vouchers.actions import do_redeem_voucher
from leb.vouchers.demo import BATCH_CODE, demo_export_path, load_demo_vouchers
from leb.vouchers.models import Voucher, VoucherBatch, VoucherState
from leb.vouchers.tests.helpers import read_export

pytestmark = pytest.mark.django_db


def test_the_demo_batch_is_active_and_its_pins_are_in_the_export(
    settings: Any,
    tmp_path: Path,
    make_line: Any,
    now: datetime,
    ledger_ok: Any,
    capsys: Any,
) -> None:
    # given
    settings.VAR_DIR = tmp_path
    FreeAmountRule.objects.create(
        currency="HKD", min_amount=1000, max_amount=100000, tiers=[[10000, 365]]
    )

    # when
    load_demo_vouchers(now)
    load_demo_vouchers(now)

    # then
    assert VoucherBatch.objects.filter(code=BATCH_CODE).count() == 1
    assert Voucher.objects.filter(state=VoucherState.ACTIVE).count() == 20
    rows = read_export(demo_export_path())
    assert len(rows) == 20
    assert str(demo_export_path()) in capsys.readouterr().out
    line = make_line()
    redemption = do_redeem_voucher(
        line=line, pin=rows[0]["pin"], channel="web", lockout_keys={}, now=now
    )
    assert redemption.order.price == 10000
    ledger_ok()


def test_without_the_demo_catalog_nothing_is_made(
    settings: Any, tmp_path: Path, now: datetime
) -> None:
    # given
    settings.VAR_DIR = tmp_path

    # when
    load_demo_vouchers(now)

    # then
    assert not VoucherBatch.objects.exists()
