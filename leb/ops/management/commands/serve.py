"""`leb serve`: the web site under gunicorn, optionally with a task worker."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from argparse import ArgumentParser
from types import FrameType
from typing import Any

import gunicorn.config
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connections

DEFAULT_BIND = "127.0.0.1:8000"
logger = logging.getLogger("leb.serve")
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# Matches gunicorn's default graceful timeout; a running task gets as long.
CHILD_STOP_SECONDS = 30.0
POLL_SECONDS = 0.2


def default_workers() -> int:
    # gunicorn's rule of thumb, capped: each worker holds a full Django process.
    return min(2 * (os.cpu_count() or 1) + 1, 9)


def site_url(bind: str) -> str:
    if bind.startswith(("unix:", "fd://")):
        return bind
    host, _, port = bind.rpartition(":")
    if host in ("", "0.0.0.0", "[::]"):  # noqa: S104 (only shown, not bound)
        host = "127.0.0.1"
    return f"http://{host}:{port}/"


def demo_logins() -> list[tuple[str, str, str]]:
    """(role, username, password) of the demo accounts, if the demo was loaded."""
    try:
        from leb.ops.demo import demo_logins as read_demo_logins
    except ImportError:
        return []
    try:
        return list(read_demo_logins())
    except DatabaseError:
        return []


def demo_login_notes() -> list[str]:
    """How to get the agent portal's 6-digit codes, if the demo is installed."""
    try:
        from leb.ops.demo import demo_login_notes as read_notes
    except ImportError:
        return []
    return list(read_notes())


def stop_child(process: subprocess.Popen[bytes], timeout: float) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class Command(BaseCommand):
    help = "Serve leb with gunicorn; --with-worker also runs the background task worker."
    # Run by handle() once the address to listen on is known (the site URL check).
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--bind",
            default=os.environ.get("LEB_BIND", DEFAULT_BIND),
            help=f"Address to listen on (default: LEB_BIND or {DEFAULT_BIND}).",
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=int(os.environ.get("LEB_WEB_WORKERS", "0")) or default_workers(),
            help="gunicorn worker processes (default: LEB_WEB_WORKERS or 2 x CPUs + 1, max 9).",
        )
        parser.add_argument(
            "--threads",
            type=int,
            default=int(os.environ.get("LEB_WEB_THREADS", "4")),
            help="Threads per worker process (default: LEB_WEB_THREADS or 4).",
        )
        parser.add_argument(
            "--with-worker",
            action="store_true",
            help="Also run `leb worker` (tasks and periodic jobs) and stop it with the server.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        # The children read their settings afresh: passing the address on makes
        # their LEB_SITE_URL (when unset) follow --bind, as it does here.
        os.environ["LEB_BIND"] = options["bind"]
        settings.BIND = options["bind"]
        if not settings.SITE_URL_FROM_ENV and site_url(options["bind"]).startswith("http"):
            settings.SITE_URL = site_url(options["bind"]).rstrip("/")
        self.check_site_url()
        if not settings.DEBUG:
            call_command("collectstatic", interactive=False, verbosity=0)
        self.check_migrations()
        self.print_banner(options["bind"])
        # Children open their own connections; none of ours should outlive this point.
        connections.close_all()

        # Children get their own session: a terminal Ctrl+C reaches only this
        # process, which then stops each child once, gracefully.
        web = subprocess.Popen(self.gunicorn_command(options), start_new_session=True)  # noqa: S603
        worker = None
        if options["with_worker"]:
            worker = subprocess.Popen(
                [sys.executable, "-m", "leb.cli", "worker"], start_new_session=True
            )
        self.supervise(web, worker)

    def check_site_url(self) -> None:
        """The system checks, with this --bind; site URL problems are also
        logged, so they reach the logs and not only the terminal."""
        from leb.jobs.checks import check_site_url

        for problem in check_site_url():
            logger.warning("%s (%s) %s", problem.msg, problem.id, problem.hint or "")
        self.check(display_num_errors=False)

    def gunicorn_command(self, options: dict[str, Any]) -> list[str]:
        return [
            sys.executable,
            "-m",
            "gunicorn",
            "leb.wsgi:application",
            "--bind",
            options["bind"],
            "--workers",
            str(options["workers"]),
            "--worker-class",
            "gthread",
            "--threads",
            str(options["threads"]),
            # leb logs each request itself (JSON, with its request id) when
            # LOG_REQUESTS is on; gunicorn's plain line would only repeat it.
            *([] if settings.LOG_REQUESTS else ["--access-logfile", "-"]),
            # Recycle workers now and then so a slow leak never takes the site down.
            "--max-requests",
            "2000",
            "--max-requests-jitter",
            "200",
            # The default control socket is one path per user: two servers on one
            # machine would fight over it, and this command signals gunicorn itself.
            *(["--no-control-socket"] if hasattr(gunicorn.config, "ControlSocketDisable") else []),
        ]

    def print_banner(self, bind: str) -> None:
        url = settings.SITE_URL + "/" if settings.SITE_URL_FROM_ENV else site_url(bind)
        self.stdout.write(f"leb is starting at {url}")
        if url.startswith("http"):
            self.stdout.write(f"Back office: {url}ops/")
        logins = demo_logins()
        if logins:
            self.stdout.write("Demo logins (role, username, password):")
            for role, username, password in logins:
                self.stdout.write(f"  {role:<10} {username:<20} {password}")
            for note in demo_login_notes():
                self.stdout.write(note)

    def supervise(
        self, web: subprocess.Popen[bytes], worker: subprocess.Popen[bytes] | None
    ) -> None:
        """Wait for gunicorn to exit; stop both on a signal, and stop gunicorn
        if the worker dies, so a supervisor sees the failure and restarts us."""
        stopping = False
        previous_handlers = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}

        def on_stop_signal(signum: int, frame: FrameType | None) -> None:
            nonlocal stopping
            if stopping:
                # A second Ctrl+C: do not wait for graceful shutdown.
                for child in (web, worker):
                    if child is not None and child.poll() is None:
                        child.kill()
                return
            stopping = True
            for child in (web, worker):
                if child is not None and child.poll() is None:
                    child.send_signal(signal.SIGTERM)

        for signum in STOP_SIGNALS:
            signal.signal(signum, on_stop_signal)
        failure = ""
        try:
            while web.poll() is None:
                if worker is not None and worker.poll() is not None and not stopping:
                    failure = f"the worker exited with status {worker.returncode}"
                    stopping = True
                    web.send_signal(signal.SIGTERM)
                time.sleep(POLL_SECONDS)
            if not stopping and web.returncode:
                failure = f"gunicorn exited with status {web.returncode}"
        finally:
            if worker is not None:
                stop_child(worker, CHILD_STOP_SECONDS)
            stop_child(web, CHILD_STOP_SECONDS)
            for signum, handler in previous_handlers.items():
                signal.signal(signum, handler)
        if failure:
            raise CommandError(failure)
