"""A small simulation, in this process on the test database and through the
command on a scratch SQLite file, checked against the real invariants."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from leb.simulation.config import Config
from leb.simulation.engine import run_simulation
from leb.simulation.population import AUTOKEEP, FORGETFUL, GROUPS, REACTIVE, Shares
from leb.simulation.report import render
from leb.simulation.scratch import ScratchError, prepare
from leb.testing import rolled_back

SMALL = {"lines": 60, "years": 1, "seed": 7, "progress": False}


def _figures(report: Any) -> dict[str, Any]:
    """Everything but timings and the database's own ids."""
    data = report.to_json()
    for key in ("wall_seconds", "seed_seconds", "events_per_second"):
        data.pop(key)
    return data


def test_a_small_run_keeps_the_invariants_and_reports_them(db: Any) -> None:
    from leb.ledger.queries import verify_ledger
    from leb.lines.models import Line, LineStatus
    from leb.notifications.models import Notification, Status
    from leb.topups.models import OrderStatus, TopUpOrder

    # given 60 subscribers
    config = Config(**SMALL)  # type: ignore[arg-type]
    # when a year of them is simulated
    report = run_simulation(config)
    # then every group is there and the counts add up
    assert set(report.groups) == set(GROUPS)
    assert sum(group.lines for group in report.groups.values()) == 60
    assert report.steps == 365
    assert Line.objects.filter(policy__code="sim-hk-180").count() == 60
    # and the apps really ran: top-ups, transitions, delivered messages
    assert report.events["topups"] > 0
    assert report.events["transitions"] > 0
    assert TopUpOrder.objects.filter(status=OrderStatus.FULFILLED).count() > 60
    assert Notification.objects.filter(status=Status.SENT).exists()
    assert report.delivered_reminders > 0
    # and the goals hold: no auto-keep line lost, >= 3 reminders before each loss
    assert report.goals, "no goal was checked"
    assert all(goal.met for goal in report.goals), [g for g in report.goals if not g.met]
    assert report.groups[AUTOKEEP].lost == 0
    for group in report.groups.values():
        assert all(count >= 3 for count in group.reminders_before_loss)
        assert len(group.reminders_before_loss) == group.lost
    # and its losses are exactly the terminated simulated lines
    assert (
        sum(group.lost for group in report.groups.values())
        == Line.objects.filter(policy__code="sim-hk-180", status=LineStatus.TERMINATED).count()
    )
    # and the books balance, by the report and by a fresh check
    assert report.ledger_ok
    assert verify_ledger().ok
    assert not report.not_covered
    assert not report.errors

    # when the report is printed
    text = render(report)
    data = json.loads(report.dumps())
    # then it names the groups, the goals and the timing
    for name in (AUTOKEEP, REACTIVE, FORGETFUL):
        assert name in text
        assert set(data["groups"][name]) >= {
            "lines",
            "lost",
            "reminders_min",
            "reminders_median",
            "spend",
            "kept_spend",
            "kept_optimum",
            "spend_ratio",
        }
    assert "0 auto-keep lines lost: met" in text
    assert "every lost line got >= 3 reminders: met" in text
    assert "events/s" in text
    assert data["all_goals_met"] is True
    assert data["ledger_ok"] is True


def test_same_seed_same_run(db: Any) -> None:
    # given a run with a seed, rolled back
    config = Config(lines=10, years=1, seed=11, step_hours=96, progress=False)
    with rolled_back():
        first = _figures(run_simulation(config))
    # when the same seed runs again
    second = _figures(run_simulation(config))
    # then every figure is the same
    assert first == second


def test_every_group_is_drawn_even_in_a_small_population() -> None:
    import random

    from leb.simulation.population import CARD_DECLINES, CARD_EXPIRES, draw_population

    # when 40 subscribers are drawn
    people = draw_population(40, Shares(), random.Random(1))
    # then each group and each card trouble is there
    assert {person.group for person in people} == set(GROUPS)
    cards = {person.card for person in people if person.group == AUTOKEEP}
    assert {CARD_DECLINES, CARD_EXPIRES} <= cards


@pytest.mark.own_database
def test_the_command_runs_on_a_scratch_sqlite_file(tmp_path: Path) -> None:
    # given a scratch file
    url = f"sqlite:///{tmp_path / 'sim.sqlite3'}"
    out = StringIO()
    # when the command runs a short simulation there
    call_command(
        "simulate",
        "--lines",
        "10",
        "--years",
        "1",
        "--seed",
        "5",
        "--step-hours",
        "96",
        "--database-url",
        url,
        "--json",
        "--no-progress",
        stdout=out,
    )
    # then it reports a whole run whose books balance
    data = json.loads(out.getvalue())
    assert data["lines"] == 10
    assert data["ledger_ok"] is True
    assert data["groups"][AUTOKEEP]["lost"] == 0
    assert data["events"]["topups"] > 0
    assert data["all_goals_met"] is True


def test_the_command_refuses_a_database_not_named_for_simulations(tmp_path: Path) -> None:
    # when the database URL names a file that is not a simulation's
    # then nothing is recreated
    precious = tmp_path / "leb.sqlite3"
    precious.write_bytes(b"keep me")
    with pytest.raises(CommandError, match="refusing"):
        call_command("simulate", "--database-url", f"sqlite:///{precious}", stdout=StringIO())
    assert precious.read_bytes() == b"keep me"
    with pytest.raises(ScratchError):
        prepare("postgres://postgres@127.0.0.1:5432/leb")


@pytest.mark.parametrize("bad", ["0", "-3", "x"])
def test_the_command_refuses_bad_numbers(bad: str) -> None:
    with pytest.raises(CommandError):
        call_command("simulate", "--lines", bad, stdout=StringIO())
