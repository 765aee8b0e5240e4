"""The apps the simulation drives besides lines and top-ups: notifications,
reminders, the planner and auto-keep, each behind a small adapter.

`load()` finds which of them this installation has; a run without one says
in its report what it could not cover, instead of failing.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, fields, is_dataclass
from datetime import date, datetime
from typing import Any

from django.utils.dateparse import parse_datetime

REMINDER_KINDS = ("expiry_reminder", "grace_started", "line_suspended", "number_loss_warning")


def _find(path: str) -> Callable[..., Any] | None:
    module_name, _sep, name = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    found = getattr(module, name, None)
    return found if callable(found) else None


@dataclass
class Dependencies:
    deliver: Callable[..., Any] | None = None
    scan: Callable[..., Any] | None = None
    plan: Callable[..., Any] | None = None
    run: Callable[..., Any] | None = None
    save_method: Callable[..., Any] | None = None
    rule_setter: Callable[..., Any] | None = None

    @property
    def notifications(self) -> bool:
        return self.deliver is not None

    @property
    def reminders(self) -> bool:
        return self.scan is not None

    @property
    def planner(self) -> bool:
        return self.plan is not None

    @property
    def autokeep(self) -> bool:
        return None not in (self.run, self.save_method, self.rule_setter)

    def missing(self) -> list[str]:
        gaps = []
        if not self.notifications:
            gaps.append(
                "notifications (leb.notifications.delivery.deliver_due_notifications): no "
                "message is delivered, so no subscriber reacts to one and reminders before a "
                "loss are not counted"
            )
        if not self.reminders:
            gaps.append(
                "reminders (leb.reminders.actions.scan_reminders): no reminder is queued; "
                "the goal 'every lost line got >= 3 reminders' is not checked"
            )
        if not self.planner:
            gaps.append(
                "planner (leb.planner.queries.keep_plan): spend is not compared with the optimum"
            )
        if not self.autokeep:
            gaps.append(
                "auto-keep (leb.autokeep.actions do_run_autokeep / do_save_sandbox_method / "
                "do_set_rule): auto-keep subscribers have no rule and act as nobody; the goal "
                "'0 auto-keep lines lost' is not checked"
            )
        return gaps

    # --- calls --------------------------------------------------------------------

    def deliver_now(self, now: datetime) -> Any:
        assert self.deliver is not None
        return self.deliver(now)

    def scan_reminders(self, now: datetime) -> Any:
        assert self.scan is not None
        return self.scan(now)

    def keep_plan(self, line: Any, until: date, *, now: datetime) -> Any:
        assert self.plan is not None
        return self.plan(line, until, now=now)

    def run_autokeep(self, now: datetime) -> Any:
        assert self.run is not None
        return self.run(now)

    def save_card(
        self, user: Any, number: str, exp_month: int, exp_year: int, now: datetime
    ) -> Any:
        assert self.save_method is not None
        return self.save_method(user, number, exp_month, exp_year, now=now)

    def set_rule(
        self,
        *,
        line: Any,
        method: Any,
        mode: str,
        plan: Any,
        days_before: int | None,
        until: date | None,
        now: datetime,
    ) -> Any:
        """Create or replace the line's rule (leb.autokeep.actions.do_set_rule):
        "cheapest" follows the planner; "threshold" buys `plan` when at most
        `days_before` days are left; `until` None keeps the number with no
        end date (the planner looks a rolling year ahead)."""
        assert self.rule_setter is not None
        cheapest = mode == "cheapest"
        return self.rule_setter(
            user=line.owner,
            line=line,
            mode=mode,
            method=method,
            plan=None if cheapest else plan,
            days_before=None if cheapest else days_before,
            until=until,
            now=now,
        )


def load() -> Dependencies:
    return Dependencies(
        deliver=_find("leb.notifications.delivery:deliver_due_notifications"),
        scan=_find("leb.reminders.actions:scan_reminders"),
        plan=_find("leb.planner.queries:keep_plan"),
        run=_find("leb.autokeep.actions:do_run_autokeep"),
        save_method=_find("leb.autokeep.actions:do_save_sandbox_method"),
        rule_setter=_find("leb.autokeep.actions:do_set_rule"),
    )


def count_of(result: Any, name: str = "") -> int:
    """The work a job reports having done: its field `name`, or the sum of
    its integer fields."""
    if isinstance(result, int):
        return result
    if name and isinstance(getattr(result, name, None), int):
        return int(getattr(result, name))
    if is_dataclass(result) and not isinstance(result, type):
        return sum(
            value
            for item in fields(result)
            if isinstance(value := getattr(result, item.name), int) and not isinstance(value, bool)
        )
    return 0


def clear_outboxes() -> None:
    """The locmem backends keep every message in memory; the outbox table
    keeps the facts, so the lists are emptied after each delivery run."""
    from django.core import mail

    import leb.sms

    leb.sms.outbox.clear()
    if hasattr(mail, "outbox"):
        mail.outbox.clear()


def context_datetime(context: dict[str, Any], key: str) -> datetime | None:
    value = context.get(key) if isinstance(context, dict) else None
    if not isinstance(value, str):
        return None
    return parse_datetime(value)


def delivered_since(
    watermark: int, after: datetime, until: datetime
) -> tuple[list[tuple[int, str, str, datetime, dict[str, Any]]], int]:
    """Messages sent in (after, until] about a line, oldest first, and the
    new watermark: no row below it can still be sent later."""
    from leb.notifications.models import Notification, Status

    rows: list[tuple[int, str, str, datetime, dict[str, Any]]] = list(
        Notification.objects.filter(  # type: ignore[arg-type]
            pk__gte=watermark,
            status=Status.SENT,
            sent_at__gt=after,
            sent_at__lte=until,
            line_id__isnull=False,
        )
        .order_by("sent_at", "pk")
        .values_list("line_id", "kind", "dedupe_key", "sent_at", "context")
    )
    pending = (
        Notification.objects.filter(pk__gte=watermark, status=Status.PENDING)
        .order_by("pk")
        .values_list("pk", flat=True)
        .first()
    )
    if pending is None:
        last = Notification.objects.order_by("-pk").values_list("pk", flat=True).first()
        pending = (last or 0) + 1
    return rows, pending


def reminders_before(terminated: dict[int, datetime | None]) -> dict[int, int]:
    """For each terminated line: the reminders delivered before it was lost
    (one per reminder, whatever the number of channels it went out on)."""
    from leb.notifications.models import Notification, Status

    seen: dict[int, set[tuple[str, str]]] = {line_id: set() for line_id in terminated}
    ids = list(terminated)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        for line_id, kind, key, sent_at in Notification.objects.filter(
            line_id__in=chunk, status=Status.SENT, kind__in=REMINDER_KINDS
        ).values_list("line_id", "kind", "dedupe_key", "sent_at"):
            lost_at = terminated[line_id]
            if lost_at is None or sent_at is None or sent_at <= lost_at:
                seen[line_id].add((kind, key))
    return {line_id: len(keys) for line_id, keys in seen.items()}


def notification_counts() -> dict[str, int]:
    from django.db.models import Count

    from leb.notifications.models import Notification

    return {
        f"{row['status']}": row["n"]
        for row in Notification.objects.values("status").annotate(n=Count("pk")).order_by()
    }


def delivered_reminder_count() -> int:
    from leb.notifications.models import Notification, Status

    return (
        Notification.objects.filter(status=Status.SENT, kind__in=REMINDER_KINDS)
        .values("line_id", "kind", "dedupe_key")
        .distinct()
        .count()
    )
