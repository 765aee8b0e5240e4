"""Reads for the notification centre, and delivery figures for the back office."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Count, QuerySet
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from leb.common.formatting import format_phone
from leb.lines import lifecycle
from leb.lines.models import Line, LineStatus

from .models import Channel, Notification, Reason, Status
from .render import render_for_centre

KIND_TITLES = {
    "topup_succeeded": gettext_lazy("Top-up done"),
    "expiry_reminder": gettext_lazy("Validity reminder"),
    "grace_started": gettext_lazy("Line in its grace period"),
    "line_suspended": gettext_lazy("Line suspended"),
    "number_loss_warning": gettext_lazy("Number about to be lost"),
    "autokeep_succeeded": gettext_lazy("Automatic top-up done"),
    "autokeep_failed": gettext_lazy("Automatic top-up failed"),
    "autokeep_gave_up": gettext_lazy("Automatic top-up stopped"),
    "card_expiring": gettext_lazy("Saved card expiring"),
}


def lines_needing_top_up(user: Any, now: datetime) -> list[Line]:
    """The user's lines that are urgent or have lapsed (grace, suspended), most
    pressing first: one query, the urgency itself is computed from the row."""
    found = []
    lines = (
        Line.objects.filter(owner=user)
        .exclude(status__in=[LineStatus.INVENTORY, LineStatus.TERMINATED])
        .select_related("policy", "phone_number")
        .order_by("valid_until", "pk")
    )
    for line in lines:
        if lifecycle.urgency(line, now).needs_top_up:
            found.append(line)
    return found


def notifications_of(user: Any) -> QuerySet[Notification]:
    # A message carrying a code or a link never shows here (those rows belong
    # to no account anyway).
    return (
        Notification.objects.filter(user=user, secret_keys="")
        .select_related("line__phone_number")
        .order_by("-created_at", "-pk")
    )


def mask_destination(channel: str, destination: str) -> str:
    """Enough to recognise the address, not enough to read it over a shoulder."""
    if not destination:
        return ""
    if channel == Channel.EMAIL and "@" in destination:
        local, _at, domain = destination.rpartition("@")
        shown = local[0] + "***" + (local[-1] if len(local) > 2 else "")
        return f"{shown}@{domain}"
    if channel == Channel.SMS:
        formatted = format_phone(destination)
        digits = [i for i, c in enumerate(formatted) if c.isdigit()]
        hidden = set(digits[4:-4]) if len(digits) > 8 else set(digits[1:-2])
        return "".join("•" if i in hidden else c for i, c in enumerate(formatted))
    if channel == Channel.WEBHOOK:
        scheme, _sep, rest = destination.partition("://")
        host = rest.split("/", 1)[0]
        return f"{scheme}://{host}/…"
    return destination


@dataclass(frozen=True)
class CentreEntry:
    notification: Notification
    title: str
    subject: str
    body: str
    destination: str
    status_label: str
    status_class: str
    detail: str
    when: datetime | None


def centre_entry(row: Notification, now: datetime) -> CentreEntry:
    title = str(KIND_TITLES.get(row.kind, row.kind))
    rendered = render_for_centre(row)
    detail = ""
    when: datetime | None = None
    if row.status == Status.SENT:
        label, css, when = _("Sent"), "sent", row.sent_at
    elif row.status == Status.FAILED:
        label, css, when = _("Failed"), "failed", row.finished_at
        detail = str(Reason(row.reason).label) if row.reason else str(Reason.DELIVERY_FAILED.label)
    elif row.status == Status.SKIPPED:
        label, css, when = _("Not sent"), "skipped", row.finished_at
        if row.reason:
            detail = str(Reason(row.reason).label)
    elif row.status == Status.CANCELLED:
        label, css, when = _("Cancelled"), "skipped", row.finished_at
    elif row.attempts:
        label, css, when = _("Retrying"), "waiting", row.next_attempt_at
        detail = _("The last attempt did not go through; leb tries again.")
    elif row.next_attempt_at is not None and row.next_attempt_at > now:
        label, css, when = _("Waiting for your quiet hours to end"), "waiting", row.next_attempt_at
    else:
        label, css, when = _("Sending"), "waiting", row.next_attempt_at
    return CentreEntry(
        notification=row,
        title=title,
        subject=rendered.subject or title,
        body=rendered.body,
        destination=mask_destination(row.channel, row.destination),
        status_label=label,
        status_class=css,
        detail=detail,
        when=when,
    )


@dataclass(frozen=True)
class DeliveryCount:
    channel: str
    status: str
    count: int


def delivery_by_channel(
    kinds: Sequence[str], since: datetime, until: datetime
) -> list[DeliveryCount]:
    """Messages of `kinds` queued in [since, until), per channel and status."""
    rows = (
        Notification.objects.filter(
            kind__in=list(kinds), created_at__gte=since, created_at__lt=until
        )
        .order_by()
        .values("channel", "status")
        .annotate(count=Count("pk"))
        .order_by("channel", "status")
    )
    return [DeliveryCount(row["channel"], row["status"], row["count"]) for row in rows]
