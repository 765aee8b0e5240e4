"""The built-in SM-DP+ simulator: a fake ES2+ server inside leb, like the
payment sandbox, so ordering, downloading and installing an eSIM run end to
end without an operator's SM-DP+.

It keeps its own stock (SimulatedProfile), answers downloadOrder,
confirmOrder, cancelOrder and releaseProfile with the status codes a real
SM-DP+ uses, replays its answer to a repeated functionCallIdentifier, and,
when the demo "phone" (`leb esim download|install|delete`) acts, sends
handleDownloadProgressInfo notifications to leb in the background, as a
real SM-DP+ does.

Enabled by LEB_SMDP_SIMULATOR (on in debug, refused in production).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.test import RequestFactory
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from leb.common import clock
from leb.lines.identifiers import normalize_eid, normalize_iccid

from . import es2
from .models import SimulatedCall, SimulatedProfile
from .models import SimulatedProfileState as S

ADDRESS = "smdp.simulator.leb.example"
PROFILE_TYPE = "leb-prepaid"
ORDER_TTL = timedelta(days=30)
REQUESTER = "leb-smdp-simulator"

_ORDERED = {S.ALLOCATED, S.LINKED}
_PENDING = {S.ALLOCATED, S.LINKED, S.CONFIRMED, S.RELEASED}


def enabled() -> bool:
    return bool(getattr(settings, "SMDP_SIMULATOR", False))


class SimError(Exception):
    def __init__(self, subject: str, reason: str, message: str, identifier: str = "") -> None:
        super().__init__(message)
        self.subject, self.reason, self.message, self.identifier = (
            subject,
            reason,
            message,
            identifier,
        )

    def status_code_data(self) -> dict[str, str]:
        data = {"subjectCode": self.subject, "reasonCode": self.reason, "message": self.message}
        if self.identifier:
            data["subjectIdentifier"] = self.identifier
        return data


def _header(status: str = es2.SUCCESS, codes: dict[str, str] | None = None) -> dict[str, Any]:
    execution: dict[str, Any] = {"status": status}
    if codes:
        execution["statusCodeData"] = codes
    return {"functionExecutionStatus": execution}


def _iccid(document: dict[str, Any], *, required: bool = True) -> str:
    raw = str(document.get("iccid") or "")
    if not raw:
        if required:
            raise SimError("8.2.1", "2.2", "Profile ICCID - Mandatory Element Missing")
        return ""
    if len(raw) == 20 and raw[-1] in "Ff":
        raw = raw[:-1]
    try:
        return normalize_iccid(raw)
    except ValidationError as exc:
        raise SimError("8.2.1", "2.1", "Profile ICCID - Invalid") from exc


def _eid(document: dict[str, Any]) -> str:
    raw = str(document.get("eid") or "")
    if not raw:
        return ""
    try:
        return normalize_eid(raw)
    except ValidationError as exc:
        raise SimError("8.1.1", "2.1", "EID - Invalid") from exc


def _stock(iccid: str) -> SimulatedProfile:
    profile = SimulatedProfile.objects.select_for_update().filter(iccid=iccid).first()
    if profile is None:
        # SGP.22 §5.3.1: Profile ICCID - Unknown.
        raise SimError("8.2.1", "3.9", "Profile ICCID - Unknown", iccid)
    return profile


def _expire_if_due(profile: SimulatedProfile, now: datetime) -> None:
    if (
        profile.state in _PENDING
        and profile.order_expires_at is not None
        and profile.order_expires_at <= now
    ):
        raise SimError("8.8.5", "4.10", "Download order - Time to Live Expired", profile.iccid)


def download_order(document: dict[str, Any], now: datetime) -> dict[str, Any]:
    eid = _eid(document)
    iccid = _iccid(document, required=False)
    if iccid:
        profile = _stock(iccid)
    else:
        profile_type = str(document.get("profileType") or "")
        if not profile_type:
            raise SimError("8.2.1", "2.3", "Profile ICCID or Profile Type - Missing")
        found = (
            SimulatedProfile.objects.select_for_update()
            .filter(profile_type=profile_type, state=S.AVAILABLE)
            .order_by("iccid")
            .first()
        )
        if found is None:
            raise SimError("8.2.5", "3.7", "Profile Type - Unavailable", profile_type)
        profile = found
    if profile.state != S.AVAILABLE:
        raise SimError("8.2.1", "3.3", "Profile ICCID - Already in Use", profile.iccid)
    profile.state = S.LINKED if eid else S.ALLOCATED
    profile.eid = eid
    profile.matching_id = ""
    profile.confirmation_code_hash = ""
    profile.order_expires_at = now + ORDER_TTL
    profile.updated_at = now
    profile.save()
    return {"iccid": profile.iccid}


def _code_hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest() if code else ""


def confirm_order(document: dict[str, Any], now: datetime) -> dict[str, Any]:
    iccid = _iccid(document)
    eid = _eid(document)
    if "releaseFlag" not in document or not isinstance(document["releaseFlag"], bool):
        raise SimError("8.2", "2.2", "releaseFlag - Mandatory Element Missing")
    profile = _stock(iccid)
    if profile.state not in _ORDERED:
        raise SimError("8.8.5", "3.9", "Download order - Unknown", iccid)
    _expire_if_due(profile, now)
    if profile.eid and eid and eid != profile.eid:
        raise SimError("8.1.1", "3.10", "EID - Invalid Association", eid)
    matching_id = str(document.get("matchingId") or "")
    if matching_id:
        if len(matching_id) > 64 or not all(ch.isalnum() or ch == "-" for ch in matching_id):
            raise SimError("8.2.6", "2.1", "Matching ID - Invalid")
        if SimulatedProfile.objects.filter(matching_id=matching_id).exclude(pk=profile.pk).exists():
            raise SimError("8.2.6", "3.3", "Matching ID - Already in Use", matching_id)
    else:
        matching_id = "-".join(secrets.token_hex(2).upper() for _ in range(4))
    profile.matching_id = matching_id
    profile.eid = profile.eid or eid
    profile.confirmation_code_hash = _code_hash(str(document.get("confirmationCode") or ""))
    profile.state = S.RELEASED if document["releaseFlag"] else S.CONFIRMED
    profile.updated_at = now
    profile.save()
    answer = {"matchingId": matching_id, "smdpAddress": ADDRESS}
    if profile.eid:
        answer["eid"] = profile.eid
    return answer


def cancel_order(document: dict[str, Any], now: datetime) -> dict[str, Any]:
    iccid = _iccid(document)
    final = document.get("finalProfileStatusIndicator")
    if final not in ("Available", "Unavailable"):
        raise SimError("8.2", "2.1", "finalProfileStatusIndicator - Invalid")
    profile = _stock(iccid)
    # A deleted profile may go back to stock: this simulator allows profile reuse.
    if profile.state not in _PENDING | {S.DELETED}:
        raise SimError("8.2.1", "3.5", "Profile ICCID - Invalid Transition", iccid)
    eid = _eid(document)
    if eid and profile.eid and eid != profile.eid:
        raise SimError("8.1.1", "3.10", "EID - Invalid Association", eid)
    matching_id = str(document.get("matchingId") or "")
    if matching_id and profile.matching_id and matching_id != profile.matching_id:
        raise SimError("8.2.6", "3.10", "Matching ID - Invalid Association", matching_id)
    profile.state = S.AVAILABLE if final == "Available" else S.UNAVAILABLE
    profile.eid = ""
    profile.matching_id = ""
    profile.confirmation_code_hash = ""
    profile.order_expires_at = None
    profile.updated_at = now
    profile.save()
    return {}


def release_profile(document: dict[str, Any], now: datetime) -> dict[str, Any]:
    profile = _stock(_iccid(document))
    if profile.state != S.CONFIRMED:
        raise SimError("8.2.1", "3.5", "Profile ICCID - Invalid Transition", profile.iccid)
    _expire_if_due(profile, now)
    profile.state = S.RELEASED
    profile.updated_at = now
    profile.save()
    return {}


HANDLERS = {
    "downloadOrder": download_order,
    "confirmOrder": confirm_order,
    "cancelOrder": cancel_order,
    "releaseProfile": release_profile,
}


def handle(function: str, document: Any, now: datetime) -> dict[str, Any]:
    """The ES2+ answer (a JSON document) to one request."""
    if not isinstance(document, dict) or not isinstance(document.get("header"), dict):
        return {
            "header": _header(
                es2.FAILED,
                {
                    "subjectCode": "8.2",
                    "reasonCode": "2.2",
                    "message": "header - Mandatory Element Missing",
                },
            )
        }
    header = document["header"]
    call_id = str(header.get("functionCallIdentifier") or "")
    if not call_id or not header.get("functionRequesterIdentifier"):
        return {
            "header": _header(
                es2.FAILED,
                {
                    "subjectCode": "1.2",
                    "reasonCode": "2.2",
                    "message": "Function requester - Missing",
                },
            )
        }
    with transaction.atomic():
        seen = SimulatedCall.objects.filter(function_call_id=call_id).first()
        if seen is not None:
            # The same call again (a retry): the same answer, nothing done twice.
            return dict(seen.response)
        try:
            data = HANDLERS[function](document, now)
            answer = {"header": _header(), **data}
        except SimError as exc:
            transaction.set_rollback(True)
            answer = {"header": _header(es2.FAILED, exc.status_code_data())}
    with transaction.atomic():
        SimulatedCall.objects.get_or_create(
            function_call_id=call_id,
            defaults={"function": function, "response": answer, "created_at": now},
        )
    return answer


@csrf_exempt
@require_POST
def es2_view(request: HttpRequest, function: str) -> HttpResponse:
    if not enabled() or function not in HANDLERS:
        raise Http404
    if not request.headers.get("X-Admin-Protocol", "").startswith("gsma/rsp/v2."):
        return HttpResponse(status=400)
    try:
        document = json.loads(request.body or b"")
    except ValueError:
        document = None
    return JsonResponse(handle(function, document, clock.now()))


def in_process_transport(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    """ES2+ to the simulator without a network: used when LEB_SMDP_URL is empty."""
    function = url.rsplit("/", 1)[-1]
    extra = {k: v for k, v in headers.items() if k.lower() != "content-type"}
    request = RequestFactory().post(
        f"/simulator/smdp{es2.PATH_PREFIX}{function}",
        data=body,
        content_type="application/json",
        headers=extra,
    )
    try:
        response = es2_view(request, function)
    except Http404:
        return 404, b""
    return response.status_code, response.content


def stock(iccids: list[str], now: datetime | None = None) -> int:
    """Put profiles in the simulator's stock (what the profile vendor does at a
    real SM-DP+). Already stocked ones are left as they are."""
    now = now or clock.now()
    known = set(SimulatedProfile.objects.filter(iccid__in=iccids).values_list("iccid", flat=True))
    new = [
        SimulatedProfile(iccid=iccid, profile_type=PROFILE_TYPE, updated_at=now)
        for iccid in dict.fromkeys(iccids)
        if iccid not in known
    ]
    SimulatedProfile.objects.bulk_create(new)
    return len(new)


# --- The phone side (what an LPA does over ES9+), for `leb esim` --------------------


class PhoneError(Exception):
    """What the phone's screen would say."""


@dataclass(frozen=True)
class PhoneResult:
    iccid: str
    state: str
    notification: dict[str, Any]


def parse_code(code: str) -> tuple[str, str]:
    """(SM-DP+ address, matching ID) of an activation code ("LPA:1$addr$id")
    or ("", code) for a bare matching ID."""
    text = code.strip()
    if text.upper().startswith("LPA:"):
        text = text[4:]
    if "$" not in text:
        return "", text
    parts = text.split("$")
    if len(parts) < 3 or parts[0] != "1" or not parts[2]:
        raise PhoneError(_("This is not an eSIM activation code."))
    return parts[1], parts[2]


def _notification(profile: SimulatedProfile, point: int, at: datetime) -> dict[str, Any]:
    body: dict[str, Any] = {
        "header": {
            "functionRequesterIdentifier": REQUESTER,
            "functionCallIdentifier": str(uuid.uuid4()),
        },
        "iccid": profile.iccid,
        "profileType": profile.profile_type,
        "timestamp": at.isoformat().replace("+00:00", "Z"),
        "notificationPointId": point,
        "notificationPointStatus": {"status": es2.SUCCESS},
    }
    if profile.eid:
        body["eid"] = profile.eid
    return body


def _queue(body: dict[str, Any]) -> None:
    from .tasks import deliver_progress

    deliver_progress.enqueue(json.dumps(body, separators=(",", ":")))


def _phone_eid(eid: str) -> str:
    try:
        return normalize_eid(eid)
    except ValidationError as exc:
        raise PhoneError(exc.messages[0]) from exc


def phone_download(
    code: str, *, eid: str, confirmation_code: str = "", now: datetime | None = None
) -> PhoneResult:
    """The phone downloads the profile the activation code points at."""
    now = now or clock.now()
    eid = _phone_eid(eid)
    address, matching_id = parse_code(code)
    if address and address != ADDRESS:
        raise PhoneError(
            _("This activation code is for another SM-DP+ (%(address)s).") % {"address": address}
        )
    with transaction.atomic():
        profile = (
            SimulatedProfile.objects.select_for_update().filter(matching_id=matching_id).first()
            if matching_id
            else None
        )
        if profile is None or profile.state in (S.AVAILABLE, S.UNAVAILABLE):
            raise PhoneError(_("The SM-DP+ refused this activation code (8.2.6 / 3.8)."))
        if profile.state == S.CONFIRMED:
            raise PhoneError(_("This eSIM is not released for download yet (8.2 / 1.2)."))
        if profile.state != S.RELEASED:
            raise PhoneError(_("This eSIM was already downloaded (8.2.1 / 3.3)."))
        if profile.order_expires_at is not None and profile.order_expires_at <= now:
            raise PhoneError(_("This download order has expired (8.8.5 / 4.10)."))
        if profile.eid and profile.eid != eid:
            raise PhoneError(_("This eSIM was ordered for another phone (8.1.1 / 3.8)."))
        if profile.confirmation_code_hash and _code_hash(confirmation_code) != (
            profile.confirmation_code_hash
        ):
            raise PhoneError(_("The confirmation code is wrong (8.2.7 / 3.8)."))
        profile.state = S.DOWNLOADED
        profile.eid = eid
        profile.updated_at = now
        profile.save()
        body = _notification(profile, 3, now)
        _queue(body)
    return PhoneResult(profile.iccid, profile.state, body)


def _on_phone(identifier: str, eid: str) -> SimulatedProfile:
    """The profile by ICCID, matching ID or activation code, on this phone."""
    _address, matching_id = parse_code(identifier)
    query = SimulatedProfile.objects.select_for_update()
    profile = None
    if matching_id.isdigit():
        profile = query.filter(iccid=matching_id).first()
    if profile is None:
        profile = query.filter(matching_id=matching_id).first() if matching_id else None
    if profile is None:
        raise PhoneError(_("There is no such eSIM on the SM-DP+."))
    if eid and profile.eid and profile.eid != eid:
        raise PhoneError(_("This eSIM is not on this phone."))
    return profile


_PHONE_MOVES = {
    "install": ({S.DOWNLOADED}, S.INSTALLED, 4),
    "enable": ({S.INSTALLED}, S.INSTALLED, 101),
    "disable": ({S.INSTALLED}, S.INSTALLED, 102),
    "delete": ({S.DOWNLOADED, S.INSTALLED}, S.DELETED, 5),
}


def phone_act(
    action: str, identifier: str, *, eid: str = "", now: datetime | None = None
) -> PhoneResult:
    """install, enable, disable or delete a downloaded profile on the phone."""
    now = now or clock.now()
    eid = _phone_eid(eid) if eid else ""
    allowed, target, point = _PHONE_MOVES[action]
    with transaction.atomic():
        profile = _on_phone(identifier, eid)
        if profile.state not in allowed:
            raise PhoneError(
                _("The eSIM is %(state)s on the SM-DP+: this step is not possible now.")
                % {"state": profile.get_state_display()}
            )
        profile.state = target
        profile.updated_at = now
        profile.save()
        body = _notification(profile, point, now)
        _queue(body)
    return PhoneResult(profile.iccid, profile.state, body)
