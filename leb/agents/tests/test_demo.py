"""The demo agents in `leb demo`: made through the actions, two-person
approval, a working key in a private file, nothing duplicated on a re-run."""

from __future__ import annotations

import io
import stat
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

from leb.agents import signing
from leb.agents.demo import (
    ACTIVE_LEGAL_NAME,
    FINANCE_PASSWORD,
    FINANCE_USERNAME,
    SUSPENDED_LEGAL_NAME,
    demo_key_path,
)
from leb.agents.models import (
    Agent,
    AgentApiKey,
    AgentDeposit,
    AgentStatus,
    AgentTopUp,
    DepositStatus,
)
from leb.agents.queries import balance
from leb.common import clock
from leb.ledger.queries import verify_ledger
from leb.ops.demo import OPS_USERNAME, load_demo

pytestmark = pytest.mark.django_db


def key_file() -> dict[str, str]:
    lines = Path(demo_key_path()).read_text(encoding="utf-8").splitlines()
    return dict(line.split("=", 1) for line in lines)


def test_the_demo_makes_an_active_funded_agent_and_a_suspended_one(now: datetime) -> None:
    # when
    load_demo(now=now)

    # then the active agent's float came from a deposit recorded by ops, approved by finance
    active = Agent.objects.get(legal_name=ACTIVE_LEGAL_NAME)
    deposit = AgentDeposit.objects.get(agent=active)
    assert deposit.status == DepositStatus.APPROVED
    assert deposit.recorded_by.username == OPS_USERNAME
    assert deposit.decided_by is not None
    assert deposit.decided_by.username == FINANCE_USERNAME
    sales = AgentTopUp.objects.filter(agent=active)
    assert [t.status for t in sales] == ["completed", "completed"]
    spent = sum(t.wholesale_price for t in sales)
    assert balance(active).available == deposit.amount - spent
    assert all(t.wholesale_price < t.retail_price for t in sales)
    suspended = Agent.objects.get(legal_name=SUSPENDED_LEGAL_NAME)
    assert suspended.status == AgentStatus.SUSPENDED
    assert verify_ledger().ok


def test_the_demo_key_file_is_private_and_its_key_signs_requests(now: datetime) -> None:
    # given
    load_demo(now=now)
    path = demo_key_path()
    values = key_file()

    # when the key in the file signs a request
    signed = signing.signed_headers(
        values["LEB_AGENT_KEY_ID"],
        values["LEB_AGENT_SECRET"],
        "GET",
        "/agent/v1/balance",
        b"",
        int(clock.now().timestamp()),
        "demo-nonce-000000001",
    )
    response = Client().get("/agent/v1/balance", headers=signed)

    # then
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert response.status_code == 200, response.content
    assert response.json()["currency"] == "HKD"
    assert values["LEB_AGENT_CALLBACK_SECRET"].startswith("lcs_")


def test_a_second_demo_load_duplicates_nothing(now: datetime) -> None:
    # given
    load_demo(now=now)
    models = (Agent, AgentApiKey, AgentDeposit, AgentTopUp)
    before = {m.__name__: m.objects.count() for m in models}
    file_before = key_file()

    # when
    load_demo(now=now)

    # then
    assert {m.__name__: m.objects.count() for m in models} == before
    assert before == {"Agent": 2, "AgentApiKey": 1, "AgentDeposit": 1, "AgentTopUp": 2}
    assert key_file() == file_before


def test_leb_demo_prints_the_finance_login_and_how_to_try_the_agent(
    now: datetime, settings: Any
) -> None:
    # when
    out = io.StringIO()
    call_command("demo", stdout=out)

    # then the finance login and the `leb agent` command are shown, not the secret
    text = out.getvalue()
    assert FINANCE_USERNAME in text and FINANCE_PASSWORD in text
    assert str(demo_key_path()) in text
    assert "leb agent --url http://127.0.0.1:8000 balance" in text
    assert key_file()["LEB_AGENT_SECRET"] not in text
