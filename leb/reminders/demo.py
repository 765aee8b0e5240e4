"""Demo data for reminders: one reminder scan over the demo lines (each line
near or past its expiry gets the reminder that is current for it, through
the real scan and notifications), and the calendar link of the demo
subscriber's first line. Running it again adds nothing for the same `now`."""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth import get_user_model

from leb.lines.models import Line

from .actions import scan_reminders
from .models import CalendarFeed


def load_demo_reminders(now: datetime) -> None:
    scan_reminders(now)
    demo = get_user_model().objects.filter(username="demo").first()
    if demo is None:
        return
    line = Line.objects.filter(owner=demo).order_by("pk").first()
    if line is not None:
        CalendarFeed.objects.get_or_create(line=line)
