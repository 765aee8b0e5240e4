"""Rendering a notification at send time, in the recipient's language and
time zone, from the templates of the app that defines its kind:
notifications/<kind>/subject.txt, body.txt (email) and sms.txt."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.template import Context, TemplateDoesNotExist
from django.template.loader import get_template
from django.utils import timezone, translation
from django.utils.dateparse import parse_date, parse_datetime

from leb.common.formatting import TZ_SESSION_KEY, format_money
from leb.lines.identifiers import format_msisdn

from .models import Notification

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str
    sms: str


def _decode_moment(value: str) -> date | datetime | str:
    moment = parse_datetime(value) if ("T" in value or " " in value) else None
    if moment is not None:
        return moment if timezone.is_aware(moment) else moment.replace(tzinfo=UTC)
    day = parse_date(value)
    return day if day is not None else value


def decode_context(context: dict[str, Any], language: str) -> dict[str, Any]:
    """ISO strings under *_at / *_on / *_until back to dates and datetimes;
    <name>_amount + <name>_currency also as <name>, formatted money."""
    decoded: dict[str, Any] = {}
    for key, value in context.items():
        if isinstance(value, str) and key.endswith(("_at", "_on", "_until")):
            try:
                decoded[key] = _decode_moment(value)
            except ValueError:
                decoded[key] = value
        else:
            decoded[key] = value
    for key, value in context.items():
        if key.endswith("_amount") and isinstance(value, int):
            name = key[: -len("_amount")]
            currency = context.get(f"{name}_currency")
            if isinstance(currency, str) and currency and name not in decoded:
                decoded[name] = format_money(value, currency, language)
    return decoded


def _render(name: str, context: dict[str, Any], *, required: bool) -> str:
    try:
        template = get_template(name)
    except TemplateDoesNotExist:
        if required:
            raise
        return ""
    # Plain text: no HTML escaping.
    return str(template.template.render(Context(context, autoescape=False))).strip()  # type: ignore[attr-defined]


def recipient_name(notification: Notification) -> str:
    user = notification.user
    if user is None:
        return ""
    # Never the username: it is an email address or a phone number.
    return str(user.get_full_name())


def render(notification: Notification, *, channel: str | None = None) -> Rendered:
    with translation.override(notification.language), timezone.override(notification.time_zone):
        context = decode_context(notification.context, notification.language)
        line = notification.line
        msisdn = line.msisdn if line is not None else ""
        context.update(
            {
                "line_number": format_msisdn(msisdn) if msisdn else "",
                "site_url": settings.SITE_URL.rstrip("/"),
                "recipient_name": recipient_name(notification),
                "kind": notification.kind,
                # The leb_format tags read the time zone from the request's session.
                "request": SimpleNamespace(session={TZ_SESSION_KEY: notification.time_zone}),
            }
        )
        base = f"notifications/{notification.kind}/"
        if (channel or notification.channel) == "sms":
            return Rendered(
                subject="", body="", sms=_render(base + "sms.txt", context, required=True)
            )
        subject = " ".join(_render(base + "subject.txt", context, required=True).split())
        body = _render(base + "body.txt", context, required=True)
        sms = _render(base + "sms.txt", context, required=False)
        return Rendered(subject=subject, body=body, sms=sms)


def render_for_centre(notification: Notification) -> Rendered:
    """What the message says, for the notification centre: the email text,
    or the SMS text for kinds without an email template."""
    try:
        if notification.channel == "sms":
            text = render(notification).sms
            return Rendered(subject="", body=text, sms=text)
        return render(notification, channel="email")
    except Exception:
        logger.exception("notification %s could not be rendered", notification.pk)
        return Rendered(subject="", body="", sms="")
