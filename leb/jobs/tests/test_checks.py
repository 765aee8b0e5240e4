from __future__ import annotations

from pytest_django.fixtures import Settings

from leb.jobs.checks import check_schedule


def test_the_code_schedule_passes_its_checks() -> None:
    # given / when
    errors = check_schedule()

    # then
    assert errors == []


def test_a_zero_interval_is_reported(settings: Settings) -> None:
    # given
    settings.SWEEP_INTERVAL = 0

    # when
    errors = check_schedule()

    # then
    assert [error.id for error in errors] == ["jobs.E002"]
