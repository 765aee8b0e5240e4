"""Every write to eSIM profiles: the ES2+ orders leb places and the progress
the SM-DP+ reports.

Each ES2+ function is three steps, so no network call ever runs inside a
transaction that holds a row lock:
1. in a short transaction, write the call (its functionCallIdentifier) or
   reuse the pending one for the same request, which makes a retry a repeat;
2. send it, outside any transaction;
3. in one transaction, lock the profile, apply the answer, write the
   profile's history and the audit record.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _

from leb.audit.actions import record
from leb.audit.models import AuditAction
from leb.common import clock
from leb.common.transactions import one_transaction, outside_transaction, own_transactions
from leb.lines.actions import mark_esim_installed, needs_real_name
from leb.lines.identifiers import activation_code, normalize_eid, normalize_iccid
from leb.lines.models import Line, LineStatus

from . import es2
from .models import (
    ORDERABLE_STATES,
    CallStatus,
    Es2Call,
    Profile,
    ProfileEvent,
    ProfileEventKind,
    ProfileState,
)

logger = logging.getLogger(__name__)

REDOWNLOAD_WINDOW = timedelta(days=30)


class ProvisioningError(ValidationError):
    """A refused eSIM operation; the message is for the person who asked."""


def _eid_or_error(eid: str) -> str:
    if not eid:
        return ""
    try:
        return normalize_eid(eid)
    except ValidationError as exc:
        raise ProvisioningError(exc.messages[0], code=exc.code) from exc


def _event(
    profile: Profile,
    kind: str,
    now: datetime,
    *,
    from_state: str,
    happened_at: datetime | None = None,
    actor: str = "",
    applied: bool = True,
    dedupe_key: str | None = None,
    data: dict[str, Any] | None = None,
) -> ProfileEvent:
    return ProfileEvent.objects.create(
        profile=profile,
        kind=kind,
        from_state=from_state,
        to_state=profile.state,
        happened_at=happened_at or now,
        recorded_at=now,
        eid=profile.eid,
        actor=actor,
        applied=applied,
        dedupe_key=dedupe_key,
        data=data or {},
    )


def _lock(profile_id: int) -> Profile:
    return Profile.objects.select_for_update().select_related("line").get(pk=profile_id)


@one_transaction
def do_add_profile(line: Line, *, now: datetime | None = None) -> Profile:
    """The line's profile record, created as available the first time."""
    now = now or clock.now()
    profile = Profile.objects.filter(line=line).first()
    if profile is not None:
        return profile
    return Profile.objects.create(
        line=line,
        iccid=line.iccid,
        state=ProfileState.AVAILABLE,
        state_changed_at=now,
        created_at=now,
    )


# --- One ES2+ call ---------------------------------------------------------------


def _request_key(function: str, iccid: str, payload: dict[str, Any]) -> str:
    message = json.dumps([function, iccid, payload], sort_keys=True).encode()
    return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).hexdigest()


def _open_call(
    profile: Profile,
    function: str,
    payload: dict[str, Any],
    *,
    secret_fields: tuple[str, ...] = (),
    actor: str,
    now: datetime,
) -> Es2Call:
    """Write the call before it is sent; reuse the pending one for the same request."""
    key = _request_key(function, profile.iccid, payload)
    stored = {
        name: ("(given)" if name in secret_fields and value else value)
        for name, value in payload.items()
    }
    with transaction.atomic():
        call = (
            Es2Call.objects.select_for_update()
            .filter(profile=profile, function=function, request_key=key, status=CallStatus.PENDING)
            .order_by("pk")
            .first()
        )
        if call is None:
            call = Es2Call.objects.create(
                function=function,
                profile=profile,
                request_key=key,
                request=stored,
                actor=actor,
                created_at=now,
            )
        call.attempts += 1
        call.save(update_fields=["attempts"])
    return call


def _send(
    call: Es2Call, client: es2.Es2Client, payload: dict[str, Any], now: datetime
) -> es2.Es2Result:
    senders: dict[str, Callable[..., es2.Es2Result]] = {
        "downloadOrder": client.download_order,
        "confirmOrder": client.confirm_order,
        "cancelOrder": client.cancel_order,
        "releaseProfile": client.release_profile,
    }
    sender = senders[call.function]
    try:
        return sender(str(call.function_call_id), **payload)
    except es2.Unreachable as exc:
        # Stays pending: the next try sends the same functionCallIdentifier.
        Es2Call.objects.filter(pk=call.pk).update(message=exc.server_message[:500])
        raise ProvisioningError(str(exc.user_message), code="unreachable") from exc
    except es2.Es2Error as exc:
        Es2Call.objects.filter(pk=call.pk).update(
            status=CallStatus.FAILED,
            execution_status=exc.status,
            subject_code=exc.subject_code,
            reason_code=exc.reason_code,
            message=exc.server_message,
            finished_at=now,
        )
        logger.info(
            "ES2+ %s for %s refused: %s %s",
            call.function,
            call.request.get("iccid", ""),
            exc.code,
            exc.server_message,
        )
        raise ProvisioningError(str(exc.user_message), code=exc.code) from exc


def _succeed(call: Es2Call, result: es2.Es2Result, now: datetime) -> None:
    call.status = CallStatus.SUCCEEDED
    call.execution_status = result.status
    call.subject_code = str(result.status_code_data.get("subjectCode", ""))
    call.reason_code = str(result.status_code_data.get("reasonCode", ""))
    call.message = str(result.status_code_data.get("message", ""))[:500]
    call.response = result.data
    call.finished_at = now
    call.save(
        update_fields=[
            "status",
            "execution_status",
            "subject_code",
            "reason_code",
            "message",
            "response",
            "finished_at",
        ]
    )


def _transition(
    profile: Profile,
    to_state: str,
    kind: str,
    *,
    now: datetime,
    actor: str,
    data: dict[str, Any] | None = None,
    **fields: Any,
) -> ProfileEvent:
    """Move a locked profile, write its history and the audit record."""
    before = profile.state
    profile.state = to_state
    profile.state_changed_at = now
    for name, value in fields.items():
        setattr(profile, name, value)
    profile.save()
    event = _event(profile, kind, now, from_state=before, actor=actor, data=data)
    record(
        actor or "system",
        AuditAction(f"esim.{kind}"),
        f"line:{profile.line_id}",
        {"iccid": profile.iccid, "from": before, "to": to_state, **(data or {})},
        now=now,
    )
    return event


def _client(client: es2.Es2Client | None) -> es2.Es2Client:
    if client is not None:
        return client
    try:
        return es2.default_client()
    except es2.NotConfigured as exc:
        raise ProvisioningError(str(exc.user_message), code="not_configured") from exc


# --- The ES2+ functions ------------------------------------------------------------


@outside_transaction
def do_download_order(
    profile: Profile,
    *,
    eid: str = "",
    actor: str = "",
    client: es2.Es2Client | None = None,
    now: datetime | None = None,
) -> Profile:
    """ES2+ downloadOrder: reserve the line's profile at the SM-DP+."""
    now = now or clock.now()
    eid = _eid_or_error(eid)
    if profile.line.status == LineStatus.TERMINATED:
        raise ProvisioningError(_("This line is terminated."), code="line_terminated")
    if profile.state not in ORDERABLE_STATES:
        raise ProvisioningError(
            _("This profile is already ordered (%(state)s)."),
            params={"state": profile.get_state_display()},
            code="already_ordered",
        )
    payload = {"iccid": profile.iccid, "eid": eid}
    call = _open_call(profile, "downloadOrder", payload, actor=actor, now=now)
    result = _send(call, _client(client), payload, now)
    with transaction.atomic():
        locked = _lock(profile.pk)
        _succeed(call, result, now)
        if locked.state in ORDERABLE_STATES:
            _transition(
                locked,
                ProfileState.RESERVED,
                ProfileEventKind.ORDERED,
                now=now,
                actor=actor,
                data={"function_call_id": str(call.function_call_id)},
                eid=eid,
                matching_id="",
                activation_code="",
                smdp_address="",
            )
    return locked


@outside_transaction
def do_confirm_order(
    profile: Profile,
    *,
    eid: str = "",
    matching_id: str = "",
    confirmation_code: str = "",
    smds_address: str | None = None,
    release_flag: bool | None = None,
    actor: str = "",
    client: es2.Es2Client | None = None,
    now: datetime | None = None,
) -> Profile:
    """ES2+ confirmOrder: bind the reserved profile and get its matching ID.
    Released at once unless the release flag is off or the line still needs
    its real-name registration; then it is held until do_release_profile."""
    now = now or clock.now()
    eid = _eid_or_error(eid) or profile.eid
    if profile.state != ProfileState.RESERVED:
        raise ProvisioningError(
            _("Only a reserved profile can be confirmed; this one is %(state)s."),
            params={"state": profile.get_state_display()},
            code="not_reserved",
        )
    if matching_id and (len(matching_id) > 64 or "$" in matching_id):
        raise ProvisioningError(_("The matching ID is not valid."), code="matching_id")
    if release_flag is None:
        release_flag = bool(settings.SMDP_RELEASE_FLAG)
    release_flag = release_flag and not needs_real_name(profile.line)
    payload = {
        "iccid": profile.iccid,
        "eid": eid,
        "matching_id": matching_id,
        "confirmation_code": confirmation_code,
        "smds_address": settings.SMDP_SMDS_ADDRESS if smds_address is None else smds_address,
        "release_flag": release_flag,
    }
    call = _open_call(
        profile,
        "confirmOrder",
        payload,
        secret_fields=("confirmation_code",),
        actor=actor,
        now=now,
    )
    result = _send(call, _client(client), payload, now)
    got_matching_id = str(result.data.get("matchingId") or matching_id)
    smdp_address = str(result.data.get("smdpAddress") or _configured_smdp_host())
    try:
        code = activation_code(
            smdp_address, got_matching_id, confirmation_required=bool(confirmation_code)
        )
    except ValidationError as exc:
        raise ProvisioningError(
            _("The SM-DP+ sent an answer leb cannot read."), code="protocol"
        ) from exc
    with transaction.atomic():
        locked = _lock(profile.pk)
        _succeed(call, result, now)
        if locked.state == ProfileState.RESERVED:
            _transition(
                locked,
                ProfileState.RELEASED if release_flag else ProfileState.CONFIRMED,
                ProfileEventKind.CONFIRMED,
                now=now,
                actor=actor,
                data={"release_flag": release_flag, "matching_id": got_matching_id},
                eid=str(result.data.get("eid") or eid),
                matching_id=got_matching_id,
                smdp_address=smdp_address,
                activation_code=code,
                confirmation_code_required=bool(confirmation_code),
            )
    return locked


def _configured_smdp_host() -> str:
    return urlsplit(settings.SMDP_URL).hostname or ""


@outside_transaction
def do_release_profile(
    profile: Profile,
    *,
    actor: str = "",
    client: es2.Es2Client | None = None,
    now: datetime | None = None,
) -> Profile:
    """ES2+ releaseProfile: make a held (confirmed) profile downloadable."""
    now = now or clock.now()
    if profile.state != ProfileState.CONFIRMED:
        raise ProvisioningError(
            _("Only a held (confirmed) profile can be released; this one is %(state)s."),
            params={"state": profile.get_state_display()},
            code="not_confirmed",
        )
    if needs_real_name(profile.line):
        raise ProvisioningError(
            _("Register the subscriber's real name before releasing the eSIM."),
            code="real_name_required",
        )
    payload = {"iccid": profile.iccid}
    call = _open_call(profile, "releaseProfile", payload, actor=actor, now=now)
    result = _send(call, _client(client), payload, now)
    with transaction.atomic():
        locked = _lock(profile.pk)
        _succeed(call, result, now)
        if locked.state == ProfileState.CONFIRMED:
            _transition(
                locked, ProfileState.RELEASED, ProfileEventKind.RELEASED, now=now, actor=actor
            )
    return locked


CANCELLABLE_STATES = frozenset(
    {ProfileState.RESERVED, ProfileState.CONFIRMED, ProfileState.RELEASED, ProfileState.DELETED}
)


@outside_transaction
def do_cancel_order(
    profile: Profile,
    *,
    final_status: str = "Available",
    actor: str = "",
    reason: str = "",
    client: es2.Es2Client | None = None,
    now: datetime | None = None,
    _redownload: bool = False,
) -> Profile:
    """ES2+ cancelOrder: void the order; the activation code stops working.
    `final_status` Available puts the profile back in stock for a new order."""
    now = now or clock.now()
    if final_status not in ("Available", "Unavailable"):
        raise ProvisioningError(_("Choose Available or Unavailable."), code="final_status")
    if profile.state not in CANCELLABLE_STATES:
        raise ProvisioningError(
            _("This profile has no order that can be cancelled (%(state)s)."),
            params={"state": profile.get_state_display()},
            code="not_cancellable",
        )
    payload = {
        "iccid": profile.iccid,
        "final_status": final_status,
        "eid": profile.eid,
        "matching_id": profile.matching_id,
    }
    call = _open_call(profile, "cancelOrder", payload, actor=actor, now=now)
    result = _send(call, _client(client), payload, now)
    with transaction.atomic():
        locked = _lock(profile.pk)
        _succeed(call, result, now)
        if locked.state in CANCELLABLE_STATES:
            data: dict[str, Any] = {"final_status": final_status}
            if reason:
                data["reason"] = reason
            _transition(
                locked,
                ProfileState.CANCELLED,
                ProfileEventKind.CANCELLED,
                now=now,
                actor=actor,
                data=data,
                activation_code="",
                matching_id="",
            )
            if _redownload:
                _event(
                    locked, ProfileEventKind.REDOWNLOAD, now, from_state=locked.state, actor=actor
                )
                record(
                    actor or "system",
                    AuditAction.ESIM_REDOWNLOAD,
                    f"line:{locked.line_id}",
                    {"iccid": locked.iccid},
                    now=now,
                )
    return locked


@outside_transaction
def do_order_profile(
    line: Line,
    *,
    eid: str = "",
    confirmation_code: str = "",
    actor: str = "",
    client: es2.Es2Client | None = None,
    now: datetime | None = None,
) -> Profile:
    """downloadOrder then confirmOrder for the line's profile. A retry after a
    failure picks up where it stopped (a reserved profile is only confirmed)."""
    eid = _eid_or_error(eid)
    client = _client(client)
    profile = do_add_profile(line, now=now)
    if profile.state in ORDERABLE_STATES:
        profile = do_download_order(profile, eid=eid, actor=actor, client=client, now=now)
    if profile.state == ProfileState.RESERVED:
        profile = do_confirm_order(
            profile,
            eid=eid,
            confirmation_code=confirmation_code,
            actor=actor,
            client=client,
            now=now,
        )
    return profile


def redownloads_left(profile: Profile, now: datetime) -> int:
    used = ProfileEvent.objects.filter(
        profile=profile, kind=ProfileEventKind.REDOWNLOAD, happened_at__gt=now - REDOWNLOAD_WINDOW
    ).count()
    return max(0, int(settings.ESIM_REDOWNLOADS_PER_30_DAYS) - used)


@outside_transaction
def do_redownload_profile(
    profile: Profile,
    *,
    eid: str = "",
    actor: str,
    client: es2.Es2Client | None = None,
    now: datetime | None = None,
) -> Profile:
    """ "My phone was reset": put a deleted profile back in stock at the
    SM-DP+ (cancelOrder, Available) and order it again, at most
    LEB_ESIM_REDOWNLOADS_PER_30_DAYS times in 30 days."""
    now = now or clock.now()
    eid = _eid_or_error(eid)
    if profile.state != ProfileState.DELETED:
        raise ProvisioningError(
            _("Only an eSIM that was deleted from the phone can be downloaded again."),
            code="not_deleted",
        )
    if redownloads_left(profile, now) <= 0:
        raise ProvisioningError(
            _(
                "This eSIM has been downloaded again too often in the last 30 days. "
                "Please contact support."
            ),
            code="redownload_limit",
        )
    client = _client(client)
    profile = do_cancel_order(
        profile, actor=actor, client=client, now=now, reason="redownload", _redownload=True
    )
    return do_order_profile(profile.line, eid=eid, actor=actor, client=client, now=now)


# --- Progress notifications (ES2+ handleDownloadProgressInfo) ------------------------

# notificationPointId (SGP.22 §5.3.5): 1 eligibility and retry limit check,
# 2 confirmation failure, 3 BPP download, 4 BPP installation, 5 profile deleted;
# 101 enabled and 102 disabled are the values SM-DP+ vendors use for the
# other notifications (SGP.22 §3.5) they forward.
NOTIFICATION_POINTS: dict[int, str] = {
    1: ProfileEventKind.ELIGIBILITY,
    2: ProfileEventKind.CONFIRMATION_FAILED,
    3: ProfileEventKind.DOWNLOADED,
    4: ProfileEventKind.INSTALLED,
    5: ProfileEventKind.DELETED,
    101: ProfileEventKind.ENABLED,
    102: ProfileEventKind.DISABLED,
}
_AFTER_ORDER = {ProfileState.CONFIRMED, ProfileState.RELEASED}
# kind -> (states it may follow, state it leads to)
_MOVES: dict[str, tuple[set[str], str]] = {
    ProfileEventKind.DOWNLOADED: (
        _AFTER_ORDER | {ProfileState.DOWNLOADED},
        ProfileState.DOWNLOADED,
    ),
    ProfileEventKind.INSTALLED: (
        _AFTER_ORDER | {ProfileState.DOWNLOADED, ProfileState.INSTALLED},
        ProfileState.INSTALLED,
    ),
    ProfileEventKind.ENABLED: (
        {ProfileState.DOWNLOADED, ProfileState.INSTALLED},
        ProfileState.INSTALLED,
    ),
    ProfileEventKind.DISABLED: ({ProfileState.INSTALLED}, ProfileState.INSTALLED),
    ProfileEventKind.DELETED: (
        {ProfileState.DOWNLOADED, ProfileState.INSTALLED, ProfileState.DELETED},
        ProfileState.DELETED,
    ),
}


class NotificationError(ProvisioningError):
    """A notification leb cannot accept; nothing was written."""


@dataclass(frozen=True)
class Progress:
    iccid: str
    eid: str
    point: int
    success: bool
    timestamp: datetime
    status_code_data: dict[str, Any]


def parse_progress(document: Any) -> Progress:
    """Validate a handleDownloadProgressInfo body (SGP.22 §5.3.5)."""
    if not isinstance(document, dict):
        raise NotificationError(_("The notification is not a JSON object."), code="format")
    try:
        raw_iccid = str(document["iccid"])
        raw_point = document["notificationPointId"]
        status = document["notificationPointStatus"]["status"]
        raw_time = str(document["timestamp"])
    except (KeyError, TypeError) as exc:
        raise NotificationError(
            _("The notification lacks iccid, timestamp, notificationPointId or its status."),
            code="missing",
        ) from exc
    # ES2+ may pad a 19-digit ICCID with a trailing F.
    iccid_text = raw_iccid[:-1] if len(raw_iccid) == 20 and raw_iccid[-1] in "Ff" else raw_iccid
    try:
        iccid = normalize_iccid(iccid_text)
        eid = normalize_eid(str(document["eid"])) if document.get("eid") else ""
    except ValidationError as exc:
        raise NotificationError(exc.messages[0], code=exc.code) from exc
    try:
        point = int(raw_point)
    except (TypeError, ValueError) as exc:
        raise NotificationError(_("notificationPointId is not a number."), code="point") from exc
    if point not in NOTIFICATION_POINTS:
        raise NotificationError(
            _("Unknown notificationPointId %(point)s."), params={"point": point}, code="point"
        )
    timestamp = parse_datetime(raw_time.replace("Z", "+00:00"))
    if timestamp is None or timestamp.tzinfo is None:
        raise NotificationError(
            _("The timestamp is not a date and time with a time zone."), code="timestamp"
        )
    if status not in (es2.SUCCESS, es2.WARNING, es2.FAILED, es2.EXPIRED):
        raise NotificationError(_("Unknown notificationPointStatus."), code="status")
    codes = document["notificationPointStatus"].get("statusCodeData") or {}
    return Progress(
        iccid=iccid,
        eid=eid,
        point=point,
        success=status in (es2.SUCCESS, es2.WARNING),
        timestamp=timestamp,
        status_code_data=codes if isinstance(codes, dict) else {},
    )


def _dedupe_key(progress: Progress, order: str) -> str:
    """The same event of the same order; a re-ordered profile (new matching
    ID) reporting the same step again is a new event."""
    text = json.dumps(
        [
            order,
            progress.iccid,
            progress.eid,
            progress.point,
            progress.success,
            progress.timestamp.isoformat(),
        ]
    )
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class ProgressOutcome:
    profile: Profile
    event: ProfileEvent | None
    duplicate: bool = False


@own_transactions
def do_record_progress(document: Any, *, now: datetime | None = None) -> ProgressOutcome:
    """Record one progress notification on the profile's history. The same
    event twice is recorded once; an event older than one already applied is
    recorded but does not move the state (so it never goes backwards)."""
    now = now or clock.now()
    progress = parse_progress(document)
    key = ""
    try:
        with transaction.atomic():
            profile = (
                Profile.objects.select_for_update()
                .select_related("line")
                .filter(iccid=progress.iccid)
                .first()
            )
            if profile is None:
                raise NotificationError(
                    _("No eSIM profile with ICCID %(iccid)s."),
                    params={"iccid": progress.iccid},
                    code="unknown_iccid",
                )
            key = _dedupe_key(progress, profile.matching_id)
            existing = ProfileEvent.objects.filter(dedupe_key=key).first()
            if existing is not None:
                return ProgressOutcome(profile, existing, duplicate=True)
            return ProgressOutcome(profile, _apply_progress(profile, progress, key, now))
    except IntegrityError:
        # Two deliveries of one event raced; the other one recorded it.
        profile = Profile.objects.get(iccid=progress.iccid)
        return ProgressOutcome(profile, ProfileEvent.objects.get(dedupe_key=key), duplicate=True)


def _apply_progress(profile: Profile, progress: Progress, key: str, now: datetime) -> ProfileEvent:
    kind = NOTIFICATION_POINTS[progress.point]
    if not progress.success:
        kind = (
            ProfileEventKind.CONFIRMATION_FAILED
            if progress.point == 2
            else ProfileEventKind.FAILED
            if progress.point in (3, 4)
            else kind
        )
    data: dict[str, Any] = {"notification_point": progress.point, "success": progress.success}
    if progress.status_code_data:
        data["status_code_data"] = {k: str(v)[:200] for k, v in progress.status_code_data.items()}
    before = profile.state
    late = (
        profile.last_notification_at is not None
        and progress.timestamp < profile.last_notification_at
    )
    move = _MOVES.get(kind) if progress.success else None
    applied = False
    if late:
        data["ignored"] = "older than the last notification applied"
    elif move is not None and before not in move[0]:
        data["ignored"] = f"not expected while {before}"
    elif move is not None:
        applied = True
        profile.state = move[1]
        if before != profile.state:
            profile.state_changed_at = now
        if progress.eid:
            profile.eid = progress.eid
    if not late:
        profile.last_notification_at = progress.timestamp
    profile.save()
    if applied and kind == ProfileEventKind.INSTALLED:
        mark_esim_installed(profile.line, installed_at=progress.timestamp, eid=progress.eid)
    elif applied and kind == ProfileEventKind.DELETED:
        mark_esim_installed(profile.line, installed_at=None)
    event = ProfileEvent.objects.create(
        profile=profile,
        kind=kind,
        from_state=before,
        to_state=profile.state,
        happened_at=progress.timestamp,
        recorded_at=now,
        eid=progress.eid,
        actor="smdp",
        applied=before != profile.state,
        dedupe_key=key,
        data=data,
    )
    if applied and before != profile.state:
        record(
            "smdp",
            AuditAction(f"esim.{kind}"),
            f"line:{profile.line_id}",
            {"iccid": profile.iccid, "from": before, "to": profile.state},
            now=now,
        )
    return event
