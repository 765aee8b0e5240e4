"""Pure functions of a line's stored dates and its policy. No database access:
every screen and the sweep compute status and timeline from these."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
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


@dataclass(frozen=True)
class Extension:
    valid_until: datetime
    uncapped_valid_until: datetime
    capped: bool

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
        return Extension(uncapped, uncapped, False)
    cap = now + timedelta(days=policy.max_validity_days)
    # A cap never takes away validity the line already has.
    capped_value = max(min(uncapped, cap), current)
    return Extension(capped_value, uncapped, capped_value < uncapped)


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
