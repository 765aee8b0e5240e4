"""The per-line calendar feed: its secret link and its iCalendar content,
generated live from the line's current state on every request."""

from __future__ import annotations

import hmac
from datetime import date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.urls import reverse
from django.utils import translation
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext as _
from icalendar import Alarm, Calendar, Event, vDuration

from leb.common.formatting import format_local_datetime, format_phone
from leb.lines import lifecycle
from leb.lines.models import Line, LineEvent, LineEventKind, LineStatus

from . import schedule
from .models import CalendarFeed

SALT = "leb.reminders.calendar"
# Alarms ring at this local hour on the day they are set for, not at midnight.
ALARM_HOUR = 9
# History that changes the dates in the feed: each bumps SEQUENCE.
_DATE_EVENTS = (
    LineEventKind.ACTIVATED,
    LineEventKind.TOPPED_UP,
    LineEventKind.REFUNDED,
    LineEventKind.OWNER_CHANGED,
)


def rotation_of(line: Line) -> int:
    feed = CalendarFeed.objects.filter(line=line).only("rotation").first()
    return feed.rotation if feed else 0


def _token(line_id: int, owner_id: int, rotation: int, secret: str) -> str:
    mac = salted_hmac(
        SALT, f"{line_id}:{owner_id}:{rotation}", secret=secret, algorithm="sha256"
    ).hexdigest()
    return mac[:40]


def feed_token(line: Line) -> str | None:
    """The current secret of the line's feed; None without an owner."""
    if line.owner_id is None:
        return None
    return _token(line.pk, line.owner_id, rotation_of(line), settings.SECRET_KEY)


def feed_path(line: Line) -> str | None:
    token = feed_token(line)
    if token is None:
        return None
    return reverse("reminders:calendar_feed", kwargs={"line_id": line.pk, "token": token})


def line_for_token(line_id: int, token: str) -> Line | None:
    """The line whose current feed secret is `token` (old rotations, another
    owner, or no owner: None). Keys in SECRET_KEY_FALLBACKS still open it."""
    line = (
        Line.objects.select_related("policy", "phone_number", "owner__profile")
        .filter(pk=line_id)
        .first()
    )
    if line is None or line.owner_id is None:
        return None
    rotation = rotation_of(line)
    for secret in [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]:
        if hmac.compare_digest(_token(line.pk, line.owner_id, rotation, secret), token):
            return line
    return None


def _owner_zone_and_language(line: Line) -> tuple[tzinfo, str]:
    profile = getattr(line.owner, "profile", None) if line.owner_id else None
    zone = getattr(profile, "time_zone", "") or settings.TIME_ZONE
    language = getattr(profile, "language", "") or settings.LANGUAGE_CODE
    try:
        return ZoneInfo(zone), language
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(settings.TIME_ZONE), language


def _day(moment: datetime, zone: tzinfo) -> date:
    return moment.astimezone(zone).date()


def _alarm(days_before: int, text: str) -> Alarm:
    alarm = Alarm()
    alarm.add("action", "DISPLAY")
    alarm.add("description", text)
    # Relative to the all-day event's start (local midnight): at ALARM_HOUR that day.
    alarm.add("trigger", vDuration(timedelta(days=-days_before, hours=ALARM_HOUR)))
    return alarm


def _all_day(uid: str, day: date, summary: str, description: str) -> Event:
    event = Event()
    event.add("uid", uid)
    event.add("dtstart", day)
    event.add("dtend", day + timedelta(days=1))
    event.add("summary", summary)
    event.add("description", description)
    event.add("transp", "TRANSPARENT")
    return event


def build_feed(line: Line, now: datetime) -> bytes:
    """The line's calendar: the day its validity ends (alarms at the policy's
    reminder offsets) and the last day to keep the number, both as local days
    in the owner's time zone (account preference, else settings.TIME_ZONE)."""
    zone, language = _owner_zone_and_language(line)
    host = settings.SITE_URL.split("://")[-1].split("/")[0] or "leb"
    history = LineEvent.objects.filter(line=line, kind__in=_DATE_EVENTS).order_by(
        "-recorded_at", "-pk"
    )
    sequence = history.count()
    latest = history.first()
    modified = latest.recorded_at if latest else line.created_at
    number = format_phone(line.msisdn) if line.msisdn else line.iccid
    topup_url = settings.SITE_URL.rstrip("/") + "/topup/"
    with translation.override(language):
        calendar = Calendar()
        calendar.add("prodid", "-//leb//number keeping//EN")
        calendar.add("version", "2.0")
        calendar.add("calscale", "GREGORIAN")
        calendar.add("method", "PUBLISH")
        calendar.add("x-wr-calname", _("Number %(number)s") % {"number": number})
        refresh = timedelta(hours=settings.REMINDERS_CALENDAR_REFRESH_HOURS)
        calendar.add("refresh-interval", vDuration(refresh), parameters={"VALUE": "DURATION"})
        calendar.add("x-published-ttl", vDuration(refresh))
        valid_until = line.valid_until
        if valid_until is not None and line.status not in (
            LineStatus.INVENTORY,
            LineStatus.TERMINATED,
        ):
            lost_at = lifecycle.terminated_from(valid_until, line.policy)
            expiry = _all_day(
                f"line-{line.pk}-expiry@{host}",
                _day(valid_until, zone),
                _("Number %(number)s expires") % {"number": number},
                _("Valid until %(moment)s. Top up before then to keep it active: %(url)s")
                % {"moment": format_local_datetime(valid_until, zone, language), "url": topup_url},
            )
            for days in schedule.clean_offsets(line.policy.reminder_offsets):
                expiry.add_component(
                    _alarm(days, _("Number %(number)s expires soon") % {"number": number})
                )
            # The day before the local day of loss, as on the line page: on the
            # day of loss itself a top-up is only accepted until that moment.
            loss = _all_day(
                f"line-{line.pk}-loss@{host}",
                lifecycle.last_keep_day(valid_until, line.policy, zone),
                _("Last day to keep number %(number)s") % {"number": number},
                _("Unless it is topped up, the number is lost on %(moment)s. Top up: %(url)s")
                % {"moment": format_local_datetime(lost_at, zone, language), "url": topup_url},
            )
            for days in schedule.loss_warning_days():
                loss.add_component(
                    _alarm(days, _("Number %(number)s will be lost soon") % {"number": number})
                )
            for event in (expiry, loss):
                event.add("dtstamp", now)
                event.add("last-modified", modified)
                event.add("sequence", sequence)
                calendar.add_component(event)
    return bytes(calendar.to_ical())
