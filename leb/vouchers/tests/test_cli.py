"""`leb vouchers generate|distribute|activate|block|expire`."""

from __future__ import annotations

from datetime import datetime, timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from leb.common import clock
from leb.vouchers import pins
from leb.vouchers.models import Distributor, Voucher, VoucherBatch, VoucherState
from leb.vouchers.tests.helpers import read_export

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("vouchers", *args, stdout=out, stderr=StringIO(), verbosity=0)
    return out.getvalue()


def test_generate_then_activate_block_and_expire(
    free_rule: Any, tmp_path: Path, now: datetime, ledger_ok: Any
) -> None:
    # given
    out = tmp_path / "hk2606.csv"
    expires = (now + timedelta(days=30)).date().isoformat()

    # when
    with clock.frozen(now):
        generated = run(
            "generate", "--batch", "hk2606", "--quantity", "25", "--value", "10000",
            "--currency", "HKD", "--expires", expires, "--distributor", "kiosk-1",
            "--distributor-name", "Kiosk One", "--luhn", "--out", str(out),
        )  # fmt: skip
        run("distribute", "--batch", "HK2606")
        activated = run("activate", "--batch", "HK2606")
        blocked = run(
            "block", "--first", pins.make_serial("HK2606", 20), "--last",
            pins.make_serial("HK2606", 25), "--reason", "lost",
        )  # fmt: skip
    with clock.frozen(now + timedelta(days=40)):
        expired = run("expire")

    # then
    rows = read_export(out)
    assert len(rows) == 25 and all(pins.luhn_ok(r["pin"]) for r in rows)
    assert str(out) in generated
    assert "25" in activated
    assert "6" in blocked
    assert "19" in expired
    assert Distributor.objects.get(code="kiosk-1").name == "Kiosk One"
    assert VoucherBatch.objects.get().code == "HK2606"
    assert Voucher.objects.filter(state=VoucherState.EXPIRED).count() == 19
    ledger_ok()


def test_a_plan_batch_and_a_partial_activation(
    hkd_plan: Any, tmp_path: Path, now: datetime
) -> None:
    # given
    out = tmp_path / "plan.csv"

    # when
    with clock.frozen(now):
        run(
            "generate", "--batch", "P50", "--quantity", "5", "--plan", "hk-50",
            "--expires", "2027-12-31", "--distributor", "shop", "--out", str(out),

        )  # fmt: skip
        run(
            "activate", "--batch", "P50", "--first", pins.make_serial("P50", 2),
            "--last", pins.make_serial("P50", 3),
        )  # fmt: skip

    # then
    assert VoucherBatch.objects.get().value == 5000
    assert Voucher.objects.filter(state=VoucherState.ACTIVE).count() == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["generate", "--batch", "X1", "--quantity", "1", "--plan", "nope",
          "--expires", "2027-01-01", "--distributor", "d", "--out", "{tmp}/a.csv"], "no plan"),
        (["generate", "--batch", "X1", "--quantity", "1", "--value", "100", "--currency",
          "HKD", "--expires", "2027-01-01", "--distributor", "d", "--out", "{tmp}/a.csv"],
         "between"),
        (["generate", "--batch", "X1", "--quantity", "1", "--value", "10000", "--currency",
          "HKD", "--expires", "soon", "--distributor", "d", "--out", "{tmp}/a.csv"], "YYYY-MM-DD"),
        (["activate", "--batch", "NOPE"], "no batch"),
        (["block", "--first", "bad", "--reason", "x"], "serials"),
    ],
)  # fmt: skip
def test_bad_requests_are_command_errors(
    free_rule: Any, tmp_path: Path, args: list[str], message: str
) -> None:
    # when
    with pytest.raises(CommandError) as caught:
        run(*[a.replace("{tmp}", str(tmp_path)) for a in args])

    # then
    assert message in str(caught.value)
    assert not VoucherBatch.objects.exists()
