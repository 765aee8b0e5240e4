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


def test_the_demo_agents_have_portal_logins_with_fixed_authenticators(now: datetime) -> None:
    # when
    load_demo(now=now)
    load_demo(now=now)

    # then the active agent has an owner, the suspended one a seller, each with
    # one confirmed authenticator of the demo's key, listed with the demo logins
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from leb.agents.demo import DEMO_TOTP_KEYS, PORTAL_OWNER_USERNAME, PORTAL_SUSPENDED_USERNAME
    from leb.agents.models import AgentMember
    from leb.ops.demo import demo_logins

    owner = AgentMember.objects.get(user__username=PORTAL_OWNER_USERNAME)
    seller = AgentMember.objects.get(user__username=PORTAL_SUSPENDED_USERNAME)
    assert (owner.agent.legal_name, owner.role) == (ACTIVE_LEGAL_NAME, "owner")
    assert (seller.agent.legal_name, seller.role) == (SUSPENDED_LEGAL_NAME, "seller")
    assert AgentMember.objects.count() == 2
    for username, key in DEMO_TOTP_KEYS.items():
        devices = TOTPDevice.objects.filter(user__username=username)
        assert [(d.key, d.confirmed) for d in devices] == [(key, True)]
    usernames = [username for _role, username, _password in demo_logins()]
    assert PORTAL_OWNER_USERNAME in usernames and PORTAL_SUSPENDED_USERNAME in usernames


def test_the_demo_owner_signs_in_with_the_printed_code_and_the_suspended_member_is_stopped(
    now: datetime, settings: Any
) -> None:
    # given the demo, and the code `leb agents totp` prints
    from leb.agents.demo import (
        PORTAL_OWNER_PASSWORD,
        PORTAL_OWNER_USERNAME,
        PORTAL_SUSPENDED_PASSWORD,
        PORTAL_SUSPENDED_USERNAME,
    )

    settings.DEBUG = True
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    load_demo(now=now)

    def sign_in(username: str, password: str) -> Client:
        client = Client()
        login = client.post(
            "/account/login/",
            {"identifier": username, "password": password, "next": "/agent/portal/"},
        )
        out = io.StringIO()
        call_command("agents", "totp", username, stdout=out)
        code = out.getvalue().split()[0]
        from django_otp.plugins.otp_totp.models import TOTPDevice

        # a code is good once per 30 seconds: the two sign-ins may share one
        TOTPDevice.objects.filter(user__username=username).update(last_t=-1)
        verified = client.post(login["Location"], {"code": code})
        assert verified["Location"] == "/agent/portal/", verified
        return client

    # when
    owner = sign_in(PORTAL_OWNER_USERNAME, PORTAL_OWNER_PASSWORD).get("/agent/portal/keys/")
    stopped = sign_in(PORTAL_SUSPENDED_USERNAME, PORTAL_SUSPENDED_PASSWORD).get("/agent/portal/")

    # then
    assert owner.status_code == 200
    assert stopped.status_code == 403
    assert b'data-status="suspended"' in stopped.content


def test_the_demo_code_is_refused_without_debug_and_for_other_accounts(
    now: datetime, settings: Any, django_user_model: Any
) -> None:
    # given
    from django.core.management.base import CommandError

    from leb.agents.demo import PORTAL_OWNER_USERNAME

    load_demo(now=now)

    # when / then: never without debug
    settings.DEBUG = False
    with pytest.raises(CommandError, match="LEB_DEBUG"):
        call_command("agents", "totp", PORTAL_OWNER_USERNAME, stdout=io.StringIO())
    # and never for an account that is not a demo one, or whose app was replaced
    settings.DEBUG = True
    with pytest.raises(CommandError, match="not a demo agent login"):
        call_command("agents", "totp", OPS_USERNAME, stdout=io.StringIO())
    from django_otp.plugins.otp_totp.models import TOTPDevice

    TOTPDevice.objects.filter(user__username=PORTAL_OWNER_USERNAME).update(key="00" * 20)
    with pytest.raises(CommandError, match="not a demo agent login"):
        call_command("agents", "totp", PORTAL_OWNER_USERNAME, stdout=io.StringIO())
