from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.db import connection

# Settings read in fresh processes, and SQLite's own: nothing here differs on PostgreSQL.
pytestmark = pytest.mark.own_database


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


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LEB_PRODUCTION": "1"}, "LEB_DEBUG on"),
        ({"LEB_PRODUCTION": "1", "LEB_DEBUG": "0"}, "default LEB_SECRET_KEY"),
        ({"LEB_DEBUG": "0"}, "default LEB_SECRET_KEY"),
        ({"LEB_PRODUCTION": "1", "LEB_DEBUG": "0", "LEB_SECRET_KEY": "short"}, "32 characters"),
    ],
)
def test_production_refuses_unsafe_settings(env: dict[str, str], message: str) -> None:
    result = start(env)
    assert result.returncode != 0
    assert message in result.stderr


SAFE_PRODUCTION = {
    "LEB_PRODUCTION": "1",
    "LEB_DEBUG": "0",
    "LEB_SECRET_KEY": "x" * 50,
    "LEB_VOUCHER_PIN_PEPPER": "p" * 40,
    "LEB_AGENTS_KEY_PEPPER": "k" * 40,
    "LEB_REAL_NAME_PEPPER": "r" * 40,
    "LEB_SMDP_URL": "https://smdp.example.com",
    "LEB_SMDP_NOTIFICATION_SECRET": "n" * 40,
}


def test_production_starts_with_safe_settings() -> None:
    result = start(SAFE_PRODUCTION)
    assert result.returncode == 0, result.stderr


def test_passwords_are_hashed_with_argon2() -> None:
    # read the module itself: some test folders swap in a fast hasher
    import leb.settings as configured

    assert configured.PASSWORD_HASHERS[0].endswith("Argon2PasswordHasher")


@pytest.mark.django_db
def test_sqlite_runs_wal_and_immediate_transactions() -> None:
    if connection.vendor != "sqlite":
        pytest.skip("SQLite-specific settings")
    assert settings.DATABASES["default"]["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA busy_timeout")
        assert cursor.fetchone()[0] >= 1000


def test_production_refuses_to_start_without_the_agent_key_pepper() -> None:
    # given production settings without the pepper agent API secrets derive from
    env = {k: v for k, v in SAFE_PRODUCTION.items() if k != "LEB_AGENTS_KEY_PEPPER"}
    # when / then
    result = start(env)
    assert result.returncode != 0
    assert "LEB_AGENTS_KEY_PEPPER" in result.stderr
