"""A line's history in plain words for staff: every line event as a sentence
in the staff member's language, with who did it, through which channel, and
links to the order, receipt and ticket behind it; and the line's whole story
(events, orders, payments, messages, reminders, tickets) in time order.

Event data and tickets are written by subscribers, agents and providers:
everything from them is escaped (format_html), never marked safe."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.urls import reverse
from django.utils.dateparse import parse_datetime
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from leb.catalog.models import Channel as SalesChannel
from leb.common.admin import format_money, format_when
from leb.lines.identifiers import format_msisdn
from leb.lines.models import DocumentType, Line, LineEvent, LineEventKind, LineStatus
from leb.notifications.models import Notification, Reason
from leb.notifications.models import Status as MessageStatus
from leb.notifications.queries import KIND_TITLES
from leb.payments.models import AttemptStatus, PaymentAttempt
from leb.receipts.labels import payment_method_label, provider_label
from leb.reminders.models import ReminderOutcome, SentReminder
from leb.support.models import Ticket
from leb.topups.models import OrderStatus, TopUpOrder

EVENT_LIMIT = 2000  # a story page of a line with more events shows the latest


def words(template: str, **params: Any) -> SafeString:
    """`template` (a translated sentence, trusted) with each parameter escaped
    unless it is already safe HTML (a link built by format_html)."""
    escaped = {
        key: value if isinstance(value, int | float) else conditional_escape(value)
        for key, value in params.items()
    }
    return mark_safe(template % escaped)  # noqa: S308


def link(url: str, text: Any) -> SafeString:
    return format_html('<a href="{}">{}</a>', url, text)


def _date(value: Any) -> str:
    if isinstance(value, datetime):
        return format_when(value)
    parsed = parse_datetime(str(value or ""))
    return format_when(parsed) if parsed else str(value or "-")


def _status(value: str) -> str:
    return str(LineStatus(value).label) if value in LineStatus.values else value


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


# --- Orders a line's events refer to ----------------------------------------------


@dataclass(frozen=True)
class OrderFacts:
    pk: int
    public_id: str
    receipt_number: str
    price: int
    currency: str
    channel: str
    method: str
    actor: str
    url: str  # "" when the reader may not open orders

    @property
    def reference(self) -> SafeString:
        label = _("order #%(number)s") % {"number": self.pk}
        return link(self.url, label) if self.url else conditional_escape(label)

    @property
    def receipt(self) -> SafeString | str:
        if not self.receipt_number:
            return ""
        label = _("receipt %(number)s") % {"number": self.receipt_number}
        return link(self.url, label) if self.url else conditional_escape(label)


def order_facts(orders: Iterable[TopUpOrder], *, linked: bool) -> dict[str, OrderFacts]:
    return {
        str(order.public_id): OrderFacts(
            pk=order.pk,
            public_id=str(order.public_id),
            receipt_number=order.receipt_number or "",
            price=order.price,
            currency=order.currency,
            channel=order.channel,
            method=payment_method_label(order),
            actor=order.actor,
            url=reverse("admin:topups_topuporder_change", args=[order.pk]) if linked else "",
        )
        for order in orders
    }


def orders_of_events(
    line: Line, events: Iterable[LineEvent], *, linked: bool
) -> dict[str, OrderFacts]:
    """The orders the events name, in one query."""
    ids = {
        str(event.data.get("order"))
        for event in events
        if isinstance(event.data, dict) and event.data.get("order")
    }
    valid = [value for value in ids if _is_uuid(value)]
    if not valid:
        return {}
    return order_facts(TopUpOrder.objects.filter(line=line, public_id__in=valid), linked=linked)


def _is_uuid(value: str) -> bool:
    import uuid

    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


# --- Who and through which channel -------------------------------------------------

_SYSTEM_ACTORS = {
    "sweep": gettext_lazy("system job: lifecycle sweep"),
    "import": gettext_lazy("system: stock import"),
    "cli": gettext_lazy("system: command line"),
    "smdp": gettext_lazy("eSIM provider (SM-DP+)"),
    "demo": gettext_lazy("system: demo data"),
    "bench": gettext_lazy("system: benchmark"),
    "guest": gettext_lazy("guest (not signed in)"),
    "api:guest": gettext_lazy("guest (not signed in)"),
}


def actor_label(actor: str) -> str:
    """Who did it, in words: a member of staff, a subscriber, an agent or a job."""
    kind, _sep, rest = actor.partition(":")
    if not actor:
        return _("system")
    if actor in _SYSTEM_ACTORS:
        return str(_SYSTEM_ACTORS[actor])
    if kind == "staff":
        return _("staff member %(name)s") % {"name": rest}
    if kind == "user" or actor.startswith("api:user:"):
        return _("subscriber (account #%(id)s)") % {"id": actor.rpartition(":")[2]}
    if kind == "agent":
        code, _sep, member = rest.partition(":member:")
        if member:
            return _("agent %(agent)s (member %(member)s)") % {"agent": code, "member": member}
        return _("agent %(agent)s") % {"agent": code}
    if kind == "saved_method":
        return _("system job: auto-keep")
    if kind in ("order", "balance", "voucher"):
        if rest == SalesChannel.AUTO:
            return _("system job: auto-keep")
        if rest == SalesChannel.AGENT:
            return _("agent")
        if rest == SalesChannel.ADMIN:
            return _("staff member")
        return _("subscriber")
    return actor


def channel_label(code: str) -> str:
    return str(dict(SalesChannel.choices).get(code, code)) if code else ""


def event_channel(event: LineEvent, order: OrderFacts | None) -> str:
    if order is not None:
        return channel_label(order.channel)
    kind, _sep, rest = event.actor.partition(":")
    if kind in ("order", "balance", "voucher"):
        return channel_label(rest)
    if kind == "staff":
        return _("back office")
    if kind == "user":
        return _("web portal")
    if kind == "api":
        return _("API")
    if kind == "agent":
        return channel_label(SalesChannel.AGENT)
    return ""


def event_actor(event: LineEvent, order: OrderFacts | None) -> str:
    # A top-up's event names the order's channel; the order knows who made it.
    if order is not None and event.kind == LineEventKind.TOPPED_UP and order.actor:
        return actor_label(order.actor)
    return actor_label(event.actor)


# --- One sentence per kind of line event -------------------------------------------

Facts = dict[str, OrderFacts]


def _order_of(event: LineEvent, orders: Facts) -> OrderFacts | None:
    data = event.data if isinstance(event.data, dict) else {}
    return orders.get(str(data.get("order") or ""))


def _data(event: LineEvent) -> dict[str, Any]:
    return event.data if isinstance(event.data, dict) else {}


def _created(event: LineEvent, orders: Facts) -> SafeString:
    return words(_("Line created in stock, not activated yet."))


def _activated(event: LineEvent, orders: Facts) -> SafeString:
    return words(
        _("Activated with number %(number)s, valid until %(date)s."),
        number=format_msisdn(str(_data(event).get("msisdn") or "")) or "-",
        date=_date(event.valid_until),
    )


def _order_reference(event: LineEvent, order: OrderFacts | None) -> SafeString | str:
    if order is not None:
        if order.receipt_number:
            return words(
                _(" (%(order)s, %(receipt)s)"), order=order.reference, receipt=order.receipt
            )
        return words(_(" (%(order)s)"), order=order.reference)
    reference = str(_data(event).get("order") or "")
    return words(_(" (order %(reference)s)"), reference=reference[:8]) if reference else ""


def _topped_up(event: LineEvent, orders: Facts) -> SafeString:
    data = _data(event)
    order = _order_of(event, orders)
    date = _date(event.valid_until)
    if order is not None:
        sentence = words(
            _("Topped up %(amount)s by %(method)s, valid until %(date)s"),
            amount=format_money(order.price, order.currency),
            method=order.method,
            date=date,
        )
    else:
        sentence = words(
            _("Topped up with %(credit)s of credit, valid until %(date)s"),
            credit=format_money(_int(data.get("credit")), event.line.currency),
            date=date,
        )
    parts: list[SafeString | str] = [sentence, _order_reference(event, order), "."]
    days, added = _int(data.get("days")), _int(data.get("days_added"))
    if data.get("capped") or (days and added < days):
        parts.append(
            words(
                _(
                    " Only %(added)d of the plan's %(days)d days were added (validity cap or reset rule)."
                ),
                added=added,
                days=days,
            )
        )
    if _int(data.get("restore_fee")):
        parts.append(
            words(
                _(" A restore fee of %(fee)s was taken."),
                fee=format_money(_int(data.get("restore_fee")), event.line.currency),
            )
        )
    if event.from_status in (LineStatus.GRACE, LineStatus.SUSPENDED):
        parts.append(
            words(
                _(" The line was %(status)s and is active again."),
                status=_status(event.from_status).lower(),
            )
        )
    return mark_safe("".join(conditional_escape(part) for part in parts))  # noqa: S308


_STATUS_SENTENCES = {
    LineStatus.GRACE: gettext_lazy(
        "Validity ended: the line can only receive calls and texts (grace period)."
    ),
    LineStatus.SUSPENDED: gettext_lazy(
        "Suspended after the grace period: barred both ways until topped up."
    ),
    LineStatus.TERMINATED: gettext_lazy("Terminated after the suspension: the number is lost."),
    LineStatus.ACTIVE: gettext_lazy("Active again."),
}


def _status_changed(event: LineEvent, orders: Facts) -> SafeString:
    if event.to_status in _STATUS_SENTENCES:
        return words(str(_STATUS_SENTENCES[LineStatus(event.to_status)]))
    return words(
        _("Status changed from %(before)s to %(after)s."),
        before=_status(event.from_status) or "-",
        after=_status(event.to_status) or "-",
    )


def _balance_forfeited(event: LineEvent, orders: Facts) -> SafeString:
    data = _data(event)
    return words(
        _("Balance of %(amount)s forfeited at termination (posted to the ledger)."),
        amount=format_money(
            _int(data.get("amount")), str(data.get("currency") or event.line.currency)
        ),
    )


def _number_quarantined(event: LineEvent, orders: Facts) -> SafeString:
    data = _data(event)
    return words(
        _("Number %(number)s released to quarantine until %(date)s, then back to the pool."),
        number=format_msisdn(str(data.get("msisdn") or "")) or "-",
        date=_date(data.get("until")),
    )


def _refunded(event: LineEvent, orders: Facts) -> SafeString:
    data = _data(event)
    order = _order_of(event, orders)
    parts: list[SafeString | str] = [
        words(_("Top-up refunded%(order)s."), order=_order_reference(event, order)),
        words(
            _(" %(days)d days of validity taken back, valid until %(date)s."),
            days=_int(data.get("days_revoked")),
            date=_date(event.valid_until),
        ),
    ]
    if data.get("reason"):
        parts.append(words(_(" Reason: %(reason)s"), reason=str(data["reason"])))
    return mark_safe("".join(conditional_escape(part) for part in parts))  # noqa: S308


def _owner_changed(event: LineEvent, orders: Facts) -> SafeString:
    owner = str(_data(event).get("owner") or "")
    if not owner:
        return words(_("Unbound from its account."))
    return words(_("Bound to the account %(owner)s."), owner=owner)


def _real_name_registered(event: LineEvent, orders: Facts) -> SafeString:
    data = _data(event)
    document = str(data.get("document_type") or "")
    label = str(DocumentType(document).label) if document in DocumentType.values else document
    return words(
        _("Real-name registered with a %(document)s ending in %(last4)s."),
        document=label,
        last4=str(data.get("document_last4") or ""),
    )


EVENT_SENTENCES: dict[str, Callable[[LineEvent, Facts], SafeString]] = {
    LineEventKind.CREATED: _created,
    LineEventKind.ACTIVATED: _activated,
    LineEventKind.TOPPED_UP: _topped_up,
    LineEventKind.STATUS_CHANGED: _status_changed,
    LineEventKind.BALANCE_FORFEITED: _balance_forfeited,
    LineEventKind.NUMBER_QUARANTINED: _number_quarantined,
    LineEventKind.REFUNDED: _refunded,
    LineEventKind.OWNER_CHANGED: _owner_changed,
    LineEventKind.REAL_NAME_REGISTERED: _real_name_registered,
}


def event_sentence(event: LineEvent, orders: Facts | None = None) -> SafeString:
    render = EVENT_SENTENCES.get(event.kind)
    if render is None:
        # A kind added to the model before it was given a sentence.
        return words(_("%(kind)s (no description)"), kind=event.kind)
    return render(event, orders or {})


# --- The whole story ---------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    at: datetime
    what: str  # "event", "order", "payment", "message", "reminder", "ticket"
    sentence: SafeString
    actor: str
    channel: str

    @property
    def when(self) -> str:
        return format_when(self.at)

    @property
    def source(self) -> str:
        return str(SOURCES[self.what])


SOURCES = {
    "event": gettext_lazy("line"),
    "order": gettext_lazy("top-up"),
    "payment": gettext_lazy("payment"),
    "message": gettext_lazy("message"),
    "reminder": gettext_lazy("reminder"),
    "ticket": gettext_lazy("ticket"),
}


def event_entries(line: Line, events: list[LineEvent], orders: Facts) -> list[Entry]:
    entries = []
    for event in events:
        event.line = line  # the sentences read the line's currency
        order = _order_of(event, orders)
        entries.append(
            Entry(
                at=event.happened_at,
                what="event",
                sentence=event_sentence(event, orders),
                actor=event_actor(event, order),
                channel=event_channel(event, order),
            )
        )
    return entries


_ORDER_OUTCOMES = {
    OrderStatus.PENDING_PAYMENT: gettext_lazy("waiting for payment"),
    OrderStatus.PAID: gettext_lazy("paid, not completed yet"),
    OrderStatus.FAILED: gettext_lazy("failed"),
    OrderStatus.EXPIRED: gettext_lazy("expired unpaid"),
    OrderStatus.CANCELLED: gettext_lazy("cancelled"),
    OrderStatus.REFUNDED: gettext_lazy("refunded"),
}


def order_entries(
    orders: list[TopUpOrder], facts: Facts, refunded_in_events: set[str]
) -> list[Entry]:
    """Orders the line's events do not already tell: those that never
    completed, and refunds that took back no validity (so wrote no event)."""
    entries = []
    for order in orders:
        fact = facts[str(order.public_id)]
        if order.status == OrderStatus.FULFILLED:
            continue
        if order.status == OrderStatus.REFUNDED and str(order.public_id) in refunded_in_events:
            continue
        at = order.refunded_at if order.status == OrderStatus.REFUNDED else order.finished_at
        sentence = words(
            _("Top-up of %(amount)s (%(order)s): %(outcome)s."),
            amount=format_money(order.price, order.currency),
            order=fact.reference,
            outcome=str(_ORDER_OUTCOMES.get(OrderStatus(order.status), order.status)),
        )
        if order.failure_reason:
            sentence = words(
                "%(sentence)s %(reason)s",
                sentence=sentence,
                reason=words(_("Reason: %(reason)s"), reason=order.failure_reason),
            )
        entries.append(
            Entry(
                at=at or order.paid_at or order.created_at,
                what="order",
                sentence=sentence,
                actor=actor_label(order.actor),
                channel=channel_label(order.channel),
            )
        )
    return entries


_ATTEMPT_OUTCOMES = {
    AttemptStatus.CREATED: gettext_lazy("started"),
    AttemptStatus.PENDING: gettext_lazy("waiting for the provider"),
    AttemptStatus.SUCCEEDED: gettext_lazy("succeeded"),
    AttemptStatus.FAILED: gettext_lazy("failed"),
    AttemptStatus.CANCELLED: gettext_lazy("cancelled"),
    AttemptStatus.REFUNDED: gettext_lazy("refunded"),
}


def payment_entries(attempts: list[PaymentAttempt], facts: Facts) -> list[Entry]:
    entries = []
    for attempt in attempts:
        fact = facts.get(str(attempt.order.public_id))
        sentence = words(
            _("Payment of %(amount)s by %(method)s for %(order)s: %(outcome)s."),
            amount=format_money(attempt.amount, attempt.currency),
            method=provider_label(attempt.provider),
            order=fact.reference if fact else "-",
            outcome=str(_ATTEMPT_OUTCOMES.get(AttemptStatus(attempt.status), attempt.status)),
        )
        if attempt.failure_code or attempt.failure_message:
            detail = " ".join(
                part for part in (attempt.failure_code, attempt.failure_message) if part
            )
            sentence = words(
                "%(sentence)s %(detail)s",
                sentence=sentence,
                detail=words(_("The provider said: %(detail)s"), detail=detail),
            )
        final = attempt.status not in (AttemptStatus.CREATED, AttemptStatus.PENDING)
        entries.append(
            Entry(
                at=attempt.updated_at if final else attempt.created_at,
                what="payment",
                sentence=sentence,
                actor=actor_label(attempt.order.actor),
                channel=channel_label(attempt.order.channel),
            )
        )
    return entries


def _message_title(kind: str) -> str:
    return str(KIND_TITLES.get(kind, kind))


def message_entries(messages: list[Notification]) -> list[Entry]:
    entries = []
    for message in messages:
        channel = message.get_channel_display()
        title = _message_title(message.kind)
        if message.status == MessageStatus.SENT:
            sentence = words(_("“%(title)s” sent by %(channel)s."), title=title, channel=channel)
        elif message.status == MessageStatus.PENDING:
            sentence = words(
                _("“%(title)s” waiting to go out by %(channel)s."), title=title, channel=channel
            )
        elif message.status == MessageStatus.FAILED:
            sentence = words(
                _("“%(title)s” could not be sent by %(channel)s: %(error)s"),
                title=title,
                channel=channel,
                error=message.last_error or message.get_reason_display(),
            )
        else:
            reason = message.get_reason_display() if message.reason != Reason.NONE else ""
            sentence = words(
                _("“%(title)s” not sent by %(channel)s. %(reason)s"),
                title=title,
                channel=channel,
                reason=reason,
            )
        entries.append(
            Entry(
                at=message.sent_at or message.finished_at or message.created_at,
                what="message",
                sentence=sentence,
                actor=_("system"),
                channel=channel,
            )
        )
    return entries


def reminder_entries(reminders: list[SentReminder]) -> list[Entry]:
    """Reminders skipped because a more urgent one went out (those sent are
    told by their messages)."""
    return [
        Entry(
            at=reminder.created_at,
            what="reminder",
            sentence=words(
                _(
                    "Reminder “%(kind)s” (%(days)d days before) skipped: a more urgent one went out."
                ),
                kind=reminder.get_kind_display(),
                days=reminder.offset_days,
            ),
            actor=_("system job: reminders"),
            channel="",
        )
        for reminder in reminders
        if reminder.outcome == ReminderOutcome.SKIPPED
    ]


def ticket_entries(tickets: list[Ticket]) -> list[Entry]:
    entries = []
    for ticket in tickets:
        title = link(reverse("admin:support_ticket_change", args=[ticket.pk]), ticket.subject)
        entries.append(
            Entry(
                at=ticket.created_at,
                what="ticket",
                sentence=words(
                    _("Support ticket %(ticket)s opened (%(category)s); now: %(status)s."),
                    ticket=title,
                    category=ticket.get_category_display(),
                    status=ticket.get_status_display(),
                ),
                actor=actor_label(f"user:{ticket.user_id}")
                if ticket.user_id
                else _("guest (not signed in)"),
                channel=_("web portal"),
            )
        )
    return entries


def can_view(user: Any, label: str) -> bool:
    app, model = label.split(".")
    return bool(user.has_perm(f"{app}.view_{model}") or user.has_perm(f"{app}.change_{model}"))


@dataclass(frozen=True)
class Story:
    entries: list[Entry]
    sections: list[str]  # what the reader may see, in words
    truncated: bool


def line_story(line: Line, user: Any) -> Story:
    """Everything that happened to `line` that `user` may see, oldest first.
    One query per kind of record, whatever the length of the story."""
    entries: list[Entry] = []
    sections: list[str] = []
    may_orders = can_view(user, "topups.topuporder")
    events: list[LineEvent] = []
    truncated = False
    if can_view(user, "lines.lineevent"):
        sections.append(_("line events"))
        events = list(
            LineEvent.objects.filter(line=line).order_by("-happened_at", "-pk")[: EVENT_LIMIT + 1]
        )
        truncated = len(events) > EVENT_LIMIT
        # Oldest first, so that events of the same moment keep the order they were written in.
        events = events[:EVENT_LIMIT][::-1]
    orders: list[TopUpOrder] = []
    if may_orders:
        sections.append(_("top-up orders"))
        orders = list(TopUpOrder.objects.filter(line=line).order_by("created_at", "pk"))
        facts = order_facts(orders, linked=True)
    else:
        facts = orders_of_events(line, events, linked=False)
    entries += event_entries(line, events, facts)
    refunded = {
        str(event.data.get("order"))
        for event in events
        if event.kind == LineEventKind.REFUNDED and isinstance(event.data, dict)
    }
    entries += order_entries(orders, facts, refunded)
    if can_view(user, "payments.paymentattempt"):
        sections.append(_("payments"))
        attempts = list(
            PaymentAttempt.objects.filter(order__line=line)
            .select_related("order")
            .order_by("created_at", "pk")
        )
        entries += payment_entries(attempts, facts)
    if can_view(user, "notifications.notification"):
        sections.append(_("messages"))
        entries += message_entries(
            list(Notification.objects.filter(line=line).order_by("created_at", "pk"))
        )
    if can_view(user, "reminders.sentreminder"):
        sections.append(_("reminders"))
        entries += reminder_entries(
            list(
                SentReminder.objects.filter(line=line, outcome=ReminderOutcome.SKIPPED).order_by(
                    "created_at"
                )
            )
        )
    if can_view(user, "support.ticket"):
        sections.append(_("support tickets"))
        entries += ticket_entries(
            list(Ticket.objects.filter(line=line).order_by("created_at", "pk"))
        )
    order_of_source = {key: index for index, key in enumerate(SOURCES)}
    entries.sort(key=lambda entry: (entry.at, order_of_source[entry.what]))
    return Story(entries=entries, sections=sections, truncated=truncated)
