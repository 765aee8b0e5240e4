"""The simulation's report: figures per group, the goals, and both forms
of output (text for people, JSON for machines)."""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

from .population import GROUPS


@dataclass
class GroupReport:
    group: str
    lines: int = 0
    lost: int = 0
    # Delivered reminders before each loss (one per reminder, whatever the
    # number of channels it went out on).
    reminders_before_loss: list[int] = field(default_factory=list)
    topups: int = 0
    late_topups: int = 0
    too_late: int = 0
    card_updates: int = 0
    messages: int = 0
    spend: dict[str, int] = field(default_factory=dict)
    # Lines kept the whole period: what they spent and what the planner's
    # cheapest plan from the start would have cost.
    kept: int = 0
    kept_planned: int = 0
    kept_spend: dict[str, int] = field(default_factory=dict)
    kept_optimum: dict[str, int] = field(default_factory=dict)
    infeasible_plans: int = 0

    @property
    def reminders_min(self) -> int | None:
        return min(self.reminders_before_loss) if self.reminders_before_loss else None

    @property
    def reminders_median(self) -> float | None:
        if not self.reminders_before_loss:
            return None
        return float(statistics.median(self.reminders_before_loss))

    def spend_ratio(self, currency: str) -> float | None:
        optimum = self.kept_optimum.get(currency, 0)
        return self.kept_spend.get(currency, 0) / optimum if optimum else None


@dataclass
class Goal:
    name: str
    met: bool
    detail: str


@dataclass
class Report:
    lines: int
    years: int
    seed: int
    step_hours: float
    database: str
    start: str
    end: str
    groups: dict[str, GroupReport]
    goals: list[Goal] = field(default_factory=list)
    not_covered: list[str] = field(default_factory=list)
    seed_seconds: float = 0.0
    wall_seconds: float = 0.0
    steps: int = 0
    events: dict[str, int] = field(default_factory=dict)
    notifications: dict[str, int] = field(default_factory=dict)
    delivered_reminders: int = 0
    ledger_ok: bool = False
    ledger_summary: str = ""
    ledger_problems: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # Set when the run was interrupted: the figures cover the period up to it.
    interrupted_at: str = ""

    @property
    def event_count(self) -> int:
        return sum(self.events.values())

    @property
    def events_per_second(self) -> float:
        return self.event_count / self.wall_seconds if self.wall_seconds else 0.0

    @property
    def all_goals_met(self) -> bool:
        return all(goal.met for goal in self.goals)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for name, group in self.groups.items():
            data["groups"][name]["reminders_min"] = group.reminders_min
            data["groups"][name]["reminders_median"] = group.reminders_median
            data["groups"][name]["spend_ratio"] = {
                currency: group.spend_ratio(currency) for currency in group.kept_optimum
            }
        data["event_count"] = self.event_count
        data["events_per_second"] = self.events_per_second
        data["all_goals_met"] = self.all_goals_met
        return data

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True)


def _money(amounts: dict[str, int]) -> str:
    if not amounts:
        return "0"
    return ", ".join(
        f"{currency} {minor / 100:,.2f}" for currency, minor in sorted(amounts.items())
    )


def render(report: Report) -> str:
    out = [
        f"leb simulate: {report.lines:,} lines, {report.years} year(s), seed {report.seed}, "
        f"step {report.step_hours:g} h, {report.database}",
        f"simulated period: {report.start} .. {report.end} ({report.steps:,} steps)",
    ]
    if report.interrupted_at:
        out.append(
            f"INTERRUPTED at {report.interrupted_at}: the figures cover the period up to then; "
            "the optimum is for the whole period"
        )
    out += [
        "",
        f"{'group':<10} {'lines':>7} {'lost':>6} {'rem. min':>9} {'rem. med':>9} "
        f"{'top-ups':>8} {'late':>6} {'too late':>9} {'cards':>6} {'msgs':>7}",
    ]
    for name in GROUPS:
        group = report.groups[name]
        minimum = "-" if group.reminders_min is None else str(group.reminders_min)
        median = "-" if group.reminders_median is None else f"{group.reminders_median:g}"
        out.append(
            f"{name:<10} {group.lines:>7,} {group.lost:>6,} {minimum:>9} {median:>9} "
            f"{group.topups:>8,} {group.late_topups:>6,} {group.too_late:>9,} "
            f"{group.card_updates:>6,} {group.messages:>7,}"
        )
    out.append("")
    out.append(
        "spend (all lines) and, for lines kept the whole period, spend vs the planner's optimum:"
    )
    for name in GROUPS:
        group = report.groups[name]
        ratios = ", ".join(
            f"{currency} x{ratio:.3f}"
            for currency in sorted(group.kept_optimum)
            if (ratio := group.spend_ratio(currency)) is not None
        )
        out.append(
            f"  {name:<10} spent {_money(group.spend)}; kept {group.kept:,} "
            f"({group.kept_planned:,} planned): spent {_money(group.kept_spend)} vs optimum "
            f"{_money(group.kept_optimum)} = {ratios or '-'}"
            + (
                f"; {group.infeasible_plans} without a feasible plan"
                if group.infeasible_plans
                else ""
            )
        )
    out.append("")
    if report.notifications:
        out.append(
            "notifications: "
            + ", ".join(f"{key} {value:,}" for key, value in sorted(report.notifications.items()))
        )
    out.append(f"delivered reminders: {report.delivered_reminders:,}")
    out.append("")
    out.append("goals:")
    for goal in report.goals:
        out.append(f"  {goal.name}: {'met' if goal.met else 'MISSED'} ({goal.detail})")
    if report.not_covered:
        out.append("")
        out.append("not covered in this run (the app is not there yet):")
        for item in report.not_covered:
            out.append(f"  - {item}")
    if report.errors:
        out.append("")
        out.append(f"errors ({len(report.errors)}, first ones):")
        for error in report.errors[:10]:
            out.append(f"  - {error}")
    out.append("")
    out.append(f"ledger verify: {'OK' if report.ledger_ok else 'FAILED'}; {report.ledger_summary}")
    for problem in report.ledger_problems[:10]:
        out.append(f"  FAIL {problem}")
    out.append(
        "events: " + ", ".join(f"{key} {value:,}" for key, value in sorted(report.events.items()))
    )
    out.append(
        f"wall time: {report.wall_seconds:,.1f} s (seeding {report.seed_seconds:,.1f} s not "
        f"included); {report.event_count:,} events = {report.events_per_second:,.0f} events/s"
    )
    return "\n".join(out)
