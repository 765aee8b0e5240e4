from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from django.test import Client

import leb.sms
from leb import clock
from leb.accounts.actions import do_register_user

PASSWORD = "correct horse battery 42"


@pytest.fixture(autouse=True)
def _frozen_clock(now: datetime) -> Iterator[None]:
    with clock.frozen(now):
        yield


@pytest.fixture(autouse=True)
def sms_outbox(settings: Any) -> Iterator[list[leb.sms.SmsMessage]]:
    settings.SMS_BACKEND = "leb.sms.backends.locmem.SmsBackend"
    leb.sms.outbox.clear()
    yield leb.sms.outbox
    leb.sms.outbox.clear()


@pytest.fixture
def owner(db: Any) -> Any:
    return do_register_user(email="owner@example.com", phone="", password=PASSWORD, language="en")


@pytest.fixture
def outsider(db: Any) -> Any:
    return do_register_user(
        email="outsider@example.com", phone="", password=PASSWORD, language="en"
    )


@pytest.fixture
def owner_client(owner: Any) -> Client:
    client = Client()
    client.force_login(owner, backend="leb.accounts.backends.EmailOrPhoneBackend")
    return client


@pytest.fixture
def outsider_client(outsider: Any) -> Client:
    client = Client()
    client.force_login(outsider, backend="leb.accounts.backends.EmailOrPhoneBackend")
    return client
