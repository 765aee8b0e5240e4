"""Demo vouchers: one active HKD batch of 20, for trying redemption on the
web, the API and the phone, half of it paid for by the kiosk that sells it. Its clear PINs exist only in the demo export
file (var/demo-vouchers.csv), written when the batch is first made."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

from leb.catalog.models import Channel, FreeAmountRule

from .actions import (
    do_activate_batch,
    do_distribute_batch,
    do_generate_batch,
    do_record_distributor_payment,
)
from .models import Distributor, VoucherBatch

BATCH_CODE = "DEMO"
QUANTITY = 20
VALUE = 10000  # HK$100.00
ACTOR = "demo"


def demo_export_path() -> Path:
    return Path(settings.VAR_DIR) / "demo-vouchers.csv"


def load_demo_vouchers(now: datetime) -> None:
    """Idempotent: a second run finds the batch and changes nothing."""
    if VoucherBatch.objects.filter(code=BATCH_CODE).exists():
        return
    rule = FreeAmountRule.objects.filter(currency="HKD", is_active=True).first()
    if rule is None or Channel.VOUCHER not in (rule.channels or []):
        return  # the demo catalog is not loaded: nothing a voucher could buy
    distributor, _created = Distributor.objects.get_or_create(
        code="demo-kiosk", defaults={"name": "Demo Kiosk (Mong Kok)", "contact": "+852 2000 0000"}
    )
    out = demo_export_path()
    out.parent.mkdir(parents=True, exist_ok=True)
    # A file left by an earlier demo database would hold PINs nobody can use.
    out.unlink(missing_ok=True)
    made = do_generate_batch(
        code=BATCH_CODE,
        distributor=distributor,
        quantity=QUANTITY,
        expires_on=timezone.localdate(now + timedelta(days=365)),
        out=out,
        currency="HKD",
        value=VALUE,
        luhn=True,
        actor=ACTOR,
        now=now,
    )
    do_distribute_batch(made.batch, actor=ACTOR, now=now)
    do_activate_batch(made.batch, actor=ACTOR, now=now)
    # The kiosk has paid for half of its cards: its statement shows the rest owed.
    do_record_distributor_payment(
        distributor,
        QUANTITY // 2 * VALUE,
        "HKD",
        "DEMO-FPS-0001",
        actor=ACTOR,
        idempotency_key="demo:distributor-payment:1",
        now=now,
    )
    sys.stdout.write(
        _("Demo voucher PINs (HK$100, batch %(code)s): %(path)s")
        % {"code": BATCH_CODE, "path": out}
        + "\n"
    )
