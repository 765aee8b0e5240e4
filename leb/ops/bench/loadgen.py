"""The HTTP phase of `leb bench agents`: gunicorn on the benchmark database,
and a loopback load generator that sends signed `POST /agent/v1/topups`.

The generator is processes of threads; each thread keeps one HTTP/1.1
connection open and signs every request as an agent's own system must
(`leb.agents.signing`, the scheme in docs/agents.md): a fresh nonce, the
current timestamp and a unique external id per request. This module imports
no models: its processes never set Django up.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from leb.agents import signing

from .procs import BenchError, split

PATH = "/agent/v1/topups"
BALANCE_PATH = "/agent/v1/balance"
_SPAWN = multiprocessing.get_context("spawn")
READY_SECONDS = 90.0
STOP_SECONDS = 20.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


def server_environment(
    database_url: str, var_dir: Path, pepper: str, base: dict[str, str] | None = None
) -> dict[str, str]:
    """What gunicorn runs with: production settings but for the agent API's
    per-key rate limit (120 requests a minute would cap one key at 2/s; the
    benchmark measures the sale path), and no request log lines."""
    env = dict(os.environ if base is None else base)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "leb.settings",
            "LEB_DATABASE_URL": database_url,
            "LEB_DEBUG": "0",
            "LEB_SECRET_KEY": secrets.token_urlsafe(48),
            "LEB_AGENTS_KEY_PEPPER": pepper,
            "LEB_AGENTS_API_RATE": "",
            "LEB_LOG_REQUESTS": "0",
            "LEB_VAR_DIR": str(var_dir),
        }
    )
    return env


def start_server(env: dict[str, str], var_dir: Path, *, workers: int, threads: int) -> Server:
    """gunicorn as `leb serve` runs it (gthread workers), on a free port."""
    import gunicorn.config

    port = free_port()
    log = var_dir / "gunicorn.log"
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "leb.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        "gthread",
        "--threads",
        str(threads),
        *(["--no-control-socket"] if hasattr(gunicorn.config, "ControlSocketDisable") else []),
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603
            argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    return Server(process=process, port=port, log=log)


def _signed(key_id: str, secret: str, method: str, path: str, body: bytes) -> dict[str, str]:
    headers = signing.signed_headers(
        key_id, secret, method, path, body, int(time.time()), secrets.token_hex(12)
    )
    headers["Content-Type"] = "application/json"
    return headers


def wait_ready(server: Server, key_id: str, secret: str, workers: int) -> None:
    """Until a signed balance request answers 200 (a few times, so that most
    workers have loaded the application)."""
    deadline = time.monotonic() + READY_SECONDS
    answered = 0
    while answered < 2 * workers:
        if server.process.poll() is not None:
            raise BenchError(
                f"gunicorn exited with status {server.process.returncode}:\n{server.tail()}"
            )
        if time.monotonic() > deadline:
            raise BenchError(
                f"gunicorn did not answer within {READY_SECONDS:.0f} s:\n{server.tail()}"
            )
        try:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            conn.request(
                "GET", BALANCE_PATH, headers=_signed(key_id, secret, "GET", BALANCE_PATH, b"")
            )
            response = conn.getresponse()
            body = response.read()
            conn.close()
        except OSError:
            time.sleep(0.2)
            continue
        if response.status != 200:
            raise BenchError(f"GET {BALANCE_PATH} answered {response.status}: {body[:500]!r}")
        answered += 1


def warm_up(
    server: Server,
    *,
    key_id: str,
    secret: str,
    plan_code: str,
    msisdn: str,
    tag: str,
    count: int,
) -> list[str]:
    """`count` top-ups one after another, each on a new connection, so that
    every worker's first (slow) sale is made before the load starts and not
    while others queue for the agent's lock. Returns the external ids sold."""
    sold = []
    for number in range(count):
        ext = f"{tag}-warm-{number}"
        body = json.dumps(
            {
                "external_id": ext,
                "msisdn": msisdn,
                "plan_code": plan_code,
                "mode": "instant",
                "allow_repeat": True,
            },
            separators=(",", ":"),
        ).encode()
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        conn.request("POST", PATH, body, _signed(key_id, secret, "POST", PATH, body))
        response = conn.getresponse()
        answer = response.read()
        conn.close()
        if response.status != 201:
            raise BenchError(f"a warm-up top-up answered {response.status}: {answer[:500]!r}")
        sold.append(ext)
    return sold


def stop_server(server: Server) -> None:
    if server.process.poll() is None:
        os.killpg(server.process.pid, signal.SIGTERM)
    try:
        server.process.wait(STOP_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait()


# --- the load generator -----------------------------------------------------------


@dataclass
class ThreadJob:
    port: int
    key_id: str
    secret: str
    plan_code: str
    msisdns: list[str]
    tag: str
    # time.monotonic() values (one clock for all processes on Linux)
    warm_from: float
    start_at: float
    stop_at: float


def _drive(job: ThreadJob, out: dict[str, Any]) -> None:
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    sold: list[str] = []
    first_error = ""
    conn = http.client.HTTPConnection("127.0.0.1", job.port, timeout=30)
    number = 0
    while time.monotonic() < job.warm_from:
        time.sleep(0.005)
    while True:
        began = time.monotonic()
        if began >= job.stop_at:
            break
        ext = f"{job.tag}-{number}"
        body = json.dumps(
            {
                "external_id": ext,
                "msisdn": job.msisdns[number % len(job.msisdns)],
                "plan_code": job.plan_code,
                "mode": "instant",
                "allow_repeat": True,
            },
            separators=(",", ":"),
        ).encode()
        number += 1
        headers = _signed(job.key_id, job.secret, "POST", PATH, body)
        try:
            conn.request("POST", PATH, body, headers)
            response = conn.getresponse()
            answer = response.read()
            status = str(response.status)
            if response.status == 201:
                sold.append(ext)
            elif not first_error:
                first_error = f"{status}: {answer[:300]!r}"
        except (OSError, http.client.HTTPException) as exc:
            status = type(exc).__name__
            first_error = first_error or f"{ext}: {exc!r}"
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", job.port, timeout=30)
        finished = time.monotonic()
        if began >= job.start_at and finished <= job.stop_at:
            latencies.append(finished - began)
            statuses[status] += 1
    conn.close()
    out.update(latencies=latencies, statuses=statuses, sold=sold, first_error=first_error)


def _process(jobs: list[ThreadJob], pipe: Connection) -> None:
    outs: list[dict[str, Any]] = [{} for _job in jobs]
    threads = [
        threading.Thread(target=_drive, args=(job, out))
        for job, out in zip(jobs, outs, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    pipe.send(outs)
    pipe.close()


@dataclass
class LoadResult:
    tag: str
    connections: int
    processes: int
    seconds: float
    requests: int
    created: int
    statuses: dict[str, int]
    p50_ms: float
    p99_ms: float
    first_error: str
    sold: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        """Top-ups sold (201) per second in the timed window."""
        return self.created / self.seconds if self.seconds else 0.0

    @property
    def errors(self) -> int:
        return self.requests - self.created


def _percentile_ms(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000


def run_load(
    port: int,
    *,
    key_id: str,
    secret: str,
    plan_code: str,
    msisdns: list[str],
    tag: str,
    seconds: float,
    warmup: float,
    connections: int,
    processes: int,
) -> LoadResult:
    """`connections` threads spread over `processes` processes, each on its own
    slice of the lines, sending for `warmup` + `seconds`; only requests
    inside the last `seconds` are timed (all sold top-ups are listed)."""
    processes = max(1, min(processes, connections))
    now = time.monotonic()
    warm_from = now + 2.0  # the processes start in well under that
    start_at = warm_from + warmup
    stop_at = start_at + seconds
    slices = split(msisdns, connections)
    jobs = [
        ThreadJob(
            port, key_id, secret, plan_code, numbers, f"{tag}-{index}", warm_from, start_at, stop_at
        )
        for index, numbers in enumerate(slices)
    ]
    pipes, children = [], []
    for group in split(jobs, processes):
        receiver, sender = _SPAWN.Pipe(duplex=False)
        child = _SPAWN.Process(target=_process, args=(group, sender))
        child.start()
        sender.close()
        pipes.append(receiver)
        children.append(child)
    outs: list[dict[str, Any]] = []
    for receiver in pipes:
        try:
            outs.extend(receiver.recv())
        except EOFError as exc:
            raise BenchError("a load generator process died without an answer") from exc
    for child in children:
        child.join()
    latencies = [lat for out in outs for lat in out["latencies"]]
    statuses: Counter[str] = Counter()
    for out in outs:
        statuses.update(out["statuses"])
    return LoadResult(
        tag=tag,
        connections=len(jobs),
        processes=len(children),
        seconds=seconds,
        requests=sum(statuses.values()),
        created=statuses.get("201", 0),
        statuses=dict(sorted(statuses.items())),
        p50_ms=_percentile_ms(latencies, 0.5),
        p99_ms=_percentile_ms(latencies, 0.99),
        first_error=next((out["first_error"] for out in outs if out["first_error"]), ""),
        sold=[ext for out in outs for ext in out["sold"]],
    )
