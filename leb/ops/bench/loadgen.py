"""gunicorn on a benchmark database, and a loopback HTTP load generator.

The server is started as `leb serve` runs it (gthread workers) on a free
port. The generator is processes of threads; each thread keeps one HTTP/1.1
keep-alive connection (a `Client`, with a cookie jar as a browser has) and
runs a *scenario* over and over for a fixed time: a function that sends the
requests of one operation and returns when the operation is done, for
example one signed agent sale (`agent_topup`, `leb bench agents`) or a quick
check or a whole top-up paid at the sandbox (`leb.ops.bench.scenarios`,
`leb bench http`). Scenarios are named `module:function` so that the
spawned processes can find them. Operations and requests are counted and
timed in a window after a warm-up; optionally the CPU time of groups of
processes (`leb.ops.bench.cpu`) is sampled when the window opens and closes.

This module imports no models: its processes never set Django up.
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
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from leb.agents import signing

from . import cpu
from .procs import BenchError, resolve, split

PATH = "/agent/v1/topups"
BALANCE_PATH = "/agent/v1/balance"
AGENT_TOPUP = "leb.ops.bench.loadgen:agent_topup"
_SPAWN = multiprocessing.get_context("spawn")
READY_SECONDS = 90.0
STOP_SECONDS = 20.0
TIMEOUT_SECONDS = 30.0


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
    database_url: str,
    var_dir: Path,
    *,
    pepper: str = "",
    secret_key: str = "",
    overrides: dict[str, str] | None = None,
    base: dict[str, str] | None = None,
) -> dict[str, str]:
    """What gunicorn runs with: production settings (`DEBUG` off) and no
    request log lines, the agents' key pepper and the secret key the seeding
    process used (tokens and key secrets derive from them), plus `overrides`
    (a rate limit switched off, for instance)."""
    env = dict(os.environ if base is None else base)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "leb.settings",
            "LEB_DATABASE_URL": database_url,
            "LEB_DEBUG": "0",
            "LEB_SECRET_KEY": secret_key or secrets.token_urlsafe(48),
            "LEB_LOG_REQUESTS": "0",
            "LEB_VAR_DIR": str(var_dir),
        }
    )
    if pepper:
        env["LEB_AGENTS_KEY_PEPPER"] = pepper
    env.update(overrides or {})
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


def wait_ready(
    server: Server,
    path: str,
    workers: int,
    headers: Callable[[], dict[str, str]] | None = None,
) -> None:
    """Until `GET path` answers 200 a few times, so that most workers have
    loaded the application. `headers` makes each request's headers (a signed
    request needs a fresh nonce every time)."""
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
            conn.request("GET", path, headers=headers() if headers else {})
            response = conn.getresponse()
            body = response.read()
            conn.close()
        except OSError:
            time.sleep(0.2)
            continue
        if response.status != 200:
            raise BenchError(f"GET {path} answered {response.status}: {body[:500]!r}")
        answered += 1


def stop_server(server: Server) -> None:
    if server.process.poll() is None:
        os.killpg(server.process.pid, signal.SIGTERM)
    try:
        server.process.wait(STOP_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait()


# --- the client a scenario talks through -------------------------------------------


class OperationFailed(Exception):
    """An operation did not complete (a scenario raises it with the reason)."""


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Window:
    # time.monotonic() values (one clock for all processes on Linux)
    start_at: float
    stop_at: float

    def holds(self, began: float, finished: float) -> bool:
        return began >= self.start_at and finished <= self.stop_at


class Client:
    """One keep-alive connection to the server and a cookie jar. Every
    request that begins and ends inside the window is timed and its status
    counted; a request that fails on the wire is counted under the
    exception's name, the connection is opened again and OperationFailed
    raised."""

    def __init__(self, port: int, window: Window) -> None:
        self.port = port
        self.origin = f"http://127.0.0.1:{port}"
        self.window = window
        self.cookies: dict[str, str] = {}
        self.latencies: list[float] = []
        self.statuses: Counter[str] = Counter()
        self._conn = self._connect()

    def _connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT_SECONDS)

    def close(self) -> None:
        self._conn.close()

    def _record(self, began: float, status: str) -> None:
        finished = time.monotonic()
        if self.window.holds(began, finished):
            self.latencies.append(finished - began)
            self.statuses[status] += 1

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        sent = dict(headers or {})
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        began = time.monotonic()
        try:
            self._conn.request(method, path, body, sent)
            answer = self._conn.getresponse()
            data = answer.read()
        except (OSError, http.client.HTTPException) as exc:
            self._record(began, type(exc).__name__)
            self._conn.close()
            self._conn = self._connect()
            raise OperationFailed(f"{method} {path}: {exc!r}") from exc
        self._record(began, str(answer.status))
        for name, value in answer.getheaders():
            if name.lower() == "set-cookie":
                cookie, _sep, _attributes = value.partition(";")
                key, _eq, content = cookie.strip().partition("=")
                self.cookies[key] = content
        return Response(
            status=answer.status,
            headers={name.lower(): value for name, value in answer.getheaders()},
            body=data,
        )


def expect(response: Response, status: int, what: str) -> Response:
    if response.status != status:
        raise OperationFailed(f"{what} answered {response.status}: {response.body[:300]!r}")
    return response


# A scenario: (client, params, item, key) -> an id to report, or "" (nothing to
# report); OperationFailed when the operation did not complete. `item` is the
# thread's next item (a phone number, in turn), `key` is unique in the run.
Scenario = Callable[[Client, dict[str, Any], str, str], str]


# --- the agent sale (leb bench agents) ------------------------------------------------


def _signed(key_id: str, secret: str, method: str, path: str, body: bytes) -> dict[str, str]:
    headers = signing.signed_headers(
        key_id, secret, method, path, body, int(time.time()), secrets.token_hex(12)
    )
    headers["Content-Type"] = "application/json"
    return headers


def agent_balance_headers(key_id: str, secret: str) -> Callable[[], dict[str, str]]:
    return lambda: _signed(key_id, secret, "GET", BALANCE_PATH, b"")


def agent_topup(client: Client, params: dict[str, Any], msisdn: str, key: str) -> str:
    """One signed `POST /agent/v1/topups`, instant mode, external id `key`.
    Returns the external id when it was sold (201)."""
    body = json.dumps(
        {
            "external_id": key,
            "msisdn": msisdn,
            "plan_code": params["plan_code"],
            "mode": "instant",
            "allow_repeat": True,
        },
        separators=(",", ":"),
    ).encode()
    headers = _signed(params["key_id"], params["secret"], "POST", PATH, body)
    expect(client.request("POST", PATH, body, headers), 201, f"POST {PATH}")
    return key


# --- running a scenario -----------------------------------------------------------------


def warm_up(
    server: Server,
    scenario: str,
    params: dict[str, Any],
    items: list[str],
    *,
    tag: str,
    count: int,
) -> list[str]:
    """`count` operations one after another, each on a new connection, so
    that every worker's first (slow) request is made before the load starts
    (and, for the agent sale, not while others queue for the agent's lock).
    Returns the ids the operations reported."""
    run = resolve(scenario)
    window = Window(0.0, 0.0)
    done = []
    for number in range(count):
        client = Client(server.port, window)
        try:
            ident = run(client, params, items[number % len(items)], f"{tag}-warm-{number}")
        except OperationFailed as exc:
            raise BenchError(f"a warm-up operation failed: {exc}") from exc
        finally:
            client.close()
        if ident:
            done.append(ident)
    return done


@dataclass
class ThreadJob:
    port: int
    scenario: str
    params: dict[str, Any]
    items: list[str]
    tag: str
    # time.monotonic() values (one clock for all processes on Linux)
    warm_from: float
    start_at: float
    stop_at: float


def _drive(job: ThreadJob, out: dict[str, Any]) -> None:
    run = resolve(job.scenario)
    window = Window(job.start_at, job.stop_at)
    client = Client(job.port, window)
    latencies: list[float] = []
    completed = failed = 0
    done: list[str] = []
    first_error = ""
    number = 0
    while time.monotonic() < job.warm_from:
        time.sleep(0.005)
    while True:
        began = time.monotonic()
        if began >= job.stop_at:
            break
        item = job.items[number % len(job.items)]
        key = f"{job.tag}-{number}"
        number += 1
        ok = True
        try:
            ident = run(client, job.params, item, key)
        except OperationFailed as exc:
            ok = False
            first_error = first_error or f"{key}: {exc}"
        else:
            if ident:
                done.append(ident)
        finished = time.monotonic()
        if window.holds(began, finished):
            if ok:
                completed += 1
                latencies.append(finished - began)
            else:
                failed += 1
    client.close()
    out.update(
        latencies=latencies,
        completed=completed,
        failed=failed,
        request_latencies=client.latencies,
        statuses=client.statuses,
        done=done,
        first_error=first_error,
    )


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
    # operations that completed / failed inside the window
    completed: int
    failed: int
    p50_ms: float  # per completed operation
    p99_ms: float
    requests: int
    statuses: dict[str, int]
    request_p50_ms: float
    request_p99_ms: float
    first_error: str
    # every id an operation reported, inside the window or not
    done: list[str] = field(default_factory=list)
    cpu: cpu.CpuReport | None = None

    @property
    def rate(self) -> float:
        """Completed operations per second in the timed window."""
        return self.completed / self.seconds if self.seconds else 0.0

    @property
    def request_rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def errors(self) -> int:
        """Requests in the window that did not complete an operation (for
        scenarios of one request per operation: every failed request)."""
        return self.failed


def percentile_ms(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000


def _sample_cpu(
    window: Window,
    find: cpu.GroupFinder,
    generators: list[int],
    out: list[cpu.CpuReport],
) -> None:
    def groups() -> dict[str, list[int]]:
        found = find()
        found["load generator"] = [pid for root in generators for pid in cpu.descendants(root)]
        return found

    time.sleep(max(0.0, window.start_at - time.monotonic()))
    before = cpu.snapshot(groups())
    opened = time.monotonic()
    time.sleep(max(0.0, window.stop_at - time.monotonic()))
    after = cpu.snapshot(groups())
    out.append(cpu.report(before, after, time.monotonic() - opened))


def run_load(
    port: int,
    scenario: str,
    params: dict[str, Any],
    items: list[str],
    *,
    tag: str,
    seconds: float,
    warmup: float,
    connections: int,
    processes: int,
    cpu_groups: cpu.GroupFinder | None = None,
) -> LoadResult:
    """`connections` threads spread over `processes` processes, each going
    round its own slice of `items`, running `scenario` for `warmup` +
    `seconds`; only operations and requests inside the last `seconds` are
    counted and timed (every id reported is listed). With `cpu_groups`
    (process groups by name), their CPU and the load generator's is sampled
    when the window opens and when it closes."""
    processes = max(1, min(processes, connections))
    now = time.monotonic()
    warm_from = now + 2.0  # the processes start in well under that
    start_at = warm_from + warmup
    stop_at = start_at + seconds
    slices = split(items, connections)
    jobs = [
        ThreadJob(port, scenario, params, chunk, f"{tag}-{index}", warm_from, start_at, stop_at)
        for index, chunk in enumerate(slices)
    ]
    pipes, children = [], []
    for group in split(jobs, processes):
        receiver, sender = _SPAWN.Pipe(duplex=False)
        child = _SPAWN.Process(target=_process, args=(group, sender))
        child.start()
        sender.close()
        pipes.append(receiver)
        children.append(child)
    sampled: list[cpu.CpuReport] = []
    sampler = None
    if cpu_groups is not None and cpu.available():
        pids = [child.pid for child in children if child.pid]
        sampler = threading.Thread(
            target=_sample_cpu,
            args=(Window(start_at, stop_at), cpu_groups, pids, sampled),
            daemon=True,
        )
        sampler.start()
    outs: list[dict[str, Any]] = []
    for receiver in pipes:
        try:
            outs.extend(receiver.recv())
        except EOFError as exc:
            raise BenchError("a load generator process died without an answer") from exc
    for child in children:
        child.join()
    if sampler is not None:
        sampler.join(STOP_SECONDS)
    latencies = [lat for out in outs for lat in out["latencies"]]
    request_latencies = [lat for out in outs for lat in out["request_latencies"]]
    statuses: Counter[str] = Counter()
    for out in outs:
        statuses.update(out["statuses"])
    return LoadResult(
        tag=tag,
        connections=len(jobs),
        processes=len(children),
        seconds=seconds,
        completed=sum(out["completed"] for out in outs),
        failed=sum(out["failed"] for out in outs),
        p50_ms=percentile_ms(latencies, 0.5),
        p99_ms=percentile_ms(latencies, 0.99),
        requests=sum(statuses.values()),
        statuses=dict(sorted(statuses.items())),
        request_p50_ms=percentile_ms(request_latencies, 0.5),
        request_p99_ms=percentile_ms(request_latencies, 0.99),
        first_error=next((out["first_error"] for out in outs if out["first_error"]), ""),
        done=[ident for out in outs for ident in out["done"]],
        cpu=sampled[0] if sampled else None,
    )
