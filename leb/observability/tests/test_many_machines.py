"""Two web processes and two workers on one PostgreSQL database and one Redis,
each with a private var/ folder as if on its own machine."""

from __future__ import annotations

import http.cookiejar
import itertools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gunicorn.config
import pytest
from django.core.cache.backends.redis import RedisCache
from django.db import connection
from django_tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from leb.jobs.schedule import scheduled_jobs

from . import tasks
from .helpers import forget_prefix, require_redis

SWEEP_INTERVAL = 2  # seconds; every other periodic job waits an hour
RUN_FOR = 9.0  # seconds the workers schedule for, from the moment both web processes are ready
TASKS = 20
QUICK_CHECK_LIMIT = 4

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs PostgreSQL: separate processes must see the test database",
    ),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Cluster:
    tmp: Path
    env: dict[str, str]
    processes: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)

    def start(self, name: str, argv: list[str], **extra: str) -> None:
        var = self.tmp / name
        var.mkdir()
        log = (self.tmp / f"{name}.log").open("wb")
        process = subprocess.Popen(  # noqa: S603
            argv,
            env={**self.env, "LEB_VAR_DIR": str(var), **extra},
            stdout=log,
            stderr=subprocess.STDOUT,
            # Own process group: cleanup reaches gunicorn's workers too.
            start_new_session=True,
        )
        self.processes.append((name, process))

    def web(self, name: str) -> int:
        port = free_port()
        metrics_dir = self.tmp / f"{name}-metrics"
        metrics_dir.mkdir()
        self.start(
            name,
            [
                sys.executable,
                "-m",
                "gunicorn",
                "leb.wsgi:application",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "2",
                "--threads",
                "2",
                # One control socket per user by default: two servers would fight over it.
                *(
                    ["--no-control-socket"]
                    if hasattr(gunicorn.config, "ControlSocketDisable")
                    else []
                ),
            ],
            PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
        )
        self.ports.append(port)
        return port

    def worker(self, name: str) -> None:
        self.start(name, [sys.executable, "-m", "leb.cli", "worker", "--interval", "0.2"])

    def stop(self) -> None:
        for _, process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for _, process in self.processes:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def logs(self) -> str:
        return "\n".join(
            f"--- {name} (exit {process.returncode})\n"
            + (self.tmp / f"{name}.log").read_text(errors="replace")[-4000:]
            for name, process in self.processes
        )


@pytest.fixture
def cluster(tmp_path: Path, transactional_db: Any) -> Iterator[Cluster]:
    redis_url = require_redis()
    db = connection.settings_dict
    credentials = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    host = db["HOST"] or "127.0.0.1"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEB_")}
    env.update(
        {
            "LEB_DATABASE_URL": f"postgres://{credentials}@{host}:{db['PORT'] or 5432}/{db['NAME']}",
            "LEB_REDIS_URL": redis_url,
            "LEB_CACHE_KEY_PREFIX": f"leb-many-{uuid.uuid4().hex[:12]}",
            "LEB_LOG_FORMAT": "json",
            "LEB_PORTAL_QUICK_CHECK_RATE": f"{QUICK_CHECK_LIMIT}/3600",
            "LEB_SWEEP_INTERVAL": str(SWEEP_INTERVAL),
            **{
                f"LEB_{name}": "3600"
                for name in (
                    "RECOVERY_INTERVAL",
                    "ORDER_EXPIRY_INTERVAL",
                    "AUTOKEEP_INTERVAL",
                    "REMINDERS_INTERVAL",
                    "IVR_SESSION_PURGE_INTERVAL",
                    "NOTIFICATIONS_DELIVERY_INTERVAL",
                    "VOUCHER_EXPIRY_INTERVAL",
                )
            },
        }
    )
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    running = Cluster(tmp=tmp_path, env=env)
    try:
        yield running
    finally:
        running.stop()
        forget_prefix(redis_url, env["LEB_CACHE_KEY_PREFIX"])


def get(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 (loopback only)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def wait_ready(cluster: Cluster, deadline: float) -> None:
    for port in cluster.ports:
        while True:
            try:
                status, _, body = get(f"http://127.0.0.1:{port}/readyz")
                if status == 200:
                    assert json.loads(body)["checks"]["redis"] == "ok"
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("web processes not ready in time\n" + cluster.logs())
            time.sleep(0.2)


def quick_checks(ports: list[int], count: int) -> list[tuple[int, int]]:
    """(port, status) of `count` quick checks from one address, alternating ports."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    try:
        with opener.open(f"http://127.0.0.1:{ports[0]}/", timeout=10) as page:
            token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.read())
    except urllib.error.HTTPError as exc:
        return [(ports[0], exc.code)]
    if token is None:
        return [(ports[0], 0)]
    results = []
    for i in range(count):
        port = ports[i % len(ports)]
        data = urllib.parse.urlencode(
            {"csrfmiddlewaretoken": token.group(1).decode(), "number": "+85294000000"}
        ).encode()
        try:
            with opener.open(f"http://127.0.0.1:{port}/", data=data, timeout=10) as response:
                results.append((port, response.status))
        except urllib.error.HTTPError as exc:
            results.append((port, exc.code))
    return results


def scrape_total(port: int, view: str) -> float:
    _, _, body = get(f"http://127.0.0.1:{port}/metrics")
    pattern = rf'^leb_http_requests_total\{{[^}}]*view="{re.escape(view)}"[^}}]*\}} ([0-9.e+]+)$'
    return sum(float(m) for m in re.findall(pattern, body.decode(), re.MULTILINE))


def test_two_webs_and_two_workers_share_the_database_and_redis(cluster: Cluster) -> None:
    # given: two web machines (two gunicorn workers each) and two worker machines
    started = time.monotonic()
    web_a, web_b = cluster.web("web-a"), cluster.web("web-b")
    cluster.worker("worker-a")
    cluster.worker("worker-b")
    wait_ready(cluster, started + 40)
    for label in range(TASKS):
        tasks.count_run.enqueue(f"job-{label}")

    # when: one client runs quick checks against both web machines in turn
    results = quick_checks([web_a, web_b], QUICK_CHECK_LIMIT + 2)
    status, headers, _ = get(f"http://127.0.0.1:{web_b}/healthz", **{"X-Request-ID": "probe-77"})
    home_counted = scrape_total(web_a, "portal:home")
    # ... while both workers schedule and run tasks for a while
    schedule_from = time.monotonic()
    deadline = schedule_from + 30
    while time.monotonic() < deadline:
        done = DBTaskResult.objects.filter(
            task_path="leb.observability.tests.tasks.count_run",
            status=TaskResultStatus.SUCCESSFUL,
        ).count()
        if done == TASKS and time.monotonic() - schedule_from >= RUN_FOR:
            break
        time.sleep(0.2)
    ran_for = time.monotonic() - started
    cluster.stop()

    # then: the rate limit counted the client's checks on both machines together
    assert [code for _, code in results] == [200] * QUICK_CHECK_LIMIT + [429, 429], (
        f"{results}\n{cluster.logs()}"
    )
    assert {port for port, code in results if code == 429} == {web_a, web_b}
    # the request id came back, and the metrics of both gunicorn workers add up
    assert status == 200
    assert headers["X-Request-ID"] == "probe-77"
    # (the GET for the form, then every other POST)
    assert home_counted == 1 + (QUICK_CHECK_LIMIT + 2 + 1) // 2
    # every enqueued task ran exactly once, on one worker
    rows = DBTaskResult.objects.filter(task_path="leb.observability.tests.tasks.count_run")
    assert rows.filter(status=TaskResultStatus.SUCCESSFUL).count() == TASKS, cluster.logs()
    assert all(len(row.worker_ids) == 1 for row in rows)
    redis = RedisCache(
        cluster.env["LEB_REDIS_URL"], {"KEY_PREFIX": cluster.env["LEB_CACHE_KEY_PREFIX"]}
    )
    assert [redis.get(f"runs:job-{label}") for label in range(TASKS)] == [1] * TASKS
    # each hourly job was enqueued once although both workers' schedulers saw it due
    by_path: dict[str, int] = {}
    for path in DBTaskResult.objects.values_list("task_path", flat=True):
        by_path[path] = by_path.get(path, 0) + 1
    for job in scheduled_jobs():
        if job.name != "lines-sweep":
            assert by_path.get(job.task_path) == 1, (job.name, by_path)
    # the sweep ran once per interval, never twice in one
    sweeps = sorted(
        DBTaskResult.objects.filter(task_path="leb.lines.tasks.sweep_lines_task").values_list(
            "enqueued_at", flat=True
        )
    )
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(sweeps)]
    assert len(sweeps) >= 3, cluster.logs()
    assert len(sweeps) <= ran_for / SWEEP_INTERVAL + 1
    assert min(gaps) >= SWEEP_INTERVAL - 0.05, gaps
    # and the logs are JSON lines, the web's carrying the request id it answered
    web_lines = [
        json.loads(line)
        for line in (cluster.tmp / "web-b.log").read_text().splitlines()
        if line.startswith("{")
    ]
    assert any(line.get("request_id") == "probe-77" for line in web_lines), cluster.logs()
