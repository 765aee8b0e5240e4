"""The auto-keep messages render in the recipient's language, with the reason
and the link to fix the card."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from leb.autokeep.actions import do_run_autokeep
from leb.notifications.models import Notification
from leb.notifications.render import render

from .helpers import SECURE_CARD

pytestmark = pytest.mark.django_db


@pytest.fixture
def failing(line: Any, save_card: Any, make_rule: Any, settings: Any) -> Any:
    settings.AUTOKEEP_MAX_ATTEMPTS = 2
    make_rule(line, save_card(SECURE_CARD), days_before=7)
    return line.valid_until - timedelta(days=6)


def test_failed_and_gave_up_messages_render(failing: datetime) -> None:
    do_run_autokeep(failing)
    do_run_autokeep(failing + timedelta(hours=24))
    failed = Notification.objects.filter(kind="autokeep_failed").first()
    gave_up = Notification.objects.filter(kind="autokeep_gave_up").first()
    assert failed is not None and gave_up is not None
    text = render(failed, channel="email")
    assert "did not go through" in text.subject
    assert "3-D Secure" in text.body
    assert "/autokeep/" in text.body
    assert "attempt 1 of 2" in text.body
    assert "3-D Secure" in render(failed, channel="sms").sms
    text = render(gave_up, channel="email")
    assert "by hand" in text.subject
    assert "/autokeep/" in render(gave_up, channel="sms").sms


def test_messages_render_in_chinese(failing: datetime) -> None:
    do_run_autokeep(failing)
    failed = Notification.objects.filter(kind="autokeep_failed").first()
    assert failed is not None
    failed.language = "zh-hant"
    text = render(failed, channel="email")
    assert text.subject and text.body


def test_card_expiring_message_renders(save_card: Any, now: datetime) -> None:
    save_card(exp=(6, 2026))
    assert do_run_autokeep(now).warned == 1
    message = Notification.objects.get(kind="card_expiring", channel="email")
    text = render(message, channel="email")
    assert "4242" in text.subject
    assert "4242" in render(message, channel="sms").sms
