"""Process plumbing for the benchmarks.

Every benchmark process is spawned fresh (never forked from a process that
already holds a database connection), points Django at the benchmark database
through LEB_DATABASE_URL and only then calls `django.setup()`. This module
imports no models so a spawned child can import it first.
"""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing
import os
import secrets
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Barrier
from typing import Any
from urllib.parse import quote

_SPAWN = multiprocessing.get_context("spawn")
BARRIER_TIMEOUT = 900.0
SECRET_KEY_VARIABLE = "LEB_BENCH_SECRET_KEY"  # noqa: S105 (the name of a variable)


class BenchError(RuntimeError):
    """A benchmark could not run, or ran and found something wrong."""


def setup_django(database_url: str) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "leb.settings"
    os.environ["LEB_DATABASE_URL"] = database_url
    # Measure what production runs: with DEBUG on, Django logs every query.
    os.environ["LEB_DEBUG"] = "0"
    # A benchmark whose server must check what a child made (an API token is
    # keyed with the secret key) hands every process the same key.
    os.environ["LEB_SECRET_KEY"] = os.environ.get(SECRET_KEY_VARIABLE) or secrets.token_urlsafe(48)
    import django

    django.setup()


def migrate() -> None:
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)


def resolve(target: str) -> Callable[..., Any]:
    """`package.module:function` to the function."""
    module_name, _sep, name = target.partition(":")
    func: Callable[..., Any] = getattr(importlib.import_module(module_name), name)
    return func


def url_from_settings(settings_dict: dict[str, Any]) -> str:
    """A LEB_DATABASE_URL that reaches the same database as `settings_dict`."""
    engine = settings_dict["ENGINE"]
    name = str(settings_dict["NAME"])
    if engine.endswith("sqlite3"):
        if name.startswith("file:") or name == ":memory:":
            raise BenchError("an in-memory SQLite database cannot be shared with other processes")
        return f"sqlite:///{name}"
    if "postgresql" in engine:
        user = quote(settings_dict.get("USER") or "", safe="")
        password = quote(settings_dict.get("PASSWORD") or "", safe="")
        auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
        host = settings_dict.get("HOST") or "localhost"
        port = f":{settings_dict['PORT']}" if settings_dict.get("PORT") else ""
        return f"postgres://{auth}{host}{port}/{quote(name, safe='')}"
    raise BenchError(f"unsupported database engine {engine}")


def _child(database_url: str, target: str, args: tuple[Any, ...], conn: Connection) -> None:
    try:
        setup_django(database_url)
        conn.send(("ok", resolve(target)(*args)))
    except BaseException:
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


def call_in_child(database_url: str, target: str, *args: Any) -> Any:
    """Run `target(*args)` in a fresh process set up for `database_url`."""
    receiver, sender = _SPAWN.Pipe(duplex=False)
    process = _SPAWN.Process(target=_child, args=(database_url, target, args, sender))
    process.start()
    sender.close()
    try:
        status, payload = receiver.recv()
    except EOFError:
        status, payload = "error", "the child process died without an answer"
    process.join()
    if status != "ok":
        raise BenchError(f"{target} failed in a child process:\n{payload}")
    return payload


@dataclass
class WorkerRun:
    results: list[Any]
    # Wall clock from the first worker passing the start line to the last one finishing.
    seconds: float


def _worker(database_url: str, target: str, job: Any, barrier: Barrier, conn: Connection) -> None:
    marks: dict[str, float] = {}

    def start() -> None:
        barrier.wait(BARRIER_TIMEOUT)
        marks["start"] = time.monotonic()

    try:
        setup_django(database_url)
        result = resolve(target)(job, start)
        finished = time.monotonic()
        conn.send(("ok", result, marks.get("start", finished), finished))
    except BaseException:
        barrier.abort()
        conn.send(("error", traceback.format_exc(), 0.0, 0.0))
    finally:
        conn.close()


def run_workers(database_url: str, target: str, jobs: Sequence[Any]) -> WorkerRun:
    """Run `target(job, start)` in one process per job. Each worker prepares
    (setup, connection, lookups), then calls `start()`, which waits until every
    worker is ready, so the timing covers only the work after it.

    time.monotonic is CLOCK_MONOTONIC on Linux: one clock for all processes.
    """
    barrier = _SPAWN.Barrier(len(jobs))
    pipes, processes = [], []
    for job in jobs:
        receiver, sender = _SPAWN.Pipe(duplex=False)
        process = _SPAWN.Process(target=_worker, args=(database_url, target, job, barrier, sender))
        process.start()
        sender.close()
        pipes.append(receiver)
        processes.append(process)
    answers = []
    for receiver in pipes:
        try:
            answers.append(receiver.recv())
        except EOFError:
            answers.append(("error", "a worker process died without an answer", 0.0, 0.0))
    for process in processes:
        process.join()
    failures = [payload for status, payload, _s, _f in answers if status != "ok"]
    if failures:
        raise BenchError(f"{len(failures)} worker(s) of {target} failed:\n{failures[0]}")
    started = min(answer[2] for answer in answers)
    finished = max(answer[3] for answer in answers)
    return WorkerRun(results=[answer[1] for answer in answers], seconds=finished - started)


def run_in_process(
    target: Callable[[Any, Callable[[], None]], Any], jobs: Sequence[Any]
) -> WorkerRun:
    """The same contract as run_workers, one job after another in this process."""
    marks: list[float] = []
    results = []
    for job in jobs:
        results.append(target(job, lambda: marks.append(time.monotonic())))
        marks.append(time.monotonic())
    return WorkerRun(
        results=results, seconds=sum(marks[i + 1] - marks[i] for i in range(0, len(marks), 2))
    )


def split(items: Sequence[Any], parts: int) -> list[list[Any]]:
    """`items` in `parts` contiguous slices whose sizes differ by at most one."""
    parts = max(1, min(parts, len(items))) if items else 1
    size, extra = divmod(len(items), parts)
    slices, begin = [], 0
    for index in range(parts):
        end = begin + size + (1 if index < extra else 0)
        slices.append(list(items[begin:end]))
        begin = end
    return slices


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """Variables the spawned children inherit, for the duration only."""
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
