from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from leb.audit.actions import verify_chain
from leb.audit.models import AuditEntry
from leb.lines.actions import (
    LineError,
    do_activate_line,
    do_create_line,
    do_set_line_owner,
    refresh_next_transitions,
    sweep_lines,
)
from leb.lines.models import LineEvent, NumberStatus, PhoneNumber
from leb.testing import make_iccid

pytestmark = pytest.mark.django_db


def test_activation_takes_a_pool_number_with_the_policy_prefix(
    hk_policy: Any, now: datetime
) -> None:
    # given a pool with a UK number (sorts first) and an HK number
    hk_policy.number_prefix = "+852"
    hk_policy.save()
    PhoneNumber.objects.create(msisdn="+447700900123")
    PhoneNumber.objects.create(msisdn="+85294000001")
    line = do_create_line(iccid=make_iccid(777), policy=hk_policy, currency="HKD", now=now)
    # when
    line = do_activate_line(line, now=now)
    # then
    assert line.msisdn == "+85294000001"
    assert PhoneNumber.objects.get(msisdn="+85294000001").status == NumberStatus.ASSIGNED
    assert line.valid_until == now + timedelta(days=hk_policy.first_topup_days)


def test_activation_with_empty_pool_is_refused(hk_policy: Any, now: datetime) -> None:
    line = do_create_line(iccid=make_iccid(778), policy=hk_policy, currency="HKD", now=now)
    with pytest.raises(LineError) as exc:
        do_activate_line(line, now=now)
    assert exc.value.code == "pool_empty"
    line.refresh_from_db()
    assert line.status == "inventory"


def test_activating_twice_is_refused(make_line: Any, now: datetime) -> None:
    line = make_line()
    with pytest.raises(LineError) as exc:
        do_activate_line(line, now=now)
    assert exc.value.code == "already_active"


def test_duplicate_iccid_and_taken_number_are_refused(
    make_line: Any, hk_policy: Any, now: datetime
) -> None:
    line = make_line()
    with pytest.raises(LineError):
        do_create_line(iccid=line.iccid, policy=hk_policy, currency="HKD", now=now)
    with pytest.raises(LineError) as exc:
        do_create_line(
            iccid=make_iccid(779), policy=hk_policy, currency="HKD", msisdn=line.msisdn, now=now
        )
    assert exc.value.code == "number_taken"


def test_staff_activation_is_audited(hk_policy: Any, now: datetime) -> None:
    line = do_create_line(
        iccid=make_iccid(780), policy=hk_policy, currency="HKD", msisdn="+85294000002", now=now
    )
    do_activate_line(line, actor="staff:alice", now=now)
    entry = AuditEntry.objects.get(action="line.activate")
    assert entry.actor == "staff:alice" and entry.target == f"line:{line.pk}"
    assert verify_chain() == []


def test_audit_chain_detects_an_edited_entry(hk_policy: Any, now: datetime) -> None:
    for n in (781, 782):
        line = do_create_line(
            iccid=make_iccid(n), policy=hk_policy, currency="HKD", msisdn=f"+852940{n:05d}", now=now
        )
        do_activate_line(line, actor="staff:alice", now=now)
    first = AuditEntry.objects.order_by("pk").values_list("pk", flat=True)[0]
    AuditEntry.objects.filter(pk=first).update(actor="staff:mallory")
    assert any("does not match its hash" in p for p in verify_chain())


def test_set_owner_writes_history_once(make_line: Any, now: datetime) -> None:
    user = get_user_model().objects.create_user("owner", password="x-long-password-1")
    line = make_line()
    do_set_line_owner(line, user, actor="staff:bob", now=now)
    do_set_line_owner(line, user, actor="staff:bob", now=now)
    line.refresh_from_db()
    assert line.owner == user
    assert LineEvent.objects.filter(line=line, kind="owner_changed").count() == 1
    assert AuditEntry.objects.filter(action="line.owner").count() == 1


def test_shorter_policy_timers_take_effect_in_the_sweep(
    make_line: Any, hk_policy: Any, now: datetime
) -> None:
    # given a line in grace with 30 grace days
    line = make_line()
    at = now + timedelta(days=35)
    sweep_lines(at)
    line.refresh_from_db()
    assert line.status == "grace"
    # when grace is cut to 2 days and transitions are refreshed
    hk_policy.grace_days = 2
    hk_policy.save()
    assert refresh_next_transitions(hk_policy) == 1
    # then the next sweep suspends it without waiting for the old date
    sweep_lines(at)
    line.refresh_from_db()
    assert line.status == "suspended"
