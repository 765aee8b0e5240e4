"""Demo agents, made through the agents actions: one active Hong Kong agent
(a float funded by a deposit that one staff member recorded and another
approved, a wholesale discount, a couple of sales, an API key) and one
suspended agent, each with a portal login (an owner, a seller) and a fixed
authenticator key. The active agent's key goes to var/demo-agent-key.txt
(mode 0600) as environment assignments for `leb agent`. Idempotent: the
agents are found by their legal names, deposits by bank reference, sales by
external id, the key by its label; the file is rewritten from the stored key
(its secret is derived, never stored)."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django_otp.plugins.otp_totp.models import TOTPDevice

from leb.lines.models import Line, LineStatus

from . import signing
from .actions import (
    do_approve_deposit,
    do_create_agent,
    do_create_agent_topup,
    do_create_api_key,
    do_record_deposit,
    do_set_agent_status,
)
from .callbacks import callback_secret
from .models import (
    Agent,
    AgentApiKey,
    AgentDeposit,
    AgentMember,
    AgentStatus,
    DepositStatus,
    MemberRole,
)

ACTOR = "demo"
# Demo-only credentials, printed by `leb demo`; never used outside demo data.
FINANCE_USERNAME, FINANCE_PASSWORD = "finance", "leb-demo-finance"
# The agent portal's demo people: the active agent's owner and a seller of
# the suspended agent. Their authenticator keys are fixed (and public, like
# the passwords) so the demo can be tried with any authenticator app or with
# `leb agents totp <username>`, which prints the current code for these
# accounts only, and only with LEB_DEBUG on.
PORTAL_OWNER_USERNAME, PORTAL_OWNER_PASSWORD = "agent-owner", "leb-demo-agent"
PORTAL_SUSPENDED_USERNAME, PORTAL_SUSPENDED_PASSWORD = "agent-suspended", "leb-demo-suspended"
DEMO_TOTP_KEYS = {
    PORTAL_OWNER_USERNAME: "6c65622d64656d6f2d6167656e742d6f776e6572",
    PORTAL_SUSPENDED_USERNAME: "6c65622d64656d6f2d6167656e742d7375737031",
}
ACTIVE_LEGAL_NAME = "Mong Kok Mobile Demo Ltd"
SUSPENDED_LEGAL_NAME = "Sham Shui Po Phones Demo Ltd"
KEY_LABEL = "demo"
DEPOSIT_REFERENCE = "DEMO-BANK-0001"
DEPOSIT_AMOUNT = 500_000  # HK$5,000.00
SALE_PLAN = "hk-50-180"
SALES = ("DEMO-INV-0001", "DEMO-INV-0002")
FINANCE_PERMISSIONS = (
    "view_agent",
    "view_agentdeposit",
    "add_agentdeposit",
    "change_agentdeposit",
    "view_agenttopup",
    "view_agentapikey",
    "view_agent_sales",
)


@dataclass(frozen=True)
class DemoAgents:
    active: Agent
    suspended: Agent
    key_id: str
    key_file: Path


def demo_key_path() -> Path:
    return Path(settings.VAR_DIR) / "demo-agent-key.txt"


def _finance_user() -> Any:
    user_model = get_user_model()
    user = user_model.objects.filter(username=FINANCE_USERNAME).first()
    if user is None:
        user = user_model.objects.create_user(
            FINANCE_USERNAME, "finance@example.com", FINANCE_PASSWORD, is_staff=True
        )
        user.user_permissions.add(
            *Permission.objects.filter(
                content_type__app_label="agents", codename__in=FINANCE_PERMISSIONS
            )
        )
    return user


def _agent(legal_name: str, now: datetime, **fields: Any) -> tuple[Agent, bool]:
    found = Agent.objects.filter(legal_name=legal_name).order_by("pk").first()
    if found is not None:
        return found, False
    return do_create_agent(actor=ACTOR, now=now, legal_name=legal_name, **fields), True


def _fund(agent: Agent, recorder: Any, approver: Any, now: datetime) -> None:
    deposit = AgentDeposit.objects.filter(agent=agent, bank_reference=DEPOSIT_REFERENCE).first()
    if deposit is None:
        deposit = do_record_deposit(
            agent,
            amount=DEPOSIT_AMOUNT,
            currency=agent.currency,
            bank_reference=DEPOSIT_REFERENCE,
            staff=recorder,
            now=now - timedelta(hours=2),
        )
    if deposit.status == DepositStatus.PENDING:
        # The second person: the recorder may not approve (two-person rule).
        do_approve_deposit(deposit, staff=approver, now=now - timedelta(hours=1))


def _sell(agent: Agent, now: datetime) -> None:
    # Lines of the demo's HK pool that nobody owns: the demo subscriber's
    # lines keep the histories their own tests rely on.
    lines = list(
        Line.objects.filter(
            currency="HKD",
            status=LineStatus.ACTIVE,
            owner__isnull=True,
            phone_number__isnull=False,
        )
        .select_related("phone_number")
        .order_by("pk")[: len(SALES)]
    )
    for external_id, line in zip(SALES, lines, strict=False):
        if agent.topups.filter(external_id=external_id).exists():
            continue
        do_create_agent_topup(
            agent,
            external_id=external_id,
            msisdn=line.msisdn,
            plan_code=SALE_PLAN,
            now=now - timedelta(minutes=30),
        )


def _key(agent: Agent, now: datetime) -> AgentApiKey:
    key = (
        AgentApiKey.objects.filter(agent=agent, label=KEY_LABEL, revoked_at__isnull=True)
        .order_by("-pk")
        .first()
    )
    if key is None:
        key = do_create_api_key(agent, actor=ACTOR, label=KEY_LABEL, now=now).key
    return key


def _write_key_file(agent: Agent, key: AgentApiKey) -> Path:
    path = demo_key_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    text = (
        f"LEB_AGENT_KEY_ID={key.key_id}\n"
        f"LEB_AGENT_SECRET={signing.derive_secret(key.key_id, key.salt)}\n"
        f"LEB_AGENT_CALLBACK_SECRET={callback_secret(agent.code)}\n"
    )
    # Written to a private file: it holds the key's secret.
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    return path


def load_demo_agents(now: datetime, *, recorder: Any) -> DemoAgents | None:
    """`recorder` is the demo staff member who records the deposit; the demo
    finance user approves it. Nothing without the demo's HK sale plan."""
    from leb.catalog.models import Plan

    if not Plan.objects.filter(code=SALE_PLAN).exists():
        return None
    approver = _finance_user()
    active, new_active = _agent(
        ACTIVE_LEGAL_NAME,
        now - timedelta(days=1),
        display_name="Mong Kok Mobile (demo)",
        contact_email="agent@example.com",
        contact_phone="+85221000000",
        region="HK",
        currency="HKD",
        discount_percent=Decimal("8.00"),
    )
    if new_active:
        # Money and sales only for an agent the demo made: staff may have
        # changed a found one since.
        _fund(active, recorder, approver, now)
        _sell(active, now)
    key = _key(active, now)
    suspended, created = _agent(
        SUSPENDED_LEGAL_NAME,
        now - timedelta(days=1),
        display_name="Sham Shui Po Phones (demo)",
        contact_email="suspended-agent@example.com",
        region="HK",
        currency="HKD",
        discount_percent=Decimal("5.00"),
    )
    if created:
        do_set_agent_status(
            suspended,
            AgentStatus.SUSPENDED,
            actor=ACTOR,
            reason="demo: contract paperwork overdue",
            now=now - timedelta(hours=3),
        )
    _portal_member(active, PORTAL_OWNER_USERNAME, PORTAL_OWNER_PASSWORD, MemberRole.OWNER)
    _portal_member(
        suspended, PORTAL_SUSPENDED_USERNAME, PORTAL_SUSPENDED_PASSWORD, MemberRole.SELLER
    )
    return DemoAgents(active, suspended, key.key_id, _write_key_file(active, key))


def demo_agent_login() -> tuple[str, str, str]:
    return ("finance", FINANCE_USERNAME, FINANCE_PASSWORD)


def demo_portal_logins() -> list[tuple[str, str, str]]:
    """(role, username, password) of the agent portal's demo people."""
    return [
        ("agent", PORTAL_OWNER_USERNAME, PORTAL_OWNER_PASSWORD),
        ("suspended", PORTAL_SUSPENDED_USERNAME, PORTAL_SUSPENDED_PASSWORD),
    ]


def totp_key_base32(username: str) -> str:
    """The demo account's authenticator key as an app wants it typed."""
    return base64.b32encode(bytes.fromhex(DEMO_TOTP_KEYS[username])).decode().rstrip("=")


def _portal_member(agent: Agent, username: str, password: str, role: str) -> None:
    """The demo login, its membership and its authenticator app; what exists
    is left alone (staff may have moved the user or replaced the app)."""
    user_model = get_user_model()
    user = user_model.objects.filter(username=username).first()
    if user is None:
        user = user_model.objects.create_user(username, f"{username}@example.com", password)
    if not AgentMember.objects.filter(user=user).exists():
        AgentMember.objects.create(user=user, agent=agent, role=role)
    if not TOTPDevice.objects.filter(user=user, confirmed=True).exists():
        TOTPDevice.objects.create(
            user=user, name="demo authenticator", key=DEMO_TOTP_KEYS[username], confirmed=True
        )


def demo_totp_device(username: str) -> TOTPDevice | None:
    """The demo account's device, if it still has the demo's fixed key."""
    key = DEMO_TOTP_KEYS.get(username)
    if key is None:
        return None
    return TOTPDevice.objects.filter(user__username=username, confirmed=True, key=key).first()
