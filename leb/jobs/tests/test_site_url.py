"""The site address: follows `leb serve --bind` in development, is checked
against the served hosts at start, and a request under another host is
warned about once."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from typing import Any

import pytest
from django.test import Client

from leb.jobs.checks import check_site_url, site_url_problems
from leb.portal import middleware
from leb.settings import site_url_for_bind


@pytest.mark.parametrize(
    ("bind", "url"),
    [
        ("127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("0.0.0.0:9000", "http://127.0.0.1:9000"),
        ("[::]:9000", "http://127.0.0.1:9000"),
        ("leb.lan:8080", "http://leb.lan:8080"),
        ("unix:/run/leb.sock", "http://127.0.0.1:8000"),
    ],
)
def test_site_url_follows_the_bind_address(bind: str, url: str) -> None:
    # given / when / then
    assert site_url_for_bind(bind) == url


def settings_in_child(**environ: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEB_")}
    env.update(environ, DJANGO_SETTINGS_MODULE="leb.settings")
    code = "from django.conf import settings; print(settings.SITE_URL)"
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-c", code], env=env, capture_output=True, check=True, timeout=60
    )
    return done.stdout.decode().strip()


def test_unset_site_url_follows_leb_bind_in_a_fresh_process() -> None:
    # given `leb serve --bind 0.0.0.0:9000` (which exports LEB_BIND to its children)
    # when / then the children's site address is that port on this machine
    assert settings_in_child(LEB_BIND="0.0.0.0:9000") == "http://127.0.0.1:9000"


def test_a_set_site_url_wins_over_the_bind_address() -> None:
    # given / when / then
    url = settings_in_child(LEB_BIND="0.0.0.0:9000", LEB_SITE_URL="https://leb.example/")
    assert url == "https://leb.example"


def ids(problems: list[Any]) -> list[str]:
    return [problem.id for problem in problems]


def test_a_consistent_production_address_passes() -> None:
    # given / when
    problems = site_url_problems(
        site_url="https://leb.example",
        site_url_set=True,
        bind="0.0.0.0:8000",
        allowed_hosts=["leb.example"],
        production=True,
    )

    # then
    assert problems == []


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"allowed_hosts": ["other.example"]}, ["jobs.W011"]),
        ({"allowed_hosts": [".leb.example"], "site_url": "https://pay.leb.example"}, []),
        ({"bind": "10.0.0.5:8000"}, ["jobs.W012"]),
        ({"bind": "127.0.0.1:8000"}, []),
        ({"site_url": "http://leb.example"}, ["jobs.W013"]),
        ({"site_url_set": False}, ["jobs.W010"]),
        ({"site_url": "leb.example"}, ["jobs.E010"]),
    ],
)
def test_each_mismatch_is_reported(kwargs: dict[str, Any], expected: list[str]) -> None:
    # given a production address with one thing wrong
    arguments: dict[str, Any] = {
        "site_url": "https://leb.example",
        "site_url_set": True,
        "bind": "0.0.0.0:8000",
        "allowed_hosts": ["leb.example"],
        "production": True,
        **kwargs,
    }

    # when / then
    assert ids(site_url_problems(**arguments)) == expected


def test_the_system_check_reads_the_settings(settings: Any) -> None:
    # given a production process whose allowed hosts miss the site's host
    settings.DEBUG = False
    settings.PRODUCTION = True
    settings.SITE_URL = "https://leb.example"
    settings.SITE_URL_FROM_ENV = True
    settings.BIND = "0.0.0.0:8000"
    settings.ALLOWED_HOSTS = ["www.leb.example"]

    # when / then
    assert ids(check_site_url()) == ["jobs.W011"]


def test_the_system_check_is_quiet_in_debug(settings: Any) -> None:
    # given development, where the address follows the bind
    settings.DEBUG = True
    settings.PRODUCTION = False
    settings.ALLOWED_HOSTS = ["nothing.example"]

    # when / then
    assert check_site_url() == []


@pytest.fixture
def fresh_warning(monkeypatch: pytest.MonkeyPatch) -> middleware.HostMismatchWarning:
    warning = middleware.HostMismatchWarning()
    monkeypatch.setattr(middleware, "host_mismatch", warning)
    return warning


@pytest.mark.django_db
def test_a_request_under_another_host_is_warned_about_once(
    settings: Any, fresh_warning: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # given the site lives at http://127.0.0.1:9000
    settings.SITE_URL = "http://127.0.0.1:9000"
    settings.ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

    # when requests arrive for the right host, then twice for another
    with caplog.at_level(logging.WARNING, logger="leb.site_url"):
        Client(HTTP_HOST="127.0.0.1:9000").get("/help/")
        assert not caplog.records
        Client(HTTP_HOST="localhost:9000").get("/help/")
        Client(HTTP_HOST="localhost:9000").get("/help/")

    # then one loud warning names both addresses
    records = [r for r in caplog.records if r.name == "leb.site_url"]
    assert len(records) == 1
    message = records[0].getMessage()
    assert "SITE URL MISMATCH" in message
    assert "localhost:9000" in message and "http://127.0.0.1:9000" in message


@pytest.mark.django_db
def test_default_ports_are_the_same_host(
    settings: Any, fresh_warning: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # given an https site without a port
    settings.SITE_URL = "https://leb.example"
    settings.ALLOWED_HOSTS = ["leb.example"]

    # when a request comes in on 443
    with caplog.at_level(logging.WARNING, logger="leb.site_url"):
        Client(HTTP_HOST="leb.example:443").get("/help/", secure=True)

    # then nothing is wrong
    assert not [r for r in caplog.records if r.name == "leb.site_url"]


@pytest.mark.django_db
def test_csp_lets_forms_lead_to_the_site_address(settings: Any) -> None:
    # given a page served under another host than the site address
    settings.SITE_URL = "http://127.0.0.1:9000"
    settings.ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

    # when it is requested, and when the site's own host is
    other = Client(HTTP_HOST="localhost:9000").get("/help/")["Content-Security-Policy"]
    same = Client(HTTP_HOST="127.0.0.1:9000").get("/help/")["Content-Security-Policy"]

    # then a payment form may be redirected back to the site address
    assert "form-action 'self' http://127.0.0.1:9000" in other
    assert "form-action 'self';" in same or same.endswith("form-action 'self'")
