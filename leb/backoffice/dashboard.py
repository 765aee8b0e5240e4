"""The back office's first page: figures read by the owning apps' queries
(each one GROUP BY in the database), drawn as SVG bar charts with the same
numbers in a table, every bar and row a link to the filtered list behind it.

Who sees what: a figure is shown to staff who may open the list it links to;
money (revenue) only to staff who may read the books (REVENUE_PERMISSION)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any
from urllib.parse import urlencode

from babel.dates import format_date, format_skeleton
from babel.numbers import format_decimal, format_percent
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from leb.catalog.models import Channel as SalesChannel
from leb.common import clock
from leb.common.admin import format_money, format_when
from leb.common.formatting import babel_locale
from leb.finance import queries as finance_queries
from leb.finance.models import MismatchKind
from leb.lines import queries as line_queries
from leb.lines.models import LineStatus
from leb.notifications import queries as notification_queries
from leb.notifications.models import Channel as MessageChannel
from leb.notifications.models import Status as MessageStatus
from leb.payments import queries as payment_queries
from leb.payments.models import AttemptStatus
from leb.receipts.labels import provider_label
from leb.reminders.models import ReminderKind
from leb.support import queries as support_queries
from leb.support.models import TicketStatus
from leb.topups import queries as topup_queries
from leb.topups.models import OrderStatus

from .charts import Chart, bar_chart

# Revenue is the books' business: the finance and admin roles have it.
REVENUE_PERMISSION = "ledger.view_transfer"
DAYS = 30
WEEKS = 8
EXPIRY_HORIZONS = (7, 30)
LIVE_STATUSES = (LineStatus.ACTIVE, LineStatus.GRACE, LineStatus.SUSPENDED)


def can_view(user: Any, label: str) -> bool:
    """What the admin itself checks before it shows a list (view or change)."""
    app, model = label.split(".")
    return bool(user.has_perm(f"{app}.view_{model}") or user.has_perm(f"{app}.change_{model}"))


def changelist_url(label: str, **params: Any) -> str:
    app, model = label.split(".")
    url = reverse(f"admin:{app}_{model}_changelist")
    if not params:
        return url
    values = {
        key: value.isoformat() if isinstance(value, datetime) else str(value)
        for key, value in params.items()
    }
    return f"{url}?{urlencode(values)}"


@dataclass(frozen=True)
class Row:
    cells: list[str]
    url: str


@dataclass(frozen=True)
class Figure:
    key: str
    title: str
    description: str
    chart: Chart
    head: list[str]
    rows: list[Row]
    list_url: str
    empty_text: str = ""


@dataclass(frozen=True)
class Period:
    """The last DAYS calendar days in the operator's zone, today included."""

    now: datetime
    tz: tzinfo
    days: list[date]
    since: datetime
    until: datetime

    @classmethod
    def ending(cls, now: datetime, tz: tzinfo, days: int = DAYS) -> Period:
        today = timezone.localtime(now, tz).date()
        first = today - timedelta(days=days - 1)
        return cls(
            now=now,
            tz=tz,
            days=[first + timedelta(days=i) for i in range(days)],
            since=start_of(first, tz),
            until=start_of(today + timedelta(days=1), tz),
        )


def start_of(day: date, tz: tzinfo) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min), tz)


def short_day(day: date) -> str:
    return str(format_skeleton("MMMd", day, locale=babel_locale()))


def long_day(day: date) -> str:
    return str(format_date(day, format="medium", locale=babel_locale()))


def count_text(value: int) -> str:
    return str(format_decimal(value, locale=babel_locale()))


@dataclass
class Dashboard:
    as_of: str
    zone: str
    figures: list[Figure] = field(default_factory=list)
    shows_revenue: bool = False


def build(user: Any, now: datetime | None = None) -> Dashboard | None:
    """The figures `user` may see, or None when they may see none of them."""
    now = (now or clock.now()).replace(microsecond=0)
    tz = timezone.get_current_timezone()
    period = Period.ending(now, tz)
    money = bool(user.has_perm(REVENUE_PERMISSION))
    figures: list[Figure] = []
    if can_view(user, "topups.topuporder"):
        figures += topup_figures(period, money=money)
    if can_view(user, "lines.line"):
        figures += line_figures(period)
    if can_view(user, "notifications.notification"):
        figures.append(reminder_figure(period))
    if can_view(user, "payments.paymentattempt"):
        figures.append(payment_figure(period))
    if can_view(user, "support.ticket"):
        figures.append(ticket_figure(period))
    if can_view(user, "finance.mismatch"):
        figures.append(settlement_figure())
    if not figures:
        return None
    return Dashboard(
        as_of=format_when(now),
        zone=str(tz),
        figures=figures,
        shows_revenue=money and can_view(user, "topups.topuporder"),
    )


# --- Top-ups -----------------------------------------------------------------------


def _orders(**params: Any) -> str:
    return changelist_url("topups.topuporder", status__exact=OrderStatus.FULFILLED, **params)


def topup_figures(period: Period, *, money: bool) -> list[Figure]:
    by_day = topup_queries.completed_by_day(period.since, period.until, period.tz)
    by_channel = topup_queries.completed_by_channel(period.since, period.until)
    currencies = sorted({total.currency for total in by_day} | {t.currency for t in by_channel})
    day_range = {
        day: {
            "fulfilled_at__gte": start_of(day, period.tz),
            "fulfilled_at__lt": start_of(day + timedelta(days=1), period.tz),
        }
        for day in period.days
    }
    counts = {day: 0 for day in period.days}
    for total in by_day:
        counts[total.day] = counts.get(total.day, 0) + total.count
    head = [_("day"), _("currency"), _("top-ups")] + ([_("revenue")] if money else [])
    rows = [
        Row(
            [long_day(total.day), total.currency, count_text(total.count)]
            + ([format_money(total.amount, total.currency)] if money else []),
            _orders(currency__exact=total.currency, **day_range[total.day]),
        )
        for total in by_day
        if total.day in day_range
    ]
    whole = {"fulfilled_at__gte": period.since, "fulfilled_at__lt": period.until}
    figures = [
        Figure(
            key="topups-per-day",
            title=_("Top-ups per day"),
            description=_(
                "Top-ups completed each day of the last %(days)d days, all currencies and "
                "channels; refunded ones are left out."
            )
            % {"days": DAYS},
            chart=bar_chart(
                [short_day(day) for day in period.days],
                [_("top-ups")],
                [[counts[day]] for day in period.days],
                [[_orders(**day_range[day])] for day in period.days],
                value_text=count_text,
                label_every=5,
            ),
            head=head,
            rows=rows,
            list_url=_orders(**whole),
            empty_text=_("No top-up was completed in this period."),
        )
    ]
    if money:
        for currency in currencies:
            amounts = {t.day: t.amount for t in by_day if t.currency == currency}
            numbers = {t.day: t.count for t in by_day if t.currency == currency}

            def money_text(value: int, currency: str = currency) -> str:
                return format_money(value, currency)

            figures.append(
                Figure(
                    key=f"revenue-{currency.lower()}",
                    title=_("Revenue per day in %(currency)s") % {"currency": currency},
                    description=_(
                        "What subscribers paid for the top-ups completed each day, in "
                        "%(currency)s only (currencies are never added together)."
                    )
                    % {"currency": currency},
                    chart=bar_chart(
                        [short_day(day) for day in period.days],
                        [_("revenue")],
                        [[amounts.get(day, 0)] for day in period.days],
                        [
                            [_orders(currency__exact=currency, **day_range[day])]
                            for day in period.days
                        ],
                        value_text=money_text,
                        label_every=5,
                    ),
                    head=[_("day"), _("revenue"), _("top-ups")],
                    rows=[
                        Row(
                            [long_day(day), money_text(amounts[day]), count_text(numbers[day])],
                            _orders(currency__exact=currency, **day_range[day]),
                        )
                        for day in period.days
                        if day in amounts
                    ],
                    list_url=_orders(currency__exact=currency, **whole),
                )
            )
    channel_counts = {channel.value: 0 for channel in SalesChannel}
    for sold in by_channel:
        channel_counts[sold.channel] = channel_counts.get(sold.channel, 0) + sold.count
    labels = dict(SalesChannel.choices)
    figures.append(
        Figure(
            key="topups-by-channel",
            title=_("Top-ups by channel"),
            description=_(
                "Top-ups completed in the last %(days)d days, by the channel they were sold through."
            )
            % {"days": DAYS},
            chart=bar_chart(
                [str(labels.get(code, code)) for code in channel_counts],
                [_("top-ups")],
                [[count] for count in channel_counts.values()],
                [[_orders(channel__exact=code, **whole)] for code in channel_counts],
                value_text=count_text,
            ),
            head=[_("channel"), _("currency"), _("top-ups")] + ([_("revenue")] if money else []),
            rows=[
                Row(
                    [str(labels.get(t.channel, t.channel)), t.currency, count_text(t.count)]
                    + ([format_money(t.amount, t.currency)] if money else []),
                    _orders(channel__exact=t.channel, currency__exact=t.currency, **whole),
                )
                for t in by_channel
            ],
            list_url=_orders(**whole),
            empty_text=_("No top-up was completed in this period."),
        )
    )
    return figures


# --- Lines -------------------------------------------------------------------------


def line_figures(period: Period) -> list[Figure]:
    by_status = line_queries.count_by_status()
    status_labels = dict(LineStatus.choices)
    figures = [
        Figure(
            key="lines-by-status",
            title=_("Lines by status"),
            description=_(
                "Every line by the status the lifecycle sweep last recorded (a line whose date "
                "passed since then moves at the next sweep)."
            ),
            chart=bar_chart(
                [str(status_labels[s]) for s in by_status],
                [_("lines")],
                [[count] for count in by_status.values()],
                [[changelist_url("lines.line", status__exact=s)] for s in by_status],
                value_text=count_text,
            ),
            head=[_("status"), _("lines")],
            rows=[
                Row(
                    [str(status_labels[s]), count_text(count)],
                    changelist_url("lines.line", status__exact=s),
                )
                for s, count in by_status.items()
            ],
            list_url=changelist_url("lines.line"),
        )
    ]
    expiring = line_queries.count_expiring(period.now, EXPIRY_HORIZONS)
    live = ",".join(LIVE_STATUSES)

    def expiring_url(days: int) -> str:
        return changelist_url(
            "lines.line",
            status__in=live,
            valid_until__gte=period.now,
            valid_until__lt=period.now + timedelta(days=days),
        )

    horizon_labels = [
        ngettext("in the next %(days)d day", "in the next %(days)d days", days) % {"days": days}
        for days in expiring
    ]
    figures.append(
        Figure(
            key="lines-expiring",
            title=_("Lines whose validity ends soon"),
            description=_(
                "Lines not terminated whose validity ends within the next 7 and 30 days: the "
                "ones reminders are about. The 30 days include the 7."
            ),
            chart=bar_chart(
                horizon_labels,
                [_("lines")],
                [[count] for count in expiring.values()],
                [[expiring_url(days)] for days in expiring],
                value_text=count_text,
            ),
            head=[_("validity ends"), _("lines")],
            rows=[
                Row([label, count_text(count)], expiring_url(days))
                for label, (days, count) in zip(horizon_labels, expiring.items(), strict=True)
            ],
            list_url=expiring_url(max(EXPIRY_HORIZONS)),
        )
    )
    this_monday = timezone.localtime(period.now, period.tz).date()
    this_monday -= timedelta(days=this_monday.weekday())
    weeks = [this_monday - timedelta(weeks=WEEKS - 1 - i) for i in range(WEEKS)]
    since, until = (
        start_of(weeks[0], period.tz),
        start_of(this_monday + timedelta(weeks=1), period.tz),
    )
    lost = line_queries.count_terminated_by_week(since, until, period.tz)

    def lost_url(monday: date) -> str:
        return changelist_url(
            "lines.line",
            status__exact=LineStatus.TERMINATED,
            terminated_at__gte=start_of(monday, period.tz),
            terminated_at__lt=start_of(monday + timedelta(weeks=1), period.tz),
        )

    figures.append(
        Figure(
            key="lines-lost",
            title=_("Lines lost per week"),
            description=_(
                "Lines terminated in each of the last %(weeks)d weeks (Monday to Sunday): their "
                "number went to quarantine and their balance was forfeited."
            )
            % {"weeks": WEEKS},
            chart=bar_chart(
                [short_day(monday) for monday in weeks],
                [_("lines")],
                [[lost.get(monday, 0)] for monday in weeks],
                [[lost_url(monday)] for monday in weeks],
                value_text=count_text,
            ),
            head=[_("week from"), _("lines")],
            rows=[
                Row([long_day(monday), count_text(lost.get(monday, 0))], lost_url(monday))
                for monday in weeks
            ],
            list_url=changelist_url(
                "lines.line",
                status__exact=LineStatus.TERMINATED,
                terminated_at__gte=since,
                terminated_at__lt=until,
            ),
        )
    )
    return figures


# --- Reminders ---------------------------------------------------------------------


def percent(part: int, whole: int) -> str:
    if not whole:
        return "-"
    return str(format_percent(part / whole, format="#,##0.0%", locale=babel_locale()))


def reminder_figure(period: Period) -> Figure:
    kinds = list(ReminderKind.values)
    counts: dict[str, dict[str, int]] = {c.value: {} for c in MessageChannel}
    for row in notification_queries.delivery_by_channel(kinds, period.since, period.until):
        counts.setdefault(row.channel, {})[row.status] = row.count
    labels = dict(MessageChannel.choices)
    base = {
        "kind__in": ",".join(kinds),
        "created_at__gte": period.since,
        "created_at__lt": period.until,
    }

    def url(channel: str, status: str = "") -> str:
        extra = {"status__exact": status} if status else {}
        return changelist_url("notifications.notification", channel__exact=channel, **base, **extra)

    def not_sent(by_status: dict[str, int]) -> int:
        return by_status.get(MessageStatus.SKIPPED, 0) + by_status.get(MessageStatus.CANCELLED, 0)

    sent_total = sum(c.get(MessageStatus.SENT, 0) for c in counts.values())
    failed_total = sum(c.get(MessageStatus.FAILED, 0) for c in counts.values())
    return Figure(
        key="reminder-delivery",
        title=_("Reminder delivery by channel"),
        description=_(
            "Reminders queued in the last %(days)d days (validity ends soon, grace, suspension, "
            "number loss): sent and failed per channel. Delivery rate: %(rate)s of the "
            "reminders that were tried went out."
        )
        % {"days": DAYS, "rate": percent(sent_total, sent_total + failed_total)},
        chart=bar_chart(
            [str(labels.get(channel, channel)) for channel in counts],
            [_("sent"), _("failed")],
            [
                [by_status.get(MessageStatus.SENT, 0), by_status.get(MessageStatus.FAILED, 0)]
                for by_status in counts.values()
            ],
            [[url(ch, MessageStatus.SENT), url(ch, MessageStatus.FAILED)] for ch in counts],
            value_text=count_text,
        ),
        head=[
            _("channel"),
            _("sent"),
            _("failed"),
            _("not sent"),
            _("waiting"),
            _("delivery rate"),
        ],
        rows=[
            Row(
                [
                    str(labels.get(channel, channel)),
                    count_text(by_status.get(MessageStatus.SENT, 0)),
                    count_text(by_status.get(MessageStatus.FAILED, 0)),
                    count_text(not_sent(by_status)),
                    count_text(by_status.get(MessageStatus.PENDING, 0)),
                    percent(
                        by_status.get(MessageStatus.SENT, 0),
                        by_status.get(MessageStatus.SENT, 0)
                        + by_status.get(MessageStatus.FAILED, 0),
                    ),
                ],
                url(channel),
            )
            for channel, by_status in counts.items()
        ],
        list_url=changelist_url("notifications.notification", **base),
    )


# --- Payments ----------------------------------------------------------------------


def payment_figure(period: Period) -> Figure:
    by_provider: dict[str, dict[str, int]] = {}
    for row in payment_queries.attempts_needing_attention(period.since):
        group = "failed" if row.status == AttemptStatus.FAILED else "open"
        counts = by_provider.setdefault(row.provider, {"failed": 0, "open": 0})
        counts[group] += row.count
    open_statuses = f"{AttemptStatus.CREATED},{AttemptStatus.PENDING}"

    def failed_url(provider: str) -> str:
        return changelist_url(
            "payments.paymentattempt",
            provider__exact=provider,
            status__exact=AttemptStatus.FAILED,
            created_at__gte=period.since,
        )

    def open_url(provider: str) -> str:
        return changelist_url(
            "payments.paymentattempt", provider__exact=provider, status__in=open_statuses
        )

    providers = sorted(by_provider)
    return Figure(
        key="payments-attention",
        title=_("Payments that failed or are still waiting"),
        description=_(
            "Per payment provider: attempts that failed in the last %(days)d days, and "
            "attempts still waiting for the provider (created or pending), however old."
        )
        % {"days": DAYS},
        chart=bar_chart(
            [provider_label(p) for p in providers],
            [_("failed"), _("waiting")],
            [[by_provider[p]["failed"], by_provider[p]["open"]] for p in providers],
            [[failed_url(p), open_url(p)] for p in providers],
            value_text=count_text,
        ),
        head=[_("provider"), _("failed"), _("waiting")],
        rows=[
            Row(
                [
                    provider_label(p),
                    count_text(by_provider[p]["failed"]),
                    count_text(by_provider[p]["open"]),
                ],
                changelist_url("payments.paymentattempt", provider__exact=p),
            )
            for p in providers
        ],
        list_url=changelist_url("payments.paymentattempt", status__exact=AttemptStatus.FAILED),
        empty_text=_("No payment failed or is waiting."),
    )


# --- Support -----------------------------------------------------------------------


def _bucket_label(index: int) -> str:
    bounds = support_queries.AGE_BUCKETS
    if index == len(bounds) - 1:
        return ngettext("%(days)d day or more", "%(days)d days or more", bounds[index]) % {
            "days": bounds[index]
        }
    if bounds[index] == 0:
        return ngettext("under %(days)d day", "under %(days)d days", bounds[1]) % {
            "days": bounds[1]
        }
    return _("%(low)d to %(high)d days") % {"low": bounds[index], "high": bounds[index + 1]}


def ticket_figure(period: Period) -> Figure:
    bounds = support_queries.AGE_BUCKETS
    statuses = [TicketStatus.OPEN, TicketStatus.ANSWERED]
    counts = {(i, s.value): 0 for i in range(len(bounds)) for s in statuses}
    for row in support_queries.open_tickets_by_age(period.now):
        counts[(row.bucket, row.status)] = row.count

    def url(index: int, status: str) -> str:
        params: dict[str, Any] = {"status__exact": status}
        if index + 1 < len(bounds):
            params["created_at__gt"] = period.now - timedelta(days=bounds[index + 1])
        if bounds[index]:
            params["created_at__lte"] = period.now - timedelta(days=bounds[index])
        return changelist_url("support.ticket", **params)

    labels = [_bucket_label(i) for i in range(len(bounds))]
    status_labels = [str(s.label) for s in statuses]
    return Figure(
        key="tickets-by-age",
        title=_("Open support tickets by age"),
        description=_(
            "Tickets not closed, by how long ago they were written: waiting for support, or "
            "answered and waiting for the subscriber."
        ),
        chart=bar_chart(
            labels,
            status_labels,
            [[counts[(i, s.value)] for s in statuses] for i in range(len(bounds))],
            [[url(i, s.value) for s in statuses] for i in range(len(bounds))],
            value_text=count_text,
        ),
        head=[_("age"), *status_labels],
        rows=[
            Row(
                [labels[i], *(count_text(counts[(i, s.value)]) for s in statuses)],
                url(i, TicketStatus.OPEN),
            )
            for i in range(len(bounds))
        ],
        list_url=changelist_url("support.ticket", status__exact=TicketStatus.OPEN),
    )


# --- Finance -----------------------------------------------------------------------


def settlement_figure() -> Figure:
    counts = finance_queries.latest_mismatch_counts()
    providers = sorted(counts.by_provider)
    kinds = list(MismatchKind)

    def url(provider: str, kind: str = "") -> str:
        latest = counts.by_provider[provider]
        params: dict[str, Any] = {"run__provider": provider, "run__date": latest.day.isoformat()}
        if kind:
            params["kind__exact"] = kind
        return changelist_url("finance.mismatch", **params)

    return Figure(
        key="settlement-mismatches",
        title=_("Settlement mismatches"),
        description=_(
            "Per payment provider, on the latest day reconciled: payments where leb's "
            "ledger and the provider's own books disagree, by kind."
        ),
        chart=bar_chart(
            [provider_label(p) for p in providers],
            [str(kind.label) for kind in kinds],
            [[counts.by_provider[p].by_kind.get(kind, 0) for kind in kinds] for p in providers],
            [[url(p, kind) for kind in kinds] for p in providers],
            value_text=count_text,
        ),
        head=[_("provider"), _("day"), _("mismatches")],
        rows=[
            Row(
                [
                    provider_label(p),
                    long_day(counts.by_provider[p].day),
                    count_text(counts.by_provider[p].total),
                ],
                url(p),
            )
            for p in providers
        ],
        list_url=changelist_url("finance.mismatch"),
        empty_text=_("No day has been reconciled yet."),
    )
