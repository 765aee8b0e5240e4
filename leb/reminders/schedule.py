"""When each reminder of a line falls due: pure functions of the policy and
the line's valid_until, built on leb.lines.lifecycle (no database access).

A validity period (one valid_until) has these reminders, in the order they
fall due: `expiry_reminder` at each of the policy's reminder_offsets days
before valid_until, `grace_started` at valid_until, `line_suspended` when
the grace days end, `number_loss_warning` LEB_REMINDERS_LOSS_WARNING_DAYS
days before termination (the number is lost). Each one is "current" from
its due moment until the next one falls due (the last one until
termination); the scan sends only the current one, so a line never gets a
burst of stale reminders after the job was stopped.

A line in inventory has no valid_until and gets nothing: until it is sold
and activated there is nobody to remind and no deadline. Activation sets
valid_until to the first-top-up deadline, which is then reminded like any
other validity period (a 30-day first-top-up window gets its 30-day
reminder right after activation)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from django.conf import settings

from leb.lines import lifecycle

from .models import ReminderKind

# On a tie the later kind wins: a change of status says more than a countdown.
_RANK = {
    ReminderKind.EXPIRY: 0,
    ReminderKind.LOSS: 1,
    ReminderKind.GRACE: 2,
    ReminderKind.SUSPENDED: 3,
}


class PolicyLike(lifecycle.PolicyLike, Protocol):
    reminder_offsets: object


def clean_offsets(raw: object) -> list[int]:
    """Whole positive days, most distant first; anything else is ignored."""
    days: set[int] = set()
    if isinstance(raw, list | tuple):
        for value in raw:
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                days.add(value)
    return sorted(days, reverse=True)


def loss_warning_days() -> list[int]:
    return clean_offsets(list(settings.REMINDERS_LOSS_WARNING_DAYS))


@dataclass(frozen=True)
class Milestone:
    kind: str
    offset_days: int
    # due moment minus valid_until (negative before expiry)
    shift: timedelta
    # when the message stops being useful, minus valid_until
    useful_for: timedelta

    def due(self, valid_until: datetime) -> datetime:
        return valid_until + self.shift

    def deliver_by(self, valid_until: datetime) -> datetime:
        return valid_until + self.useful_for


def _anchors(policy: lifecycle.PolicyLike) -> tuple[timedelta, timedelta]:
    """(suspension, termination) as distances from valid_until, through the
    lifecycle's own functions."""
    origin = datetime(2000, 1, 1)
    return (
        lifecycle.suspended_from(origin, policy) - lifecycle.grace_from(origin),
        lifecycle.terminated_from(origin, policy) - lifecycle.grace_from(origin),
    )


def milestones(policy: PolicyLike) -> tuple[list[Milestone], timedelta]:
    """Every reminder of a validity period in the order they fall due, and the
    end of the last one's window (termination), both relative to valid_until."""
    suspension, termination = _anchors(policy)
    items = [
        Milestone(ReminderKind.EXPIRY, days, -timedelta(days=days), timedelta(0))
        for days in clean_offsets(policy.reminder_offsets)
    ]
    items.append(Milestone(ReminderKind.GRACE, 0, timedelta(0), suspension))
    items.append(Milestone(ReminderKind.SUSPENDED, 0, suspension, termination))
    items += [
        Milestone(ReminderKind.LOSS, days, termination - timedelta(days=days), termination)
        for days in loss_warning_days()
        # a warning before validity even ends would only repeat the expiry reminders
        if termination - timedelta(days=days) > timedelta(0)
    ]
    items.sort(key=lambda m: (m.shift, _RANK[ReminderKind(m.kind)], -m.offset_days))
    return items, termination


@dataclass(frozen=True)
class Window:
    """Lines whose valid_until is in (low, high] have `milestone` as their
    current reminder at `now`: it is due and the next one is not."""

    milestone: Milestone
    low: datetime
    high: datetime
    # milestones before this one that may have fallen due unseen (low bound of their due time)
    earlier: tuple[Milestone, ...]


def windows(policy: PolicyLike, now: datetime, since: datetime | None) -> list[Window]:
    """The valid_until ranges to scan at `now`. With `since` (what the last
    complete scan saw, minus an overlap), only reminders that fell due after
    it: the ranges then span the time since the last scan, not whole windows."""
    items, termination = milestones(policy)
    ends = [m.shift for m in items[1:]] + [termination]
    found = []
    for index, (milestone, next_shift) in enumerate(zip(items, ends, strict=True)):
        high = now - milestone.shift
        low = now - next_shift
        if since is not None:
            low = max(low, since - milestone.shift)
        if low >= high:
            continue
        found.append(Window(milestone, low, high, tuple(items[:index])))
    return found


def signature(policy: PolicyLike) -> tuple[object, ...]:
    """Policies with the same signature have the same windows: one query serves them."""
    items, termination = milestones(policy)
    return (tuple(items), termination)
