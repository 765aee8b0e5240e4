"""Writing notifications into the outbox.

`notify` and `notify_many` are called INSIDE the transaction of the event that
causes the message: the rows commit or roll back with it. One row is written per
(recipient, channel, kind, dedupe key), enforced by a unique constraint, so a
re-run or a second worker creates nothing new. Delivery happens later
(`leb.notifications.delivery`), started on commit and by the periodic job.

Recipient: the user (each channel they enabled: email, SMS, webhook); with no
user but a line, its owner; with neither, an SMS to the line's own number in the
operator's default language. A user with every channel off still gets one row on
the "centre" channel, recorded as not sent, so the notification centre shows
what leb would have said.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Case, CharField, F, Value, When

from leb.common import clock
from leb.common.bulk import insert_rows, insert_rows_returning
from leb.common.transactions import one_transaction, own_transactions
from leb.lines.models import Line

from .models import Channel, Notification, NotificationPreference, Reason, Status
from .quiet import send_time

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

CHUNK = 1000


@dataclass(frozen=True)
class NotifyRequest:
    kind: str
    context: dict[str, Any]
    dedupe_key: str
    user_id: int | None = None
    line_id: int | None = None
    deliver_by: datetime | None = None
    skip_if_validity_changed: bool = False


@dataclass(frozen=True)
class Target:
    """One channel of one recipient, resolved from their preferences."""

    recipient: str
    user_id: int | None
    channel: str
    destination: str
    language: str
    time_zone: str
    quiet_start: time | None = None
    quiet_end: time | None = None


@dataclass(frozen=True)
class Recipient:
    """What notify needs to know about an account (read in bulk with values())."""

    user_id: int
    email: str
    phone: str
    language: str
    time_zone: str
    has_preference: bool
    email_enabled: bool
    email_address: str
    sms_enabled: bool
    sms_number: str
    webhook_url: str
    quiet_start: time | None
    quiet_end: time | None


@dataclass(frozen=True)
class LineInfo:
    line_id: int
    owner_id: int | None
    msisdn: str
    valid_until: datetime | None


@dataclass
class _Lookups:
    lines: dict[int, LineInfo] = field(default_factory=dict)
    users: dict[int, Recipient] = field(default_factory=dict)


@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    for candidate in (name, settings.TIME_ZONE, "UTC"):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def _language(value: str) -> str:
    """One of settings.LANGUAGES for a stored preference, whatever its spelling
    (zh-Hant, zh_TW, zh-HK, zh-CN...); the site default when it names none."""
    codes = {code for code, _name in settings.LANGUAGES}
    value = (value or "").strip().lower().replace("_", "-")
    if value in codes:
        return value
    if value.startswith("zh-hant") or value in ("zh-hk", "zh-tw", "zh-mo"):
        value = "zh-hant"
    elif value.startswith("zh"):
        value = "zh-hans"
    elif value.startswith("en"):
        value = "en"
    return value if value in codes else str(settings.LANGUAGE_CODE)


def recipient_language(value: str) -> str:
    return _language(value)


# Only proven contact details receive messages: an address typed at sign-up
# and never confirmed may belong to someone else.
RECIPIENT_FIELDS = (
    "id",
    "verified_email",
    "verified_phone",
    "profile__language",
    "profile__time_zone",
    "notification_preference__id",
    "notification_preference__email_enabled",
    "notification_preference__email_address",
    "notification_preference__sms_enabled",
    "notification_preference__sms_number",
    "notification_preference__webhook_url",
    "notification_preference__quiet_start",
    "notification_preference__quiet_end",
)


def verified_contact_annotations() -> dict[str, Any]:
    """For a query on users: `verified_email` and `verified_phone` columns,
    "" where the address or number is not proven, so lists of recipients can
    be read in one query: `.annotate(**verified_contact_annotations())`.
    The same rule as accounts.queries.verified_email / verified_phone, read
    through the profile relation so the outbox needs no accounts import."""
    return {
        "verified_email": Case(
            When(profile__email_verified_at__isnull=False, then=F("email")),
            default=Value(""),
            output_field=CharField(),
        ),
        "verified_phone": Case(
            When(profile__phone_verified_at__isnull=False, then=F("profile__phone")),
            default=Value(""),
            output_field=CharField(),
        ),
    }


def recipients(user_ids: Iterable[int]) -> dict[int, Recipient]:
    """Accounts with their profile and preference, in one query."""
    found = {}
    rows = (
        get_user_model()
        .objects.filter(pk__in=list(user_ids), is_active=True)
        .annotate(**verified_contact_annotations())
        .values_list(*RECIPIENT_FIELDS)
    )
    for (
        user_id,
        email,
        phone,
        language,
        time_zone,
        pref_id,
        email_enabled,
        email_address,
        sms_enabled,
        sms_number,
        webhook_url,
        quiet_start,
        quiet_end,
    ) in rows:
        has_preference = pref_id is not None
        found[user_id] = Recipient(
            user_id=user_id,
            email=email or "",
            phone=phone or "",
            language=_language(language or ""),
            time_zone=zone(time_zone or "").key,
            has_preference=has_preference,
            email_enabled=bool(email_enabled) if has_preference else True,
            email_address=email_address or "",
            sms_enabled=bool(sms_enabled) if has_preference else True,
            sms_number=sms_number or "",
            webhook_url=webhook_url or "",
            quiet_start=quiet_start,
            quiet_end=quiet_end,
        )
    return found


def user_targets(user: Recipient) -> list[Target]:
    """The channels this account hears from leb on."""
    recipient = f"user:{user.user_id}"

    def target(channel: str, destination: str) -> Target:
        return Target(
            recipient,
            user.user_id,
            channel,
            destination,
            user.language,
            user.time_zone,
            user.quiet_start,
            user.quiet_end,
        )

    targets = []
    email = user.email_address or user.email
    if user.email_enabled and email:
        targets.append(target(Channel.EMAIL, email))
    sms_number = user.sms_number or user.phone
    if user.sms_enabled and sms_number:
        targets.append(target(Channel.SMS, sms_number))
    if user.webhook_url:
        targets.append(target(Channel.WEBHOOK, user.webhook_url))
    if not targets:
        targets.append(target(Channel.CENTRE, ""))
    return targets


def line_targets(line: LineInfo) -> list[Target]:
    if not line.msisdn:
        return []
    return [
        Target(
            f"line:{line.line_id}",
            None,
            Channel.SMS,
            line.msisdn,
            settings.LANGUAGE_CODE,
            zone(settings.TIME_ZONE).key,
        )
    ]


def _check_context(context: dict[str, Any]) -> dict[str, Any]:
    # Fail at the caller, inside its transaction, rather than at delivery.
    json.dumps(context)
    return context


# The columns notify writes; the others keep their NULL.
COLUMNS = (
    "recipient",
    "user_id",
    "line_id",
    "channel",
    "destination",
    "language",
    "time_zone",
    "kind",
    "context",
    "dedupe_key",
    "status",
    "reason",
    "attempts",
    "next_attempt_at",
    "deliver_by",
    "skip_if_validity_changed",
    "valid_until_snapshot",
    "last_error",
    "provider_message_id",
    "created_at",
    "finished_at",
    "secret_keys",
)
Row = tuple[Any, ...]


def _rows_for(request: NotifyRequest, lookups: _Lookups, now: datetime) -> list[Row]:
    line = lookups.lines.get(request.line_id) if request.line_id else None
    user_id = request.user_id or (line.owner_id if line is not None else None)
    if user_id is not None:
        user = lookups.users.get(user_id)
        targets = user_targets(user) if user is not None else []
    elif line is not None:
        targets = line_targets(line)
    else:
        targets = []
    margin = timedelta(seconds=settings.NOTIFICATIONS_DEADLINE_MARGIN)
    context = request.context
    rows = []
    for target in targets:
        next_attempt_at: datetime | None = None
        finished_at: datetime | None = None
        if target.channel == Channel.CENTRE:
            status, reason, finished_at = str(Status.SKIPPED), str(Reason.ALL_CHANNELS_OFF), now
        else:
            status, reason = str(Status.PENDING), ""
            next_attempt_at = send_time(
                now,
                tz=zone(target.time_zone),
                quiet_start=target.quiet_start,
                quiet_end=target.quiet_end,
                deliver_by=request.deliver_by,
                deadline_margin=margin,
            )
        rows.append(
            (
                target.recipient,
                target.user_id,
                line.line_id if line is not None else None,
                str(target.channel),
                target.destination,
                target.language,
                target.time_zone,
                request.kind,
                context,
                request.dedupe_key,
                status,
                reason,
                0,
                next_attempt_at,
                request.deliver_by,
                request.skip_if_validity_changed,
                line.valid_until if line is not None else None,
                "",
                "",
                now,
                finished_at,
                "",
            )
        )
    return rows


def _lookups(
    requests: Sequence[NotifyRequest], *, known_lines: Mapping[int, LineInfo] | None = None
) -> _Lookups:
    known = known_lines or {}
    lookups = _Lookups(
        lines={r.line_id: known[r.line_id] for r in requests if r.line_id and r.line_id in known}
    )
    line_ids = {r.line_id for r in requests if r.line_id and r.line_id not in lookups.lines}
    if line_ids:
        lookups.lines |= {
            pk: LineInfo(pk, owner_id, msisdn or "", valid_until)
            for pk, owner_id, msisdn, valid_until in Line.objects.filter(
                pk__in=line_ids
            ).values_list("pk", "owner_id", "phone_number__msisdn", "valid_until")
        }
    user_ids = {r.user_id for r in requests if r.user_id}
    for r in requests:
        if not r.user_id and r.line_id:
            line = lookups.lines.get(r.line_id)
            if line is not None and line.owner_id:
                user_ids.add(line.owner_id)
    if user_ids:
        lookups.users = recipients(user_ids)
    return lookups


def _insert(rows: list[Row]) -> int:
    """Insert the rows that are not there yet, in one statement; returns how
    many are new. The unique constraint decides, also against concurrent
    writers (ON CONFLICT DO NOTHING)."""
    return insert_rows(Notification, COLUMNS, rows, ignore_conflicts=True)


def _insert_one_event(rows: list[Row]) -> list[Notification]:
    """One event's rows (one per channel): inserted as _insert does, then
    returned, whether this call wrote them or an earlier one. When all are
    new, they are built from what was written instead of read back."""
    written = insert_rows_returning(
        Notification, COLUMNS, rows, ("id", "channel"), ignore_conflicts=True
    )
    if len(written) < len(rows):
        recipient, kind, dedupe_key = rows[0][0], rows[0][7], rows[0][9]
        return list(
            Notification.objects.filter(
                dedupe_key=dedupe_key, kind=kind, recipient=recipient
            ).order_by("pk")
        )
    ids = {channel: pk for pk, channel in written}
    stored = []
    for row in rows:
        notification = Notification(
            id=ids[row[3]], sent_at=None, **dict(zip(COLUMNS, row, strict=True))
        )
        notification._state.adding = False
        notification._state.db = connection.alias
        stored.append(notification)
    return sorted(stored, key=lambda n: n.pk)


def _queue_delivery(ids: Iterable[int] | None) -> None:
    """Enqueue the delivery in the caller's transaction: the task row commits
    or rolls back with the messages (the database task backend writes it in
    the same transaction), and no second commit is spent on it."""
    from .tasks import deliver_due_notifications_task, deliver_notifications_task

    if ids is None:
        deliver_due_notifications_task.enqueue()
        return
    id_list = sorted(ids)
    if id_list:
        deliver_notifications_task.enqueue(id_list)


def notify(
    *,
    kind: str,
    context: dict[str, Any],
    dedupe_key: str,
    user: AbstractBaseUser | None = None,
    line: Line | None = None,
    deliver_by: datetime | None = None,
    skip_if_validity_changed: bool = False,
    now: datetime | None = None,
) -> list[Notification]:
    """Queue one message about one event; returns its rows (one per channel),
    whether this call created them or an earlier one did."""
    now = now or clock.now()
    request = NotifyRequest(
        kind=kind,
        context=_check_context(context),
        dedupe_key=dedupe_key,
        user_id=user.pk if user is not None else None,
        line_id=line.pk if line is not None else None,
        deliver_by=deliver_by,
        skip_if_validity_changed=skip_if_validity_changed,
    )
    # No savepoint: inside an event's transaction (the usual case) a failure
    # here fails the event too, and the two round trips are saved.
    with transaction.atomic(savepoint=False):
        known: dict[int, LineInfo] = {}
        if line is not None and Line.phone_number.is_cached(line):
            # The caller holds the line (often row-locked): no need to read it again.
            msisdn = line.phone_number.msisdn if line.phone_number is not None else ""
            known[line.pk] = LineInfo(line.pk, line.owner_id, msisdn, line.valid_until)
        rows = _rows_for(request, _lookups([request], known_lines=known), now)
        if not rows:
            return []
        stored = _insert_one_event(rows)
        _queue_delivery(
            row.pk
            for row in stored
            if row.status == Status.PENDING
            and row.next_attempt_at is not None
            and row.next_attempt_at <= now
        )
    return stored


def queue_document_webhook(
    *,
    recipient: str,
    url: str,
    kind: str,
    document: dict[str, Any],
    dedupe_key: str,
    now: datetime | None = None,
) -> Notification:
    """Queue one webhook whose body is `document` as it is now (see
    channels.DOCUMENT_WEBHOOKS), for a recipient that is not an account.
    Call inside the event's transaction; once per (recipient, kind, dedupe key)."""
    now = now or clock.now()
    row = (
        recipient,
        None,
        None,
        str(Channel.WEBHOOK),
        url,
        str(settings.LANGUAGE_CODE),
        zone(settings.TIME_ZONE).key,
        kind,
        _check_context(document),
        dedupe_key,
        str(Status.PENDING),
        "",
        0,
        now,
        None,
        False,
        None,
        "",
        "",
        now,
        None,
        "",
    )
    with transaction.atomic():
        _insert([row])
        stored = Notification.objects.get(
            dedupe_key=dedupe_key, kind=kind, recipient=recipient, channel=Channel.WEBHOOK
        )
        if stored.status == Status.PENDING:
            _queue_delivery([stored.pk])
    return stored


DIRECT_CHANNELS = (Channel.EMAIL, Channel.SMS)


def queue_message(
    *,
    kind: str,
    channel: str,
    destination: str,
    language: str,
    context: dict[str, Any],
    dedupe_key: str,
    user: AbstractBaseUser | None = None,
    secret_keys: Sequence[str] = (),
    deliver_by: datetime | None = None,
    now: datetime | None = None,
) -> Notification:
    """Queue one email or SMS to an address the person just gave or proved (a
    code, a verification or reset link, an answer to their message), not
    through their notification preferences: it goes out whatever channels they
    switched off and whatever their quiet hours, in `language`.

    Call inside the event's transaction; once per (recipient, kind, dedupe
    key). The values of `secret_keys` in the context (a code, a link that signs
    in or resets) are kept only until the row is sent, fails for good, misses
    `deliver_by` or is cancelled. The row belongs to no account (`user` only
    names the recipient), so it never shows in the notification centre."""
    if channel not in DIRECT_CHANNELS:
        raise ValueError(f"a message goes by email or SMS, not {channel!r}")
    if not destination:
        raise ValueError("a message needs a destination")
    secret_keys = tuple(secret_keys)
    if not set(secret_keys) <= set(context) or any("," in key for key in secret_keys):
        raise ValueError("secret keys must name context keys")
    now = now or clock.now()
    recipient = f"user:{user.pk}" if user is not None else "address"
    row = (
        recipient,
        None,
        None,
        str(channel),
        destination,
        recipient_language(language),
        zone(settings.TIME_ZONE).key,
        kind,
        _check_context(context),
        dedupe_key,
        str(Status.PENDING),
        "",
        0,
        now,
        deliver_by,
        False,
        None,
        "",
        "",
        now,
        None,
        ",".join(secret_keys),
    )
    with transaction.atomic():
        _insert([row])
        stored = Notification.objects.get(
            dedupe_key=dedupe_key, kind=kind, recipient=recipient, channel=channel
        )
        if stored.status == Status.PENDING:
            _queue_delivery([stored.pk])
    return stored


def notify_many(
    requests: Sequence[NotifyRequest],
    *,
    known_lines: Mapping[int, LineInfo] | None = None,
    now: datetime | None = None,
) -> int:
    """Queue many messages at once (for jobs); returns how many rows are new.
    Lines and recipients' preferences are read in bulk, rows inserted in bulk.
    A job that has just read its lines passes them as `known_lines`, so they
    are not read again."""
    now = now or clock.now()
    created = 0
    with transaction.atomic():
        for start in range(0, len(requests), CHUNK):
            chunk = requests[start : start + CHUNK]
            lookups = _lookups(chunk, known_lines=known_lines)
            rows = [row for request in chunk for row in _rows_for(request, lookups, now)]
            created += _insert(rows)
        if created:
            _queue_delivery(None)
    return created


PREFERENCE_FIELDS = (
    "email_enabled",
    "email_address",
    "sms_enabled",
    "sms_number",
    "webhook_url",
    "quiet_start",
    "quiet_end",
)


@own_transactions
def do_save_notification_preferences(user: Any, **values: Any) -> NotificationPreference:
    """Store validated preferences (the form checks addresses and the URL)."""
    unknown = set(values) - set(PREFERENCE_FIELDS)
    if unknown:
        raise TypeError(f"unknown preference fields: {sorted(unknown)}")
    with transaction.atomic():
        prefs, _created = NotificationPreference.objects.select_for_update().get_or_create(
            user=user
        )
        for name, value in values.items():
            setattr(prefs, name, value)
        prefs.save()
    return prefs


@one_transaction
def do_rotate_webhook_secret(user: Any) -> NotificationPreference:
    """Derive a new signing secret; the old one stops working at once."""
    prefs, _created = NotificationPreference.objects.select_for_update().get_or_create(user=user)
    prefs.webhook_secret_version = F("webhook_secret_version") + 1
    prefs.save(update_fields=["webhook_secret_version", "updated_at"])
    prefs.refresh_from_db()
    return prefs


@own_transactions
def do_cancel_notifications(
    *,
    line: Line | None = None,
    user: Any = None,
    kinds: Sequence[str] = (),
    dedupe_key: str | None = None,
    now: datetime | None = None,
) -> int:
    """Withdraw messages not sent yet (e.g. reminders made moot by an event);
    call inside the event's transaction. Returns how many were cancelled."""
    if line is None and user is None and dedupe_key is None:
        raise TypeError("say which notifications to cancel")
    now = now or clock.now()
    pending = Notification.objects.filter(status=Status.PENDING)
    if line is not None:
        pending = pending.filter(line=line)
    if user is not None:
        pending = pending.filter(user=user)
    if kinds:
        pending = pending.filter(kind__in=list(kinds))
    if dedupe_key is not None:
        pending = pending.filter(dedupe_key=dedupe_key)
    cancelled = 0
    # Rows holding a secret lose it in the statement that cancels them.
    for row in pending.exclude(secret_keys="").only("pk", "context", "secret_keys"):
        cancelled += Notification.objects.filter(pk=row.pk, status=Status.PENDING).update(
            status=Status.CANCELLED,
            finished_at=now,
            next_attempt_at=None,
            context=row.scrubbed_context(),
        )
    return cancelled + pending.filter(secret_keys="").update(
        status=Status.CANCELLED, finished_at=now, next_attempt_at=None
    )
