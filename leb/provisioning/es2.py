"""A client for the GSMA SGP.22 ES2+ interface (operator → SM-DP+).

JSON over HTTPS, mutual TLS (SGP.22 §2.6.6 and the ES2+ JSON binding, §6.5):
each function is a POST to `{base}/gsma/rsp2/es2plus/<function>` with the
header `X-Admin-Protocol: gsma/rsp/v2.<x>.<y>` and a body whose `header`
names the caller (functionRequesterIdentifier) and the call
(functionCallIdentifier). The answer's `header.functionExecutionStatus`
says Executed-Success, Executed-WithWarning, Failed or Expired and, when not
a plain success, a `statusCodeData` with subjectCode, reasonCode,
subjectIdentifier and message.

A call is sent again after a timeout, a dropped connection or a 5xx answer
with the same functionCallIdentifier, so the SM-DP+ can tell a repeat from a
new order.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests
from django.conf import settings
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

logger = logging.getLogger(__name__)

ADMIN_PROTOCOL = "gsma/rsp/v2.2.0"
PATH_PREFIX = "/gsma/rsp2/es2plus/"
FUNCTIONS = ("downloadOrder", "confirmOrder", "cancelOrder", "releaseProfile")

SUCCESS = "Executed-Success"
WARNING = "Executed-WithWarning"
FAILED = "Failed"
EXPIRED = "Expired"

# (HTTP status, body) for (url, body, headers); raises Unreachable when nothing answered.
Transport = Callable[[str, bytes, dict[str, str]], tuple[int, bytes]]


class Es2Error(Exception):
    """The SM-DP+ refused or could not execute a function."""

    def __init__(
        self,
        message: str | Promise,
        *,
        status: str = FAILED,
        subject_code: str = "",
        reason_code: str = "",
        subject_identifier: str = "",
        server_message: str = "",
        retryable: bool = False,
    ) -> None:
        super().__init__(str(message))
        self.user_message = message
        self.status = status
        self.subject_code = subject_code
        self.reason_code = reason_code
        self.subject_identifier = subject_identifier
        self.server_message = server_message
        self.retryable = retryable

    @property
    def code(self) -> str:
        return f"{self.subject_code}/{self.reason_code}" if self.subject_code else self.status


class Unreachable(Es2Error):
    """Nothing usable came back (timeout, connection refused, TLS failure, 5xx)."""

    def __init__(self, detail: str) -> None:
        super().__init__(
            _("The SM-DP+ did not answer. Nothing was changed; try again in a moment."),
            status="unreachable",
            server_message=detail,
            retryable=True,
        )


# Subject codes (SGP.22 §5.1.6.4, table "Subject Code"): what the error is about.
SUBJECTS: dict[str, Promise] = {
    "8.1": _("the eUICC"),
    "8.1.1": _("the EID"),
    "8.2": _("the profile"),
    "8.2.1": _("the profile ICCID"),
    "8.2.5": _("the profile type"),
    "8.2.6": _("the matching ID"),
    "8.2.7": _("the confirmation code"),
    "8.8": _("the SM-DP+"),
    "8.8.5": _("the download order"),
    "8.9": _("the SM-DS"),
    "1.2": _("the function requester"),
}

# Reason codes (SGP.22 §5.1.6.4, table "Reason Code"): what went wrong with it.
REASONS: dict[str, Promise] = {
    "1.1": _("the caller is not known"),
    "1.2": _("it is not allowed"),
    "2.1": _("it is invalid"),
    "2.2": _("it is missing"),
    "2.3": _("a conditional element is missing"),
    "3.3": _("it is already in use"),
    "3.5": _("the change of state is not allowed"),
    "3.7": _("it is unavailable"),
    "3.8": _("it was refused"),
    "3.9": _("it is unknown"),
    "3.10": _("it does not belong to this order"),
    "4.2": _("the SM-DP+ could not execute the function"),
    "4.10": _("its time to live has expired"),
    "5.1": _("it could not be reached"),
    "6.1": _("its verification failed"),
    "6.3": _("it has expired"),
    "6.4": _("too many retries"),
}

# The common (subject, reason) pairs of the ES2+ functions (SGP.22 §5.3.1 to
# §5.3.4 "Specific status codes"), in words for staff. Any other pair is
# described from the two tables above.
KNOWN_ERRORS: dict[tuple[str, str], Promise] = {
    ("8.1.1", "2.1"): _("The EID is not valid."),
    ("8.1.1", "3.8"): _("The SM-DP+ refused this EID."),
    ("8.1.1", "3.10"): _("This EID is not the one the order was placed for."),
    ("8.2.1", "2.1"): _("The profile ICCID is not valid."),
    ("8.2.1", "3.3"): _("This profile is already in use (ordered or downloaded)."),
    ("8.2.1", "3.7"): _("This profile is not available at the SM-DP+."),
    ("8.2.1", "3.8"): _("The SM-DP+ does not know this profile ICCID."),
    ("8.2.1", "3.9"): _("The SM-DP+ does not know this profile ICCID."),
    ("8.2.1", "1.2"): _("This profile may not be ordered by leb."),
    ("8.2.1", "3.5"): _("The profile is not in a state that allows this."),
    ("8.2.5", "3.9"): _("The SM-DP+ does not know this profile type."),
    ("8.2.5", "3.7"): _("No profile of this type is available."),
    ("8.2.6", "2.1"): _("The matching ID is not valid."),
    ("8.2.6", "3.3"): _("This matching ID is already in use."),
    ("8.2.6", "3.8"): _("The SM-DP+ refused the matching ID."),
    ("8.2.6", "3.10"): _("This matching ID does not belong to the order."),
    ("8.2.7", "2.2"): _("A confirmation code is required."),
    ("8.2.7", "3.8"): _("The confirmation code was refused."),
    ("8.8.5", "3.9"): _("There is no download order for this profile."),
    ("8.8.5", "4.10"): _("The download order has expired."),
    ("8.9", "5.1"): _("The SM-DS could not be reached."),
    ("1.2", "1.2"): _("The SM-DP+ does not allow leb to call this function."),
}


def describe(subject_code: str, reason_code: str) -> str | Promise:
    known = KNOWN_ERRORS.get((subject_code, reason_code))
    if known is not None:
        return known
    subject = SUBJECTS.get(subject_code)
    reason = REASONS.get(reason_code)
    if subject is not None and reason is not None:
        return _("The SM-DP+ refused the request: %(subject)s: %(reason)s.") % {
            "subject": subject,
            "reason": reason,
        }
    return _("The SM-DP+ refused the request (subject %(subject)s, reason %(reason)s).") % {
        "subject": subject_code or "?",
        "reason": reason_code or "?",
    }


@dataclass
class Es2Result:
    status: str
    data: dict[str, Any] = field(default_factory=dict)
    status_code_data: dict[str, Any] = field(default_factory=dict)


def parse_response(function: str, http_status: int, body: bytes) -> Es2Result:
    """The result of one answer, or Es2Error for a refusal or a bad answer."""
    if http_status >= 500:
        raise Unreachable(f"HTTP {http_status}")
    if http_status == 204:
        return Es2Result(SUCCESS)
    try:
        document = json.loads(body or b"{}")
        header = document["header"]
        execution = header["functionExecutionStatus"]
        status = str(execution["status"])
    except (ValueError, KeyError, TypeError) as exc:
        if http_status in (401, 403):
            raise Es2Error(
                _("The SM-DP+ refused leb's credentials (check the client certificate)."),
                status="forbidden",
                server_message=f"HTTP {http_status}",
            ) from exc
        raise Es2Error(
            _("The SM-DP+ sent an answer leb cannot read."),
            status="protocol",
            server_message=f"HTTP {http_status}: {body[:200]!r}",
        ) from exc
    codes = execution.get("statusCodeData") or {}
    if not isinstance(codes, dict):
        codes = {}
    data = {key: value for key, value in document.items() if key != "header"}
    if status in (SUCCESS, WARNING):
        if status == WARNING:
            logger.warning("ES2+ %s executed with a warning: %s", function, codes)
        return Es2Result(status, data, codes)
    subject = str(codes.get("subjectCode", ""))
    reason = str(codes.get("reasonCode", ""))
    if status == EXPIRED:
        message: str | Promise = _(
            "The SM-DP+ did not finish the request in time. Nothing was changed; try again."
        )
    elif status == FAILED:
        message = describe(subject, reason)
    else:
        raise Es2Error(
            _("The SM-DP+ sent an answer leb cannot read."),
            status="protocol",
            server_message=f"unknown status {status!r}",
        )
    raise Es2Error(
        message,
        status=status,
        subject_code=subject,
        reason_code=reason,
        subject_identifier=str(codes.get("subjectIdentifier", "")),
        server_message=str(codes.get("message", ""))[:500],
    )


def requests_transport() -> Transport:
    """HTTPS with leb's client certificate (mutual TLS) and the configured CAs."""
    session = requests.Session()
    cert, key = settings.SMDP_CLIENT_CERT, settings.SMDP_CLIENT_KEY
    if cert:
        session.cert = (cert, key) if key else cert
    if settings.SMDP_CA_BUNDLE:
        session.verify = settings.SMDP_CA_BUNDLE
    timeout = (settings.SMDP_CONNECT_TIMEOUT, settings.SMDP_READ_TIMEOUT)

    def send(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        try:
            response = session.post(url, data=body, headers=headers, timeout=timeout)
        except requests.RequestException as exc:
            # The exception names the host and the failure, never a secret.
            raise Unreachable(type(exc).__name__) from exc
        return response.status_code, response.content

    return send


class Es2Client:
    def __init__(
        self,
        base_url: str,
        *,
        requester_id: str,
        transport: Transport,
        retries: int = 2,
        backoff: float = 0.5,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.requester_id = requester_id
        self.transport = transport
        self.retries = max(0, retries)
        self.backoff = backoff

    def call(self, function: str, payload: dict[str, Any], function_call_id: str) -> Es2Result:
        """Send one function; resend on Unreachable with the same identifier."""
        if function not in FUNCTIONS:
            raise ValueError(f"not an ES2+ function leb calls: {function}")
        body = json.dumps(
            {
                "header": {
                    "functionRequesterIdentifier": self.requester_id,
                    "functionCallIdentifier": function_call_id,
                },
                **{key: value for key, value in payload.items() if value not in (None, "")},
            },
            separators=(",", ":"),
        ).encode()
        headers = {
            "Content-Type": "application/json;charset=UTF-8",
            "Accept": "application/json",
            "X-Admin-Protocol": ADMIN_PROTOCOL,
        }
        url = f"{self.base_url}{PATH_PREFIX}{function}"
        attempt = 0
        while True:
            attempt += 1
            try:
                status, raw = self.transport(url, body, headers)
                return parse_response(function, status, raw)
            except Unreachable as exc:
                if attempt > self.retries:
                    logger.warning(
                        "ES2+ %s %s: no answer after %d attempts (%s)",
                        function,
                        function_call_id,
                        attempt,
                        exc.server_message,
                    )
                    raise
                time.sleep(self.backoff * attempt)

    def download_order(
        self, function_call_id: str, *, iccid: str = "", eid: str = "", profile_type: str = ""
    ) -> Es2Result:
        """SGP.22 §5.3.1: reserve a profile (by ICCID or type), optionally for one EID."""
        return self.call(
            "downloadOrder",
            {"iccid": iccid, "eid": eid, "profileType": profile_type},
            function_call_id,
        )

    def confirm_order(
        self,
        function_call_id: str,
        *,
        iccid: str,
        release_flag: bool,
        eid: str = "",
        matching_id: str = "",
        confirmation_code: str = "",
        smds_address: str = "",
    ) -> Es2Result:
        """SGP.22 §5.3.2: confirm a reserved profile; returns matchingId and smdpAddress."""
        return self.call(
            "confirmOrder",
            {
                "iccid": iccid,
                "eid": eid,
                "matchingId": matching_id,
                "confirmationCode": confirmation_code,
                "smdsAddress": smds_address,
                "releaseFlag": release_flag,
            },
            function_call_id,
        )

    def cancel_order(
        self,
        function_call_id: str,
        *,
        iccid: str,
        final_status: str = "Available",
        eid: str = "",
        matching_id: str = "",
    ) -> Es2Result:
        """SGP.22 §5.3.3: void an order; the profile becomes Available or Unavailable."""
        return self.call(
            "cancelOrder",
            {
                "iccid": iccid,
                "eid": eid,
                "matchingId": matching_id,
                "finalProfileStatusIndicator": final_status,
            },
            function_call_id,
        )

    def release_profile(self, function_call_id: str, *, iccid: str) -> Es2Result:
        """SGP.22 §5.3.4: release a profile confirmed with releaseFlag false."""
        return self.call("releaseProfile", {"iccid": iccid}, function_call_id)


class NotConfigured(Es2Error):
    def __init__(self) -> None:
        super().__init__(_("No SM-DP+ is configured (set LEB_SMDP_URL)."), status="not_configured")


_override: Es2Client | None = None


def set_client(client: Es2Client | None) -> None:
    """Use another client (tests, the demo loader); None restores the default."""
    global _override
    _override = client


def default_client() -> Es2Client:
    if _override is not None:
        return _override
    if settings.SMDP_URL:
        return Es2Client(
            settings.SMDP_URL,
            requester_id=settings.SMDP_REQUESTER_ID,
            transport=requests_transport(),
            retries=settings.SMDP_RETRIES,
        )
    if settings.SMDP_SIMULATOR:
        from .simulator import in_process_transport

        return Es2Client(
            "http://simulator.invalid",
            requester_id=settings.SMDP_REQUESTER_ID,
            transport=in_process_transport,
            retries=settings.SMDP_RETRIES,
        )
    raise NotConfigured()
