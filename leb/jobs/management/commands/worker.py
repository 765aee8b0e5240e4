"""`leb worker`: run background tasks, and the periodic scheduler beside them."""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from argparse import ArgumentParser, ArgumentTypeError
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import connections
from django.utils.crypto import get_random_string
from django_tasks_db.management.commands.db_worker import Worker

from leb.jobs.scheduler import TICK_SECONDS, run_scheduler, tick

logger = logging.getLogger("leb.jobs.worker")

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
SCHEDULER_JOIN_SECONDS = 10.0


class SchedulingWorker(Worker):
    """The database task worker, told to stop the scheduler thread when a stop
    signal arrives; it restores the previous signal handlers when done."""

    def __init__(self, *, stop_scheduler: threading.Event, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stop_scheduler = stop_scheduler
        self.previous_handlers: dict[int, Any] = {}

    def shutdown(self, signum: int, frame: FrameType | None) -> None:
        self.stop_scheduler.set()
        super().shutdown(signum, frame)

    def configure_signals(self) -> None:
        for signum in STOP_SIGNALS:
            self.previous_handlers[signum] = signal.getsignal(signum)
            signal.signal(signum, self.shutdown)

    def reset_signals(self) -> None:
        for signum in STOP_SIGNALS:
            signal.signal(signum, self.previous_handlers.get(signum, signal.SIG_DFL))


def positive_seconds(value: str) -> float:
    seconds = float(value)
    if not 0 < seconds < float("inf"):
        raise ArgumentTypeError("must be a positive number of seconds")
    return seconds


def worker_id() -> str:
    # Readable in DBTaskResult.worker_ids; the suffix keeps restarts apart.
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{get_random_string(6)}"


class Command(BaseCommand):
    help = "Run background tasks and enqueue the periodic jobs when they are due."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--queue",
            default="default",
            help="Queues to process, comma separated; '*' for all (default: %(default)s).",
        )
        parser.add_argument(
            "--interval",
            type=positive_seconds,
            default=1.0,
            help="Seconds to wait when no task is ready (default: %(default)s).",
        )
        parser.add_argument(
            "--no-scheduler",
            action="store_true",
            help="Only run tasks; do not enqueue periodic jobs.",
        )
        parser.add_argument(
            "--batch",
            action="store_true",
            help="Enqueue the periodic jobs that are due, run every ready task, then exit.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        self.configure_logging(options["verbosity"])
        self.check_migrations()
        queue_names = [name.strip() for name in options["queue"].split(",") if name.strip()]
        if not queue_names:
            raise CommandError("--queue needs at least one queue name")
        batch: bool = options["batch"]
        with_scheduler = not options["no_scheduler"]

        stop_scheduler = threading.Event()
        worker = SchedulingWorker(
            stop_scheduler=stop_scheduler,
            queue_names=queue_names,
            interval=options["interval"],
            batch=batch,
            backend_name="default",
            # Spreads the first poll of many workers started together.
            startup_delay=not batch,
            max_tasks=None,
            worker_id=worker_id(),
            excluded_queue_names=[],
        )

        scheduler_thread = None
        if with_scheduler and batch:
            enqueued = tick()
            logger.info("Periodic jobs enqueued: %s", ", ".join(enqueued) or "none")
        elif with_scheduler:
            scheduler_thread = threading.Thread(
                target=run_scheduler,
                args=(stop_scheduler, TICK_SECONDS),
                name="leb-scheduler",
                # Never keeps the process alive on its own; it is joined below.
                daemon=True,
            )
            scheduler_thread.start()

        worker.configure_signals()
        try:
            worker.run()
        except SystemExit as exit_:
            # The worker leaves by SystemExit on a stop signal; 0 means graceful.
            if exit_.code not in (0, None):
                raise
        finally:
            worker.reset_signals()
            stop_scheduler.set()
            if scheduler_thread is not None:
                scheduler_thread.join(SCHEDULER_JOIN_SECONDS)
            connections.close_all()

    def configure_logging(self, verbosity: int) -> None:
        level = {0: logging.ERROR, 1: logging.INFO}.get(verbosity, logging.DEBUG)
        for name in ("django_tasks_db", "django_tasks", "leb.jobs"):
            logging.getLogger(name).setLevel(level)
