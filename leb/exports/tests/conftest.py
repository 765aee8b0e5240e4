"""Staff in each role, agents with a funded float, and a helper that requests
an export and runs its task body at once."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from leb.agents.actions import do_approve_deposit, do_create_agent, do_record_deposit
from leb.agents.models import Agent
from leb.backoffice.roles import ADMIN, FINANCE, SUPPORT
from leb.exports.actions import do_request_export, do_run_export
from leb.exports.models import ExportJob


@pytest.fixture(autouse=True)
def _frozen_clock(frozen_now: None) -> None:
    """The clock stands still at `now` (leb/conftest.py)."""


@pytest.fixture(autouse=True)
def _private_exports_dir(settings: Any, tmp_path: Any) -> None:
    settings.EXPORTS_DIR = str(tmp_path / "exports")


def _staff(django_user_model: Any, role: str, name: str) -> Any:
    user = django_user_model.objects.create_user(name, password="x-unused-9", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def support(django_user_model: Any) -> Any:
    return _staff(django_user_model, SUPPORT, "sue-support")


@pytest.fixture
def finance(django_user_model: Any) -> Any:
    return _staff(django_user_model, FINANCE, "fay-finance")


@pytest.fixture
def admin_staff(django_user_model: Any) -> Any:
    return _staff(django_user_model, ADMIN, "ada-admin")


@pytest.fixture
def root(django_user_model: Any) -> Any:
    return django_user_model.objects.create_superuser("root", password="x-unused-9")


def signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def export(now: datetime) -> Callable[..., ExportJob]:
    """Request an export as `user` and run it as the worker would."""

    def run(
        user: Any,
        dataset: str,
        file_format: str = "csv",
        chunk_size: int | None = None,
        **filters: Any,
    ) -> ExportJob:
        job = do_request_export(user, dataset, file_format, filters, now=now)
        do_run_export(job.pk, chunk_size=chunk_size)
        job.refresh_from_db()
        return job

    return run


@pytest.fixture
def make_agent(db: Any, now: datetime, django_user_model: Any) -> Callable[..., Agent]:
    """An agent whose float got one approved deposit per amount in `deposits`."""
    recorder = django_user_model.objects.create_superuser("rec", password="x-unused-9")
    approver = django_user_model.objects.create_superuser("app", password="x-unused-9")
    refs = itertools.count(1)

    def factory(deposits: tuple[int, ...] = (), at: datetime | None = None, **fields: Any) -> Agent:
        values: dict[str, Any] = {
            "legal_name": "Kowloon Phones Ltd",
            "display_name": "九龍電話",
            "region": "HK",
            "currency": "HKD",
            "discount_percent": Decimal("10"),
        }
        values.update(fields)
        agent = do_create_agent(actor="staff:test", now=now, **values)
        for amount in deposits:
            recorded = do_record_deposit(
                agent,
                amount=amount,
                currency=agent.currency,
                bank_reference=f"BANK-{next(refs)}",
                staff=recorder,
                now=at or now,
            )
            do_approve_deposit(recorded, staff=approver, now=at or now)
        return agent

    return factory
