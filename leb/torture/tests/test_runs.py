"""The short versions of `leb torture race` and `leb torture crash`, on the
test database: real processes, real races, real kills. They assert what the
checks found, never how fast it went."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from leb.ops.bench.procs import url_from_settings
from leb.torture.crash import CrashSettings, chaos_schedule, run_crash
from leb.torture.race import Settings, draw_operations
from leb.torture.runs import Report, render, run_race
from leb.torture.world import World

needs_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs PostgreSQL: separate processes racing on row locks",
)


def _world() -> World:
    return World(
        line_ids=list(range(1, 9)),
        msisdns=[f"+8525700000{i}" for i in range(8)],
        autokeep_line_ids=[],
        pins=["1", "2", "3"],
        agent_id=1,
        agent_float=0,
        promotion_budget=0,
        seeded_at="",
    )


def test_a_seed_always_attempts_the_same_operations() -> None:
    settings = Settings(operations=200, seed=5)
    first = draw_operations(settings, _world())
    again = draw_operations(settings, _world())
    other = draw_operations(Settings(operations=200, seed=6), _world())
    assert first == again
    assert first != other
    assert {op.kind for op in first} >= {"web_topup", "api_order", "voucher", "agent"}


def test_a_seed_always_draws_the_same_chaos() -> None:
    assert chaos_schedule(3, 1.5, 50) == chaos_schedule(3, 1.5, 50)
    assert chaos_schedule(3, 1.5, 50) != chaos_schedule(4, 1.5, 50)


def test_the_commands_refuse_sqlite() -> None:
    with pytest.raises(CommandError, match="need PostgreSQL"):
        call_command("torture", "race", "--database-url", "sqlite:////tmp/torture.sqlite3")


@pytest.mark.postgres
@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_race_sixteen_processes(tmp_path: Path) -> None:
    # given the test database, and 16 processes with 200 operations between them
    url = url_from_settings(connection.settings_dict)
    settings = Settings(processes=16, operations=200, seed=11)

    # when they all run at once
    report = run_race(url, settings, var_dir=str(tmp_path))

    # then nothing was lost or credited twice, and every kind was tried
    assert report.ok, report.violations + report.errors[:3]
    assert sum(report.attempts.values()) == 200
    assert report.counts["double credits"] == 0
    assert report.counts["lost payments"] == 0
    assert report.counts["paid orders not fulfilled"] == 0
    assert report.counts["ledger verify problems"] == 0
    assert report.counts["audit verify problems"] == 0
    assert report.counts["payments captured at the provider"] > 0
    # the promotion's budget ran out exactly at its cap
    budget = report.counts["promotion torture-budget: budget"]
    assert report.counts["promotion torture-budget: spent"] == budget
    # and the repeated keys, PINs and external ids were answered as replays
    assert report.outcomes["api order copy|replayed"] > 0
    assert report.outcomes["agent sale copy|replayed"] > 0
    assert report.outcomes["webhook or return page|duplicate"] > 0
    assert report.outcomes["voucher entry|redeemed"] > 0
    assert 0 < report.counts["vouchers redeemed"] <= report.outcomes["voucher|redeemed"]


@pytest.mark.postgres
@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_crash_kills_and_recovers(tmp_path: Path) -> None:
    # given the test database, gunicorn and two job workers
    url = url_from_settings(connection.settings_dict)
    settings = CrashSettings(topups=60, seed=3, clients=3, kill_every=1.5, lines=20)

    # when top-ups run while processes and connections are killed
    report = run_crash(url, settings, var_dir=str(tmp_path))

    # then every paid order was fulfilled once and its receipt delivered
    assert report.ok, report.violations
    assert report.counts["top-ups paid at the gateway (client's view)"] == 60
    assert report.counts["lost payments"] == 0
    assert report.counts["double credits"] == 0
    assert report.counts["receipt messages not delivered"] == 0
    kills = sum(n for name, n in report.counts.items() if name.startswith("kill -9"))
    assert kills > 0
    assert report.counts["pg_terminate_backend calls"] > 0


def test_the_report_lists_the_retries_beside_the_outcomes() -> None:
    # given a race whose runner retried after lock conflicts and 503 answers
    report = Report(title="leb torture race", command="leb torture race")
    report.attempts.update({"web_topup": 2})
    report.outcomes.update(
        {
            "web_topup|paid": 2,
            "retries after a lock conflict": 3,
            "retries after a 503 (database busy)": 1,
        }
    )

    # when it is rendered
    text = render(report)

    # then each count is under its heading, the retries on their own
    operations, retries = text.split("Retries\n")
    assert "web_topup: 2 attempted" in operations
    assert "paid" in operations
    assert "retries after a lock conflict" in retries.split("Checks")[0]
    assert "retries after a 503 (database busy)" in retries.split("Checks")[0]
