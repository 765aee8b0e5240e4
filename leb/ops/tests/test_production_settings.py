"""Production settings, read by fresh processes the way a server reads them:
`leb check --deploy` has nothing to say, and a response carries HSTS, the
secure cookies and the other security headers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.management.utils import get_random_secret_key

from .test_settings import SAFE_PRODUCTION

# Fresh processes on their own SQLite files: the same on either suite database.
pytestmark = pytest.mark.own_database

HOST = "topup.example.com"
PRODUCTION = {
    **SAFE_PRODUCTION,
    # Django's deployment check wants 50 characters, at least 5 of them different.
    "LEB_SECRET_KEY": get_random_secret_key(),
    "LEB_ALLOWED_HOSTS": HOST,
    "LEB_SITE_URL": f"https://{HOST}",
    "LEB_LOG_LEVEL": "ERROR",
}


def run(args: list[str], env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    # A server's environment: none of this process's LEB_* settings, and not the
    # async-unsafe switch the browser tests set in this process.
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("LEB_") and k != "DJANGO_ALLOW_ASYNC_UNSAFE"
    }
    database = f"sqlite:///{tmp_path / 'leb.sqlite3'}"
    return subprocess.run(  # noqa: S603
        args,
        env={**clean, "LEB_VAR_DIR": str(tmp_path), "LEB_DATABASE_URL": database, **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def leb(*args: str) -> list[str]:
    return [sys.executable, "-m", "django", *args, "--settings=leb.settings"]


def test_check_deploy_is_clean_in_production(tmp_path: Path) -> None:
    # when the deployment checks run with production settings
    result = run(leb("check", "--deploy", "--fail-level", "WARNING"), PRODUCTION, tmp_path)

    # then nothing is reported (one check, HSTS preload, is silenced on purpose)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "WARNINGS" not in output and "ERRORS" not in output, output
    assert "no issues (1 silenced)" in output


def test_with_preload_on_nothing_is_silenced(tmp_path: Path) -> None:
    result = run(
        leb("check", "--deploy", "--fail-level", "WARNING"),
        {**PRODUCTION, "LEB_HSTS_PRELOAD": "1"},
        tmp_path,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "no issues (0 silenced)" in output


@pytest.mark.parametrize(
    ("env", "check"),
    [
        ({"LEB_SSL_REDIRECT": "0"}, "security.W008"),
        ({"LEB_HSTS_INCLUDE_SUBDOMAINS": "0"}, "security.W005"),
        ({"LEB_HSTS_SECONDS": "0"}, "security.W004"),
    ],
)
def test_turning_a_protection_off_is_reported(
    tmp_path: Path, env: dict[str, str], check: str
) -> None:
    # the control: the clean run above is clean because the settings are on
    result = run(leb("check", "--deploy"), {**PRODUCTION, **env}, tmp_path)
    assert check in result.stdout + result.stderr


PROBE = """
import json, django
django.setup()
from django.core.management import call_command
from django.test import Client
call_command("migrate", verbosity=0)
client = Client()
host = {"HTTP_HOST": "topup.example.com"}

def seen(response):
    return {
        "status": response.status_code,
        "headers": dict(response.headers.items()),
        "cookies": {
            name: {"secure": bool(m["secure"]), "httponly": bool(m["httponly"]),
                   "samesite": m["samesite"]}
            for name, m in response.cookies.items()
        },
    }

print(json.dumps({
    "plain": seen(client.get("/account/login/", **host)),
    "secure": seen(client.get("/account/login/", secure=True, **host)),
    "proxied": seen(client.get("/account/login/", HTTP_X_FORWARDED_PROTO="https", **host)),
    "language": seen(client.post("/i18n/setlang/", {"language": "zh-hant", "next": "/"},
                                 secure=True, **host)),
    "probe": seen(client.get("/healthz", **host)),
}))
"""


@pytest.fixture(scope="module")
def responses(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp_path = tmp_path_factory.mktemp("production")
    result = run(
        [sys.executable, "-c", PROBE],
        {**PRODUCTION, "DJANGO_SETTINGS_MODULE": "leb.settings"},
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    seen: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return seen


def test_plain_http_is_redirected_to_https(responses: dict[str, Any]) -> None:
    plain = responses["plain"]
    assert plain["status"] == 301
    assert plain["headers"]["Location"] == f"https://{HOST}/account/login/"


def test_the_proxys_header_marks_a_request_as_https(responses: dict[str, Any]) -> None:
    assert responses["proxied"]["status"] == 200
    assert responses["proxied"]["headers"]["Strict-Transport-Security"]


def test_health_probes_answer_plain_http(responses: dict[str, Any]) -> None:
    assert responses["probe"]["status"] == 200


def test_an_https_page_carries_the_security_headers(responses: dict[str, Any]) -> None:
    secure = responses["secure"]
    headers = secure["headers"]
    assert secure["status"] == 200
    assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
    policy = headers["Content-Security-Policy"]
    for directive in ("default-src 'self'", "object-src 'none'", "frame-ancestors 'none'"):
        assert directive in policy
    assert "unsafe-inline" not in policy
    csrf = secure["cookies"]["csrftoken"]
    assert csrf["secure"] and csrf["samesite"] == "Lax"


def test_the_language_cookie_is_secure(responses: dict[str, Any]) -> None:
    language = responses["language"]
    assert language["status"] == 302
    cookie = language["cookies"]["django_language"]
    assert cookie == {"secure": True, "httponly": True, "samesite": "Lax"}


def test_the_session_cookie_is_secure_in_production() -> None:
    # the session cookie appears only after sign-in; its flags are settings
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings as s; "
            "print(s.SESSION_COOKIE_SECURE, s.SESSION_COOKIE_HTTPONLY, s.CSRF_COOKIE_SECURE)",
        ],
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("LEB_")},
            **PRODUCTION,
            "DJANGO_SETTINGS_MODULE": "leb.settings",
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.stdout.split() == ["True", "True", "True"], result.stderr
