from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.test import override_settings

from leb.vouchers import pins

SAFE = {
    "LEB_PRODUCTION": "1",
    "LEB_DEBUG": "0",
    "LEB_SECRET_KEY": "x" * 50,
    "LEB_AGENTS_KEY_PEPPER": "k" * 40,
    "LEB_REAL_NAME_PEPPER": "r" * 40,
    "LEB_SMDP_URL": "https://smdp.example.com",
    "LEB_SMDP_NOTIFICATION_SECRET": "n" * 40,
}


def start(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Import the settings in a fresh interpreter, as a server process would."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LEB_")}
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='leb.settings'; django.setup()",
        ],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize("pepper", ["", "short"])
def test_production_refuses_to_start_without_a_pin_pepper(pepper: str) -> None:
    # when
    result = start({**SAFE, "LEB_VOUCHER_PIN_PEPPER": pepper})

    # then
    assert result.returncode != 0
    assert "LEB_VOUCHER_PIN_PEPPER" in result.stderr


def test_production_starts_with_a_pin_pepper() -> None:
    # when
    result = start({**SAFE, "LEB_VOUCHER_PIN_PEPPER": "p" * 40})

    # then
    assert result.returncode == 0, result.stderr


def test_the_pepper_keys_the_pin_hash() -> None:
    # given
    pin = "1234567890123452"

    # when
    with override_settings(VOUCHER_PIN_PEPPER="a" * 40):
        first = pins.hash_pin(pin)
    with override_settings(VOUCHER_PIN_PEPPER="b" * 40):
        second = pins.hash_pin(pin)
    with override_settings(VOUCHER_PIN_PEPPER=""):
        derived = pins.hash_pin(pin)

    # then
    assert len({first, second, derived}) == 3
    assert pin not in first
