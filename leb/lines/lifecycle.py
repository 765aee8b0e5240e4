"""Pure functions of a line's stored dates and its policy. No database access:
every screen and the sweep compute status and timeline from these."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Protocol

from .models import ExtensionRule, LineStatus


class PolicyLike(Protocol):
    first_topup_days: int
    grace_days: int
    suspension_days: int
    quarantine_days: int
    max_validity_days: int | None
    extension_rule: str


class LineLike(Protocol):
    status: str
    valid_until: datetime | None
    terminated_at: datetime | None

    @property
    def policy(self) -> PolicyLike: ...


def grace_from(valid_until: datetime) -> datetime:
    return valid_until


def suspended_from(valid_until: datetime, policy: PolicyLike) -> datetime:
    return valid_until + timedelta(days=policy.grace_days)


def terminated_from(valid_until: datetime, policy: PolicyLike) -> datetime:
    return valid_until + timedelta(days=policy.grace_days + policy.suspension_days)


def number_released_at(terminated_at: datetime, policy: PolicyLike) -> datetime:
    return terminated_at + timedelta(days=policy.quarantine_days)


def status_at(valid_until: datetime, policy: PolicyLike, now: datetime) -> str:
    """Status of an activated line at `now`, from its validity alone."""
    if now < valid_until:
        return LineStatus.ACTIVE
    if now < suspended_from(valid_until, policy):
        return LineStatus.GRACE
    if now < terminated_from(valid_until, policy):
        return LineStatus.SUSPENDED
    return LineStatus.TERMINATED


def effective_status(line: LineLike, now: datetime) -> str:
    """What the line's status is at `now`, whether or not the sweep has run."""
    if line.status in (LineStatus.INVENTORY, LineStatus.TERMINATED) or line.valid_until is None:
        return line.status
    return status_at(line.valid_until, line.policy, now)


def next_transition(
    status: str, valid_until: datetime | None, policy: PolicyLike
) -> datetime | None:
    """When a line in `status` next changes status if nobody tops up."""
    if valid_until is None or status in (LineStatus.INVENTORY, LineStatus.TERMINATED):
        return None
    if status == LineStatus.ACTIVE:
        return valid_until
    if status == LineStatus.GRACE:
        return suspended_from(valid_until, policy)
    return terminated_from(valid_until, policy)


_ORDER: list[str] = [
    LineStatus.ACTIVE,
    LineStatus.GRACE,
    LineStatus.SUSPENDED,
    LineStatus.TERMINATED,
]


def transitions_between(
    stored: str, valid_until: datetime, policy: PolicyLike, now: datetime
) -> list[tuple[str, str, datetime]]:
    """The (from, to, at) steps a line passed through from `stored` to its
    status at `now`: several when the sweep lagged behind."""
    target = status_at(valid_until, policy, now)
    if stored not in _ORDER or _ORDER.index(target) <= _ORDER.index(stored):
        return []
    steps = []
    current = stored
    while current != target:
        at = next_transition(current, valid_until, policy)
        assert at is not None
        following = _ORDER[_ORDER.index(current) + 1]
        steps.append((str(current), str(following), at))
        current = following
    return steps


def days_added(before: datetime | None, after: datetime, now: datetime) -> int:
    """Whole days by which a top-up moves the end of validity past what the
    line already had (or past `now` for a lapsed line). Rounded down, so a
    screen never promises more than the line gets."""
    base = max(before, now) if before is not None else now
    return max(0, (after - base).days)


@dataclass(frozen=True)
class Extension:
    valid_until: datetime
    uncapped_valid_until: datetime
    capped: bool
    days_added: int

    @property
    def days_lost_to_cap(self) -> int:
        return max(0, (self.uncapped_valid_until - self.valid_until).days)


def extend_validity(
    policy: PolicyLike, valid_until: datetime | None, now: datetime, days: int
) -> Extension:
    """The validity a top-up of `days` gives under the policy's rule and cap."""
    if days < 0:
        raise ValueError("days must not be negative")
    current = valid_until or now
    if policy.extension_rule == ExtensionRule.RESET:
        uncapped = max(current, now + timedelta(days=days))
    else:
        uncapped = max(current, now) + timedelta(days=days)
    if policy.max_validity_days is None:
        return Extension(uncapped, uncapped, False, days_added(valid_until, uncapped, now))
    cap = now + timedelta(days=policy.max_validity_days)
    # A cap never takes away validity the line already has.
    capped_value = max(min(uncapped, cap), current)
    return Extension(
        capped_value, uncapped, capped_value < uncapped, days_added(valid_until, capped_value, now)
    )


def last_keep_day(valid_until: datetime, policy: PolicyLike, tz: tzinfo) -> date:
    """The last whole local day on which a top-up still keeps the number.

    The number is lost at `terminated_from`; on that local day a top-up is
    only accepted until that moment, so the last day a subscriber can rely on
    is the day before it (the same day before when loss falls at midnight).
    The calendar, the hotline and the line page all say this date."""
    loss = terminated_from(valid_until, policy).astimezone(tz)
    return loss.date() - timedelta(days=1)


class Urgency:
    """Stable keys for how close a line is to a consequence; screens
    translate them and colour by them."""

    OK = "ok"  # more than the first reminder offset left
    SOON = "soon"  # within the first (largest) reminder offset
    URGENT = "urgent"  # within the last reminder window worth acting in
    GRACE = "grace"  # expired: receive-only
    SUSPENDED = "suspended"  # barred both ways; the number is still kept
    TERMINATED = "terminated"  # the number is gone
    INVENTORY = "inventory"  # not activated yet


@dataclass(frozen=True)
class LineUrgency:
    level: str
    valid_until: datetime | None
    # Whole days left until valid_until (0 on the last day); None when lapsed.
    days_left: int | None
    suspends_at: datetime | None
    number_lost_at: datetime | None

    @property
    def needs_top_up(self) -> bool:
        return self.level in (Urgency.URGENT, Urgency.GRACE, Urgency.SUSPENDED)


def _offsets(policy: object) -> set[int]:
    raw = getattr(policy, "reminder_offsets", None)
    if not isinstance(raw, list | tuple):
        return set()
    return {o for o in raw if isinstance(o, int) and not isinstance(o, bool) and o > 0}


def urgent_window_days(policy: object) -> int:
    """How many days before expiry a line counts as urgent: the second
    largest reminder offset (7 of 30/7/1), so the warning comes with the
    reminder that says "top up now", not only on the very last day."""
    offsets = sorted(_offsets(policy), reverse=True)
    if not offsets:
        return 7
    return offsets[1] if len(offsets) > 1 else offsets[0]


def urgency(line: LineLike, now: datetime) -> LineUrgency:
    """How urgently the line needs a top-up at `now`, from its dates alone."""
    status = effective_status(line, now)
    valid_until = line.valid_until
    if status == LineStatus.INVENTORY or valid_until is None:
        return LineUrgency(Urgency.INVENTORY, None, None, None, None)
    policy = line.policy
    if status == LineStatus.TERMINATED:
        lost = line.terminated_at or terminated_from(valid_until, policy)
        return LineUrgency(Urgency.TERMINATED, valid_until, None, None, lost)
    suspends = suspended_from(valid_until, policy)
    lost = terminated_from(valid_until, policy)
    if status == LineStatus.GRACE:
        return LineUrgency(Urgency.GRACE, valid_until, None, suspends, lost)
    if status == LineStatus.SUSPENDED:
        return LineUrgency(Urgency.SUSPENDED, valid_until, None, None, lost)
    left = valid_until - now
    days_left = left.days
    offsets = _offsets(policy)
    if left <= timedelta(days=urgent_window_days(policy)):
        level = Urgency.URGENT
    elif offsets and left <= timedelta(days=max(offsets)):
        level = Urgency.SOON
    else:
        level = Urgency.OK
    return LineUrgency(level, valid_until, days_left, suspends, lost)


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    status: str
    # Stable keys for what happens; screens translate them.
    event: str
    is_past: bool


def timeline(line: LineLike, now: datetime) -> list[TimelineEntry]:
    """What happens to the line, and when, if nobody tops up."""
    if line.valid_until is None or line.status == LineStatus.INVENTORY:
        return []
    policy = line.policy
    valid_until = line.valid_until
    if line.status == LineStatus.TERMINATED:
        terminated = line.terminated_at or terminated_from(valid_until, policy)
        return [
            TimelineEntry(terminated, LineStatus.TERMINATED, "number_lost", True),
            TimelineEntry(
                number_released_at(terminated, policy),
                LineStatus.TERMINATED,
                "number_released",
                number_released_at(terminated, policy) <= now,
            ),
        ]
    points = [
        (valid_until, LineStatus.GRACE, "grace_from"),
        (suspended_from(valid_until, policy), LineStatus.SUSPENDED, "suspended_from"),
        (terminated_from(valid_until, policy), LineStatus.TERMINATED, "number_lost"),
    ]
    return [TimelineEntry(at, status, event, at <= now) for at, status, event in points]
