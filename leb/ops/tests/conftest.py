from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from leb.autokeep.actions import do_save_sandbox_method
from leb.autokeep.models import MethodSetup
from leb.catalog.models import FreeAmountRule, Plan
from leb.common import clock
from leb.lines.actions import do_activate_line, do_create_line, sweep_lines
from leb.lines.models import Line, NumberPolicy, PhoneNumber
from leb.mylines.models import BindingChallenge
from leb.payments.models import PaymentAttempt
from leb.support.actions import do_open_ticket
from leb.testing import topup


@pytest.fixture
def now() -> datetime:
    return clock.now()


@pytest.fixture
def policy(db: None) -> NumberPolicy:
    return NumberPolicy.objects.create(
        code="hk-test",
        name="HK test",
        first_topup_days=180,
        grace_days=30,
        suspension_days=60,
        quarantine_days=180,
        max_validity_days=365,
    )


@pytest.fixture
def plan(db: None) -> Plan:
    return Plan.objects.create(
        code="hk-50",
        currency="HKD",
        price=5000,
        credit=5000,
        validity_days=180,
        name_en="HK$50 180 days",
        name_zh_hans="50港元 180天",
        name_zh_hant="港幣50元 180日",
    )


@pytest.fixture
def free_amount_rule(db: None) -> FreeAmountRule:
    return FreeAmountRule.objects.create(
        currency="HKD", min_amount=1000, max_amount=100000, tiers=[[1000, 30], [5000, 180]]
    )


@pytest.fixture
def active_line(policy: NumberPolicy, now: datetime) -> Line:
    line = do_create_line(
        iccid="89852000000000000016", policy=policy, currency="HKD", msisdn="+85291234567", now=now
    )
    return do_activate_line(line, now=now)


@pytest.fixture
def inventory_line(policy: NumberPolicy, now: datetime) -> Line:
    PhoneNumber.objects.create(msisdn="+85291230000")
    return do_create_line(iccid="89852000000000000024", policy=policy, currency="HKD", now=now)


@pytest.fixture
def terminated_line(policy: NumberPolicy, now: datetime) -> Line:
    long_ago = now - timedelta(days=400)
    line = do_create_line(
        iccid="89852000000000000032",
        policy=policy,
        currency="HKD",
        msisdn="+85291239999",
        now=long_ago,
    )
    do_activate_line(line, now=long_ago)
    sweep_lines(now)
    return Line.objects.get(pk=line.pk)


@pytest.fixture
def staff_user(django_user_model: Any) -> Any:
    return django_user_model.objects.create_superuser("boss", "boss@example.com", "pw-boss-1234")


@pytest.fixture
def staff_client(client: Client, staff_user: Any) -> Client:
    client.force_login(staff_user)
    return client


# The owner the outsider tests (test_outsiders.py, test_api_outsiders.py) try to reach.
@pytest.fixture
def owned(make_line: Any, hkd_plan: Any, now: Any) -> dict[str, Any]:
    """An owner with a line, a paid top-up started in their session, and a
    pending binding challenge."""
    owner = get_user_model().objects.create_user(
        "owner", email="owner@example.com", password="x-long-pass-1"
    )
    line = make_line(owner=owner)
    client = Client()
    client.force_login(owner)
    order = topup(line, hkd_plan, now=now)
    order.customer = owner
    order.save(update_fields=["customer"])
    attempt = PaymentAttempt.objects.create(
        order=order,
        provider="sandbox",
        amount=order.price,
        currency=order.currency,
        status="succeeded",
        created_at=now,
        updated_at=now,
    )
    ticket = do_open_ticket(
        user=owner,
        subject="Where is my top-up?",
        category="topup",
        body="It did not arrive.",
        line=line,
        order=order,
        now=now,
    )
    challenge = BindingChallenge.objects.create(
        user=owner,
        line=line,
        code_hash="0" * 64,
        iccid=line.iccid,
        msisdn=line.msisdn,
        created_at=now,
        expires_at=now,
    )
    setup = MethodSetup.objects.create(user=owner, provider="sandbox", created_at=now)
    method = do_save_sandbox_method(owner, "4242424242424242", 12, 2030, now=now)
    return {
        "owner": owner,
        "line": line,
        "order": order,
        "attempt": attempt,
        "challenge": challenge,
        "ticket": ticket,
        "setup": setup,
        "method": method,
    }
