"""Callbacks: leb tells the agent's server the final status of a top-up.

On completed, failed, expired and reversed, a JSON document (the top-up as
`GET /agent/v1/topups/{id}` returns it, plus `event` and `occurred_at`) is
queued in the notification outbox, in the transaction that changed the
status, and POSTed to the agent's `callback_url` later: at least once, retried
with back-off, once per (top-up, status), https and public addresses only
(the webhook rules, checked at send time). It is signed like leb's webhooks,
`Leb-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`, with
the agent's callback secret. That secret is never stored: it is derived from
the key pepper and the agent's code, so the operator can give it to the agent
with its API key and the server can recompute it at every send.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils import translation

from leb.notifications.actions import queue_document_webhook
from leb.notifications.channels import register_document_webhook
from leb.notifications.models import Notification

from . import signing
from .models import Agent, AgentTopUp, AgentTopUpStatus

KIND = "agent_topup_callback"
SECRET_PREFIX = "lcs_"  # noqa: S105 - a prefix, not a secret
FINAL = (
    AgentTopUpStatus.COMPLETED,
    AgentTopUpStatus.FAILED,
    AgentTopUpStatus.EXPIRED,
    AgentTopUpStatus.REVERSED,
)


def callback_secret(agent_code: str) -> str:
    """`"lcs_" + base64url(HMAC-SHA256(pepper, "callback:" + code))`, unpadded."""
    digest = hmac.new(signing._pepper(), f"callback:{agent_code}".encode(), hashlib.sha256).digest()
    return SECRET_PREFIX + base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _recipient(agent: Agent) -> str:
    return f"agent:{agent.code}"


def _secret_for(row: Notification) -> str:
    return callback_secret(row.recipient.removeprefix("agent:"))


def callback_document(topup: AgentTopUp, now: datetime) -> dict[str, Any]:
    from .schemas import topup_out  # schemas imports actions, which imports this module

    # The operator's language: there is no request to take one from.
    with translation.override(settings.LANGUAGE_CODE):
        document: dict[str, Any] = topup_out(topup).model_dump(mode="json")
    document["event"] = f"agent_topup.{topup.status}"
    document["occurred_at"] = now.isoformat()
    document["finished_at"] = topup.finished_at.isoformat() if topup.finished_at else None
    return document


def queue_callback(topup: AgentTopUp, now: datetime) -> Notification | None:
    """Queue the callback for the top-up's (final) status; call inside the
    transaction that set it. Nothing without a callback URL."""
    agent = topup.agent
    url = (agent.callback_url or "").strip()
    if not url or topup.status not in FINAL:
        return None
    return queue_document_webhook(
        recipient=_recipient(agent),
        url=url,
        kind=KIND,
        document=callback_document(topup, now),
        dedupe_key=f"agent-topup:{topup.public_id}:{topup.status}",
        now=now,
    )


register_document_webhook(KIND, _secret_for)
