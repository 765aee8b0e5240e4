from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import CheckMessage, Error, register
from django.core.checks import Warning as CheckWarning
from django.http.request import validate_host
from django.utils.module_loading import import_string
from django_tasks.base import Task

from .schedule import scheduled_jobs


@register()
def check_schedule(**kwargs: Any) -> list[CheckMessage]:
    """Catch a bad schedule at startup rather than as a log line every tick."""
    errors: list[CheckMessage] = []
    names = set()
    for job in scheduled_jobs():
        if job.name in names:
            errors.append(Error(f"Periodic job {job.name!r} is defined twice.", id="jobs.E001"))
        names.add(job.name)
        if job.interval_seconds <= 0:
            errors.append(
                Error(
                    f"Periodic job {job.name!r} needs a positive interval.",
                    hint="Check the *_INTERVAL settings.",
                    id="jobs.E002",
                )
            )
        try:
            task = import_string(job.task_path)
        except ImportError as exc:
            errors.append(
                Error(
                    f"Periodic job {job.name!r}: cannot import {job.task_path}: {exc}",
                    id="jobs.E003",
                )
            )
            continue
        if not isinstance(task, Task):
            errors.append(
                Error(f"Periodic job {job.name!r}: {job.task_path} is not a task.", id="jobs.E004")
            )
    return errors


# Addresses that mean "every interface" or "this machine only": binding there
# says nothing about the public host name (a proxy usually sits in front).
_UNSPECIFIC_HOSTS = {"", "0.0.0.0", "::", "[::]", "127.0.0.1", "::1", "[::1]", "localhost"}  # noqa: S104


def _bind_host(bind: str) -> str:
    if bind.startswith(("unix:", "fd://")):
        return ""
    host, _sep, _port = bind.rpartition(":")
    return host.strip("[]").lower()


def site_url_problems(
    *, site_url: str, site_url_set: bool, bind: str, allowed_hosts: list[str], production: bool
) -> list[CheckMessage]:
    """What is wrong with the site address a production process will use.

    Payment return URLs, webhooks, receipt QR codes and links in messages are
    built from LEB_SITE_URL; a host that does not reach this site breaks every
    one of them silently, so each mismatch is a loud warning."""
    problems: list[CheckMessage] = []
    parts = urlsplit(site_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return [
            Error(
                f"LEB_SITE_URL {site_url!r} is not an http(s) address.",
                hint="Set LEB_SITE_URL to the public address, e.g. https://leb.example.",
                id="jobs.E010",
            )
        ]
    host = parts.hostname.lower()
    if production and not site_url_set:
        problems.append(
            CheckWarning(
                f"LEB_SITE_URL is not set: payment return URLs, webhooks and links use {site_url}.",
                hint="Set LEB_SITE_URL to the address subscribers and providers reach.",
                id="jobs.W010",
            )
        )
    if not validate_host(host, allowed_hosts):
        problems.append(
            CheckWarning(
                f"LEB_SITE_URL's host {host!r} is not in LEB_ALLOWED_HOSTS {allowed_hosts!r}: "
                "payment returns and webhooks to it will be refused (400).",
                hint="Add the host to LEB_ALLOWED_HOSTS or fix LEB_SITE_URL.",
                id="jobs.W011",
            )
        )
    bound = _bind_host(bind)
    if bound not in _UNSPECIFIC_HOSTS and bound != host:
        problems.append(
            CheckWarning(
                f"leb listens on {bind} but LEB_SITE_URL names {host!r}.",
                hint="Bind to that host (or 0.0.0.0 behind a proxy) or fix LEB_SITE_URL.",
                id="jobs.W012",
            )
        )
    if production and parts.scheme != "https":
        problems.append(
            CheckWarning(
                f"LEB_SITE_URL {site_url!r} is not https: payment providers need https "
                "return and webhook URLs.",
                id="jobs.W013",
            )
        )
    return problems


@register()
def check_site_url(**kwargs: Any) -> list[CheckMessage]:
    """At start outside debug mode: does LEB_SITE_URL agree with the hosts
    served? (In debug mode it follows LEB_BIND unless set.)"""
    production = bool(getattr(settings, "PRODUCTION", False))
    if settings.DEBUG and not production:
        return []
    return site_url_problems(
        site_url=settings.SITE_URL,
        site_url_set=bool(getattr(settings, "SITE_URL_FROM_ENV", True)),
        bind=str(getattr(settings, "BIND", "")),
        allowed_hosts=list(settings.ALLOWED_HOSTS),
        production=production,
    )
