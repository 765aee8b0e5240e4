"""Production refuses an eSIM setup that would be unsafe."""

from __future__ import annotations

import pytest

from leb.ops.tests.test_settings import SAFE_PRODUCTION, start


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"LEB_SMDP_SIMULATOR": "1"}, "LEB_SMDP_SIMULATOR"),
        ({"LEB_SMDP_URL": ""}, "LEB_SMDP_URL"),
        ({"LEB_SMDP_NOTIFICATION_SECRET": "short"}, "LEB_SMDP_NOTIFICATION_SECRET"),
        ({"LEB_REAL_NAME_PEPPER": ""}, "LEB_REAL_NAME_PEPPER"),
    ],
)
def test_production_refuses_unsafe_esim_settings(change: dict[str, str], message: str) -> None:
    # given otherwise safe production settings with one eSIM setting unsafe
    env = {**SAFE_PRODUCTION, **change}
    # when the settings load, then they refuse and name the variable
    result = start(env)
    assert result.returncode != 0
    assert message in result.stderr


def test_production_starts_with_the_simulator_off_by_default() -> None:
    assert start(SAFE_PRODUCTION).returncode == 0
