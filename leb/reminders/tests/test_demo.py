from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from leb.ops.demo import load_demo
from leb.reminders.demo import load_demo_reminders
from leb.reminders.models import CalendarFeed, SentReminder

pytestmark = pytest.mark.django_db


def test_demo_reminders_load_twice_without_duplicates(now: datetime, settings: Any) -> None:
    # given the demo lines
    load_demo(now=now)

    # when the reminders demo loads, twice
    load_demo_reminders(now)
    first = SentReminder.objects.count()
    load_demo_reminders(now)

    # then there are reminder rows and one calendar link, and nothing doubled
    assert first > 0
    assert SentReminder.objects.count() == first
    assert CalendarFeed.objects.count() == 1
