"""The endpoint the SM-DP+ calls: ES2+ handleDownloadProgressInfo
(SGP.22 §5.3.5), answered 204 No Content as the JSON binding requires.

It is authenticated by a shared secret header; in production the TLS proxy
in front of leb also requires the SM-DP+'s client certificate on this path
(docs/esim.md).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from . import es2
from .actions import NotificationError, do_record_progress

logger = logging.getLogger(__name__)

SECRET_HEADER = "X-Leb-Notification-Secret"  # noqa: S105 (a header name)


def notification_secret() -> str:
    configured = str(getattr(settings, "SMDP_NOTIFICATION_SECRET", "") or "")
    if configured:
        return configured
    if getattr(settings, "SMDP_SIMULATOR", False):
        # Derived, so the simulator and leb agree without configuration (local use only).
        return hmac.new(
            settings.SECRET_KEY.encode(), b"leb.provisioning.notifications", hashlib.sha256
        ).hexdigest()
    return ""


def _refusal(status: int, subject: str, reason: str, message: str) -> JsonResponse:
    return JsonResponse(
        {
            "header": {
                "functionExecutionStatus": {
                    "status": es2.FAILED,
                    "statusCodeData": {
                        "subjectCode": subject,
                        "reasonCode": reason,
                        "message": message,
                    },
                }
            }
        },
        status=status,
    )


@csrf_exempt
@require_POST
def progress_view(request: HttpRequest) -> HttpResponse:
    expected = notification_secret()
    given = request.headers.get(SECRET_HEADER, "")
    if not expected or not hmac.compare_digest(expected.encode(), given.encode()):
        logger.warning("eSIM progress notification with a wrong or missing secret")
        return _refusal(401, "1.2", "1.1", _("The notification secret is missing or wrong."))
    try:
        document = json.loads(request.body or b"")
    except ValueError:
        return _refusal(400, "8.2", "2.1", _("The notification is not valid JSON."))
    try:
        do_record_progress(document)
    except NotificationError as exc:
        if exc.code == "unknown_iccid":
            return _refusal(404, "8.2.1", "3.9", exc.messages[0])
        return _refusal(400, "8.2", "2.1", exc.messages[0])
    return HttpResponse(status=204)
