"""Number policies and pool numbers change only through the lines actions.
A change of a policy's timers moves the stored dates that follow from them
(when a line in grace is suspended, when a suspended one is terminated, when
a quarantined number is released) in one UPDATE per date, and says how many
moved; terminated lines keep their dates."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import translation

from leb.audit.actions import verify_chain
from leb.audit.models import AuditEntry
from leb.backoffice.roles import ADMIN
from leb.lines.actions import (
    LineError,
    do_add_phone_number,
    do_create_policy,
    do_update_policy,
    sweep_lines,
)
from leb.lines.models import Line, LineStatus, NumberPolicy, NumberStatus, PhoneNumber

pytestmark = pytest.mark.django_db

ACTOR = "staff:policy"


def fresh(line: Any) -> Any:
    """The line as stored now."""
    return Line.objects.get(pk=line.pk)


DAY = timedelta(days=1)


def policy_fields(**overrides: Any) -> dict[str, Any]:
    return {
        "code": "mo-test",
        "name": "Macau test",
        "first_topup_days": 90,
        "grace_days": 15,
        "suspension_days": 15,
        "quarantine_days": 60,
        "max_validity_days": None,
        "number_prefix": "+853",
        "reminder_offsets": [1, 7, 7, 30],
        **overrides,
    }


@pytest.fixture
def lines_in_every_state(
    make_line: Callable[..., Any], hk_policy: Any, uk_policy: Any, now: datetime
) -> dict[str, Any]:
    """Lines of the HK policy (30 grace, 60 suspension, 90 quarantine days)
    swept at `now`: active, in grace, suspended, terminated (its number in
    quarantine); and a UK line in grace."""
    lines = {
        "active": make_line(at=now - 5 * DAY),
        "grace": make_line(at=now - 40 * DAY),  # valid until now - 10 days
        "suspended": make_line(at=now - 80 * DAY),  # valid until now - 50 days
        "terminated": make_line(at=now - 200 * DAY),  # terminated at now - 80 days
        "other_policy": make_line(policy=uk_policy, at=now - 200 * DAY),  # grace
    }
    sweep_lines(now)
    for line in lines.values():
        line.refresh_from_db()
    assert [line.status for line in lines.values()] == [
        "active",
        "grace",
        "suspended",
        "terminated",
        "grace",
    ]
    return lines


def test_new_timers_move_the_dates_of_lines_still_counting_down(
    lines_in_every_state: dict[str, Any], hk_policy: Any, now: datetime
) -> None:
    lines = lines_in_every_state
    terminated = lines["terminated"]
    number = PhoneNumber.objects.get(pk=terminated.phone_number_id)
    assert number.status == NumberStatus.QUARANTINED
    before = {name: fresh(line) for name, line in lines.items()}

    # when grace, suspension and quarantine are all shortened
    _policy, moved = do_update_policy(
        hk_policy,
        {"grace_days": 10, "suspension_days": 20, "quarantine_days": 30},
        actor=ACTOR,
        now=now,
    )

    # then the line in grace is suspended 10 days after its validity, the
    # suspended one terminated 30 days after it
    after = {name: fresh(line) for name, line in lines.items()}
    assert after["grace"].next_transition_at == after["grace"].valid_until + 10 * DAY
    assert after["suspended"].next_transition_at == after["suspended"].valid_until + 30 * DAY
    # and the quarantined number goes back 30 days after its line ended
    number.refresh_from_db()
    assert terminated.terminated_at is not None
    assert number.quarantined_until == terminated.terminated_at + 30 * DAY
    # and the active line, the terminated one and the other policy's line are untouched
    for name in ("active", "terminated", "other_policy"):
        old, new = before[name], after[name]
        assert (new.status, new.next_transition_at, new.terminated_at, new.valid_until) == (
            old.status,
            old.next_transition_at,
            old.terminated_at,
            old.valid_until,
        ), name
    # and the counts are returned and audited, with the change itself
    assert (moved.lines, moved.numbers) == (2, 1)
    [reschedule] = AuditEntry.objects.filter(action="lines.reschedule")
    assert reschedule.data == {
        "lines": 2,
        "numbers": 1,
        "fields": ["grace_days", "quarantine_days", "suspension_days"],
    }
    [change] = AuditEntry.objects.filter(action="numberpolicy.change")
    assert change.data["before"]["grace_days"] == 30
    assert change.data["after"]["grace_days"] == 10
    assert change.data["rescheduled_lines"] == 2
    assert verify_chain() == []


def test_the_sweep_acts_on_the_moved_dates(
    lines_in_every_state: dict[str, Any], hk_policy: Any, now: datetime
) -> None:
    # given grace cut to 5 days and suspension to 10
    do_update_policy(hk_policy, {"grace_days": 5, "suspension_days": 10}, actor=ACTOR, now=now)
    # when the sweep runs at the same moment
    sweep_lines(now)
    # then the line in grace (expired 10 days ago) is suspended, the
    # suspended one (expired 50 days ago) terminated
    lines = lines_in_every_state
    assert Line.objects.get(pk=lines["grace"].pk).status == LineStatus.SUSPENDED
    assert Line.objects.get(pk=lines["suspended"].pk).status == LineStatus.TERMINATED


def test_a_longer_suspension_moves_only_suspended_lines(
    lines_in_every_state: dict[str, Any], hk_policy: Any, now: datetime
) -> None:
    grace_before = Line.objects.get(pk=lines_in_every_state["grace"].pk).next_transition_at
    _policy, moved = do_update_policy(hk_policy, {"suspension_days": 90}, actor=ACTOR, now=now)
    assert (moved.lines, moved.numbers) == (1, 0)
    suspended = fresh(lines_in_every_state["suspended"])
    assert suspended.next_transition_at == suspended.valid_until + 120 * DAY
    assert Line.objects.get(pk=lines_in_every_state["grace"].pk).next_transition_at == (
        grace_before
    )


def test_rescheduling_is_one_update_per_date_whatever_the_number_of_lines(
    make_line: Callable[..., Any], hk_policy: Any, now: datetime
) -> None:
    # given ten lines in grace and ten suspended
    for _n in range(10):
        make_line(at=now - 40 * DAY)
        make_line(at=now - 80 * DAY)
    sweep_lines(now)
    # when grace and quarantine change
    with CaptureQueriesContext(connection) as queries:
        _policy, moved = do_update_policy(
            hk_policy, {"grace_days": 20, "quarantine_days": 100}, actor=ACTOR, now=now
        )
    # then all twenty moved in one UPDATE of the lines and one of the numbers
    assert moved.lines == 20
    updates = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
    line_updates = [sql for sql in updates if '"lines_line"' in sql.split("SET")[0]]
    number_updates = [sql for sql in updates if '"lines_phonenumber"' in sql.split("SET")[0]]
    assert len(line_updates) == 1
    assert len(number_updates) == 1


def test_timers_that_do_not_change_move_nothing(
    lines_in_every_state: dict[str, Any], hk_policy: Any, now: datetime
) -> None:
    _policy, moved = do_update_policy(
        hk_policy, {"name": "HK renamed", "grace_days": 30}, actor=ACTOR, now=now
    )
    assert (moved.lines, moved.numbers) == (0, 0)
    assert not AuditEntry.objects.filter(action="lines.reschedule").exists()
    assert AuditEntry.objects.get(action="numberpolicy.change").data["fields"] == ["name"]


def test_a_new_policy_is_checked_cleaned_and_audited() -> None:
    policy = do_create_policy(policy_fields(), actor=ACTOR)
    policy.refresh_from_db()
    assert policy.reminder_offsets == [30, 7, 1]
    [entry] = AuditEntry.objects.filter(action="numberpolicy.add")
    assert entry.target == f"numberpolicy:{policy.pk}"


@pytest.mark.parametrize(
    ("overrides", "field", "chinese"),
    [
        ({"reminder_offsets": [30, "seven"]}, "reminder_offsets", "到期前的天数"),
        ({"reminder_offsets": [0]}, "reminder_offsets", "到期前的天数"),
        ({"number_prefix": "853"}, "number_prefix", "+852"),
        ({"max_validity_days": 0}, "max_validity_days", "有效期上限"),
        ({"code": "hk-test"}, "code", ""),
    ],
)
def test_a_bad_policy_is_refused_in_the_staff_language_and_nothing_is_written(
    overrides: dict[str, Any], field: str, chinese: str, hk_policy: Any
) -> None:
    with translation.override("zh-hans"):
        with pytest.raises(LineError) as refused:
            do_create_policy(policy_fields(**overrides), actor=ACTOR)
        message = " ".join(refused.value.message_dict[field])
    assert chinese in message
    assert NumberPolicy.objects.count() == 1
    assert not AuditEntry.objects.exists()


def test_a_refused_change_moves_no_date(
    lines_in_every_state: dict[str, Any], hk_policy: Any, now: datetime
) -> None:
    grace = lines_in_every_state["grace"]
    with pytest.raises(LineError):
        do_update_policy(
            hk_policy, {"grace_days": 1, "reminder_offsets": "soon"}, actor=ACTOR, now=now
        )
    assert Line.objects.get(pk=grace.pk).next_transition_at == grace.next_transition_at
    hk_policy.refresh_from_db()
    assert hk_policy.grace_days == 30
    assert not AuditEntry.objects.exists()


def test_a_number_joins_the_pool_once() -> None:
    number = do_add_phone_number("+852 9123 4567", actor=ACTOR)
    assert (number.msisdn, number.status) == ("+85291234567", NumberStatus.AVAILABLE)
    with pytest.raises(LineError) as refused:
        do_add_phone_number("+85291234567", actor=ACTOR)
    assert "already in the pool" in refused.value.message_dict["msisdn"][0]
    assert PhoneNumber.objects.count() == 1
    [entry] = AuditEntry.objects.filter(action="phonenumber.add")
    assert entry.data == {"msisdn": "+85291234567"}


# --- The back office's pages drive the actions -----------------------------------------


@pytest.fixture
def admin_client(django_user_model: Any) -> Client:
    user = django_user_model.objects.create_user(
        "policy-admin", password="x-unused-9", is_staff=True
    )
    user.groups.add(Group.objects.get(name=ADMIN))
    client = Client()
    client.force_login(user)
    return client


def policy_form(policy: NumberPolicy | None = None, **overrides: Any) -> dict[str, Any]:
    values = (
        policy_fields()
        if policy is None
        else {
            name: getattr(policy, name)
            for name in (
                "code",
                "name",
                "first_topup_days",
                "grace_days",
                "suspension_days",
                "quarantine_days",
                "max_validity_days",
                "number_prefix",
                "reminder_offsets",
            )
        }
    )
    form = {
        **values,
        "max_validity_days": values["max_validity_days"] or "",
        "reminder_offsets": str(values["reminder_offsets"]),
        "extension_rule": "stack",
        "restore_fee": "0",
        "refund_validity_rule": "revoke",
        "forfeit_balance_at_termination": "on",
    }
    if policy is not None:
        form["restore_fee"] = str(policy.restore_fee)
        form["extension_rule"] = policy.extension_rule
        form["refund_validity_rule"] = policy.refund_validity_rule
    return {**form, **overrides}


def test_the_policy_page_adds_through_the_action(admin_client: Client) -> None:
    response = admin_client.post(reverse("admin:lines_numberpolicy_add"), policy_form())
    assert response.status_code == 302
    policy = NumberPolicy.objects.get(code="mo-test")
    assert policy.reminder_offsets == [30, 7, 1]
    assert AuditEntry.objects.get(action="numberpolicy.add").actor == "staff:policy-admin"


def test_the_policy_page_refuses_a_bad_prefix_and_writes_nothing(admin_client: Client) -> None:
    response = admin_client.post(
        reverse("admin:lines_numberpolicy_add"), policy_form(number_prefix="853")
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["number_prefix"] == [
        "Enter a prefix as + and digits, e.g. +852."
    ]
    assert not NumberPolicy.objects.exists()
    assert not AuditEntry.objects.exists()


def test_the_policy_page_reschedules_and_says_how_many(
    admin_client: Client, lines_in_every_state: dict[str, Any], hk_policy: Any, now: datetime
) -> None:
    # when an admin shortens grace on the page
    response = admin_client.post(
        reverse("admin:lines_numberpolicy_change", args=[hk_policy.pk]),
        policy_form(hk_policy, grace_days="10"),
        follow=True,
    )
    # then the page says how many lines moved, and they did
    assert response.status_code == 200
    page = response.content.decode()
    assert "2 lines rescheduled" in page
    grace = fresh(lines_in_every_state["grace"])
    assert grace.next_transition_at == grace.valid_until + 10 * DAY
    assert AuditEntry.objects.get(action="lines.reschedule").data["lines"] == 2


def test_the_number_page_adds_through_the_action_and_refuses_a_duplicate(
    admin_client: Client,
) -> None:
    url = reverse("admin:lines_phonenumber_add")
    assert admin_client.post(url, {"msisdn": "+852 9123 4567"}).status_code == 302
    assert PhoneNumber.objects.get().msisdn == "+85291234567"
    again = admin_client.post(url, {"msisdn": "+85291234567"})
    assert again.status_code == 200
    assert "already in the pool" in str(again.context["adminform"].form.errors["msisdn"])
    assert PhoneNumber.objects.count() == 1
    assert AuditEntry.objects.filter(action="phonenumber.add").count() == 1
