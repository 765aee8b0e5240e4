"""Agent personas: an agent with a float, its key, a signed client, and two
finance staff (deposits need two people)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from leb.agents.actions import (
    NewKey,
    do_approve_deposit,
    do_create_agent,
    do_create_api_key,
    do_record_deposit,
)
from leb.agents.models import Agent

from .helpers import SignedClient, add_member, verified_client


@pytest.fixture(autouse=True)
def _frozen_clock(frozen_now: None) -> None:
    """The clock stands still at `now` (leb/conftest.py)."""


@pytest.fixture
def recorder(django_user_model: Any) -> Any:
    return django_user_model.objects.create_superuser("fin-a", "fin-a@example.com", "pw-fin-a-123")


@pytest.fixture
def approver(django_user_model: Any) -> Any:
    return django_user_model.objects.create_superuser("fin-b", "fin-b@example.com", "pw-fin-b-123")


@pytest.fixture
def make_agent(db: Any, now: datetime) -> Callable[..., Agent]:
    def factory(**fields: Any) -> Agent:
        values: dict[str, Any] = {
            "legal_name": "Kowloon Phones Ltd",
            "display_name": "Kowloon Phones",
            "region": "HK",
            "currency": "HKD",
            "discount_percent": Decimal("10"),
        }
        values.update(fields)
        return do_create_agent(actor="staff:test", now=now, **values)

    return factory


@pytest.fixture
def fund(recorder: Any, approver: Any, now: datetime) -> Callable[[Agent, int], None]:
    refs = itertools.count(1)

    def deposit(agent: Agent, amount: int) -> None:
        recorded = do_record_deposit(
            agent,
            amount=amount,
            currency=agent.currency,
            bank_reference=f"BANK-{next(refs)}",
            staff=recorder,
            now=now,
        )
        do_approve_deposit(recorded, staff=approver, now=now)

    return deposit


@pytest.fixture
def agent(make_agent: Callable[..., Agent], fund: Callable[[Agent, int], None]) -> Agent:
    made = make_agent()
    fund(made, 100_000)
    return made


@pytest.fixture
def key(agent: Agent, now: datetime) -> NewKey:
    return do_create_api_key(agent, actor="staff:test", now=now)


@pytest.fixture
def api(key: NewKey) -> SignedClient:
    return SignedClient(Client(), key.key.key_id, key.secret)


# --- Portal personas ------------------------------------------------------------------


@pytest.fixture
def fast_passwords(settings: Any) -> None:
    # Argon2 is deliberately slow; these personas only need a hash.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def agent_owner(agent: Agent, fast_passwords: None) -> Any:
    return add_member(agent, "shop-owner", "owner")


@pytest.fixture
def agent_seller(agent: Agent, fast_passwords: None) -> Any:
    return add_member(agent, "shop-seller", "seller")


@pytest.fixture
def other_agent(make_agent: Callable[..., Agent], fund: Callable[[Agent, int], None]) -> Agent:
    made = make_agent(legal_name="Tsuen Wan Telecom Ltd", display_name="TW Telecom")
    fund(made, 50_000)
    return made


@pytest.fixture
def other_member(other_agent: Agent, fast_passwords: None) -> Any:
    """An owner of another agent: must never see the first agent's things."""
    return add_member(other_agent, "other-owner", "owner")


@pytest.fixture
def owner_portal(agent_owner: Any) -> Client:
    return verified_client(agent_owner)


@pytest.fixture
def seller_portal(agent_seller: Any) -> Client:
    return verified_client(agent_seller)
