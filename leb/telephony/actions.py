"""Writes of the phone channels: the hotline's per-call state.

Money never moves here: top-ups go through the domain actions (vouchers,
auto-keep, top-ups from balance), each in its own transaction."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings

from leb.common import clock
from leb.common.transactions import one_transaction, own_transactions
from leb.lines.models import Line

from .models import CallSession


def _expiry(now: datetime) -> datetime:
    return now + timedelta(minutes=settings.IVR_SESSION_MINUTES)


@one_transaction
def do_start_call_session(
    *, call_sid: str, caller: str, line: Line | None, now: datetime | None = None
) -> CallSession:
    """A fresh state for the call: any earlier (expired or repeated) state of
    the same CallSid is replaced."""
    now = now or clock.now()
    CallSession.objects.filter(call_sid=call_sid).delete()
    return CallSession.objects.create(
        call_sid=call_sid,
        caller=caller[:32],
        caller_is_line=line is not None,
        line=line,
        step="language",
        created_at=now,
        expires_at=_expiry(now),
    )


@own_transactions
def do_save_call_session(session: CallSession, *, now: datetime | None = None) -> CallSession:
    """Store the call's state after a turn; the call lives on for another
    IVR_SESSION_MINUTES."""
    session.expires_at = _expiry(now or clock.now())
    session.save()
    return session


@own_transactions
def do_end_call_session(call_sid: str) -> int:
    deleted, _by_model = CallSession.objects.filter(call_sid=call_sid).delete()
    return deleted


def purge_expired_call_sessions(now: datetime | None = None, *, batch_size: int = 1000) -> int:
    """Delete expired call states, a batch at a time; returns how many."""
    now = now or clock.now()
    total = 0
    while True:
        ids = list(
            CallSession.objects.filter(expires_at__lte=now).values_list("pk", flat=True)[
                :batch_size
            ]
        )
        if not ids:
            return total
        deleted, _by_model = CallSession.objects.filter(pk__in=ids).delete()
        total += deleted
