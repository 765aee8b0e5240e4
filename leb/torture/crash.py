"""`leb torture crash`: top-ups over HTTP while the processes serving them
are killed.

Real processes on a fresh PostgreSQL database: gunicorn serving leb (two
workers) and two `leb worker` job workers, with an SMS gateway stand-in
(`Sink`) that records what a subscriber's phone would receive. A load driver
performs top-ups the way a client does; a chaos thread works through a
seeded schedule of kill -9 of the web server, of one gunicorn worker, of a
job worker, and of `pg_terminate_backend` on every connection the app holds,
restarting what it killed. Then the recovery jobs run until nothing is left
to do, and the database is checked (`checks`) together with what the phones
received.

The driver never sets Django up for the torture database: it talks HTTP to
the app and reads progress with plain SQL.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import random
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from leb.ops.bench import dbadmin
from leb.ops.bench.procs import call_in_child, environment

from .runs import Report, TortureError, child_environment, load_average

APP_NAME = "leb-torture"
CARD = "4242424242424242"
READY_SECONDS = 90.0
CLIENT_GIVE_UP_SECONDS = 180.0
QUIET_SECONDS = float(os.environ.get("LEB_TORTURE_QUIET_SECONDS", "240"))
RECEIPT_PREFIX = "leb: top-up of"
CHAOS = {"kill web": 2, "kill web worker": 3, "kill job worker": 3, "terminate connections": 3}


@dataclass
class CrashSettings:
    topups: int = 1000
    seed: int = 1
    clients: int = 4
    kill_every: float = 1.5
    lines: int = 100


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- What the phones receive ----------------------------------------------------------


class Sink:
    """An HTTP SMS gateway (leb.sms.backends.http) that keeps every message."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, str]] = []
        lock = threading.Lock()
        messages = self.messages

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with lock:
                    messages.append((str(body.get("to", "")), str(body.get("text", ""))))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- The processes ----------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, so split after ")".
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


@dataclass
class Cluster:
    var_dir: Path
    env: dict[str, str]
    port: int
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    starts: Counter[str] = field(default_factory=Counter)

    def _argv(self, name: str) -> list[str]:
        if name == "web":
            import gunicorn.config

            return [
                sys.executable,
                "-m",
                "gunicorn",
                "leb.wsgi:application",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                "2",
                "--worker-class",
                "gthread",
                "--threads",
                "4",
                "--graceful-timeout",
                "2",
                *(
                    ["--no-control-socket"]
                    if hasattr(gunicorn.config, "ControlSocketDisable")
                    else []
                ),
            ]
        return [sys.executable, "-m", "leb.cli", "worker", "--interval", "0.2"]

    def start(self, name: str) -> None:
        kind = "web" if name == "web" else "worker"
        url = self.env["LEB_DATABASE_URL"] + f"?application_name={APP_NAME}-{name}"
        log = (self.var_dir / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(  # noqa: S603
            self._argv(kind),
            env={**self.env, "LEB_DATABASE_URL": url},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.starts[name] += 1

    def kill(self, name: str) -> None:
        process = self.processes[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def kill_web_worker(self, rng: random.Random) -> bool:
        """kill -9 one gunicorn worker; the master starts another."""
        children = _children(self.processes["web"].pid)
        if not children:
            return False
        try:
            os.kill(rng.choice(sorted(children)), signal.SIGKILL)
        except ProcessLookupError:
            return False
        return True

    def revive(self) -> list[str]:
        """Start whatever died on its own (a worker whose connection was cut)."""
        revived = []
        for name, process in list(self.processes.items()):
            if process.poll() is not None:
                self.start(name)
                revived.append(name)
        return revived

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
        deadline = time.monotonic() + 15
        for process in self.processes.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{self.port}/healthz", timeout=2).ok:
                    return
            except requests.RequestException:
                pass
            if self.processes["web"].poll() is not None:
                break
            time.sleep(0.2)
        log = (self.var_dir / "web.log").read_text(errors="replace")[-3000:]
        raise TortureError(f"the web server did not come up:\n{log}")


def terminate_backends(database_url: str) -> int:
    """pg_terminate_backend on every connection the app's processes hold."""
    import psycopg

    settings = dbadmin.parse(database_url)
    with psycopg.connect(
        dbname=str(settings["NAME"]),
        user=settings.get("USER") or None,
        password=settings.get("PASSWORD") or None,
        host=settings.get("HOST") or None,
        port=settings.get("PORT") or None,
        autocommit=True,
    ) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND application_name LIKE %s",
            [f"{APP_NAME}-%"],
        ).fetchall()
    return sum(1 for (done,) in rows if done)


# --- The chaos ------------------------------------------------------------------------------


def chaos_schedule(seed: int, mean_gap: float, count: int) -> list[tuple[float, str]]:
    """(seconds to wait, event) pairs, from the seed alone."""
    rng = random.Random(f"chaos:{seed}")
    kinds = list(CHAOS)
    weights = [CHAOS[kind] for kind in kinds]
    return [
        (rng.uniform(0.3, 2 * mean_gap - 0.3), rng.choices(kinds, weights)[0]) for _ in range(count)
    ]


class Chaos(threading.Thread):
    def __init__(self, cluster: Cluster, database_url: str, settings: CrashSettings) -> None:
        super().__init__(name="torture-chaos", daemon=True)
        self.cluster = cluster
        self.database_url = database_url
        self.rng = random.Random(f"victims:{settings.seed}")
        self.schedule = chaos_schedule(settings.seed, settings.kill_every, 100_000)
        self.stopping = threading.Event()
        self.done: Counter[str] = Counter()
        self.lock = threading.Lock()

    def run(self) -> None:
        for wait, event in self.schedule:
            if self.stopping.wait(wait):
                return
            with self.lock:
                self.act(event)

    def act(self, event: str) -> None:
        cluster = self.cluster
        if event == "kill web":
            cluster.kill("web")
            self.done["kill -9 web server (master and workers)"] += 1
            cluster.start("web")
            # The next event waits for the restarted server: a server killed
            # while it boots would only measure how long booting takes.
            cluster.wait_ready()
        elif event == "kill web worker":
            if cluster.kill_web_worker(self.rng):
                self.done["kill -9 one gunicorn worker"] += 1
        elif event == "kill job worker":
            name = self.rng.choice(["worker-a", "worker-b"])
            cluster.kill(name)
            self.done["kill -9 job worker"] += 1
            cluster.start(name)
        else:
            self.done["pg_terminate_backend calls"] += 1
            self.done["connections terminated"] += terminate_backends(self.database_url)
        for name in cluster.revive():
            self.done[f"restarts of {name} that died on its own"] += 1

    def stop(self) -> None:
        self.stopping.set()
        self.join(30)


# --- The clients --------------------------------------------------------------------------


class Client:
    """One subscriber's browser and app: every request retried after a
    connection error or a 5xx with the same body and key, as a real client would."""

    def __init__(self, base: str, tally: Counter[str], lock: threading.Lock) -> None:
        self.base = base
        self.tally = tally
        self.lock = lock

    def note(self, name: str) -> None:
        with self.lock:
            self.tally[name] += 1

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        deadline = time.monotonic() + CLIENT_GIVE_UP_SECONDS
        pause = 0.1
        while True:
            try:
                response = requests.request(
                    method, self.base + path, timeout=15, allow_redirects=False, **kwargs
                )
                if response.status_code < 500:
                    return response
                self.note(f"retries after HTTP {response.status_code}")
            except requests.RequestException:
                self.note("retries after a connection error")
            if time.monotonic() > deadline:
                raise TortureError(f"{method} {path} never answered")
            time.sleep(pause)
            pause = min(pause * 2, 2.0)

    def pay_at_gateway(self, checkout: str) -> bool:
        """The hosted checkout: GET the form, POST the card. True once the
        gateway has decided (a 302 back to the merchant)."""
        while True:
            page = self.call("GET", checkout)
            if page.status_code == 302:
                return True  # decided before: the answer to an earlier POST was lost
            token = page.cookies.get("csrftoken") or ""
            match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
            if page.status_code != 200 or not match or not token:
                return False
            try:
                answer = requests.post(
                    self.base + checkout,
                    data={
                        "csrfmiddlewaretoken": match.group(1),
                        "number": CARD,
                        "expiry": "12/39",
                        "cvc": "123",
                        "name": "Crash Torture",
                    },
                    # The cookie is Secure (production settings) and this is plain
                    # HTTP on the loopback: send it back by hand.
                    headers={"Cookie": f"csrftoken={token}"},
                    timeout=15,
                    allow_redirects=False,
                )
            except requests.RequestException:
                self.note("retries after a connection error")
                continue
            if answer.status_code == 302:
                return True
            if answer.status_code < 500:
                return False
            self.note(f"retries after HTTP {answer.status_code}")

    def topup(self, number: int, msisdn: str, plan: str, finish: str, seed: int) -> dict[str, Any]:
        key = f"crash-{seed}-{number}"
        made = self.call(
            "POST",
            "/api/v1/orders",
            json={"number": msisdn, "plan_code": plan},
            headers={"Idempotency-Key": key},
        )
        if made.status_code not in (200, 201):
            self.note(f"order refused ({made.status_code})")
            return {"key": key, "paid": False}
        order = made.json()["public_id"]
        while True:
            started = self.call("POST", f"/api/v1/orders/{order}/payments", json={})
            if started.status_code != 201:
                self.note(f"payment refused ({started.status_code})")
                return {"key": key, "order": order, "paid": False}
            attempt = started.json()["attempt"]
            checkout = started.json()["checkout_url"]
            if self.pay_at_gateway(checkout):
                break
            self.note("checkout pages that did not take the card")
        if finish == "return":
            self.call("GET", f"/pay/return/{attempt}/")
        elif finish == "poll":
            self.call("GET", f"/api/v1/payments/{attempt}")
        self.note(f"clients finishing by {finish}")
        return {"key": key, "order": order, "attempt": attempt, "paid": True}


def plan_topups(settings: CrashSettings, msisdns: list[str]) -> list[tuple[int, str, str, str]]:
    """(number, line, plan, how the client finishes) for every top-up, from the seed."""
    from .world import PROMO_PLAN, SMALL_PLAN

    rng = random.Random(f"topups:{settings.seed}")
    return [
        (
            number,
            rng.choice(msisdns),
            rng.choice([SMALL_PLAN, PROMO_PLAN]),
            rng.choices(["return", "poll", "webhook only"], [5, 2, 3])[0],
        )
        for number in range(settings.topups)
    ]


# --- Waiting for recovery ---------------------------------------------------------------


OUTSTANDING = {
    "paid orders not fulfilled": "SELECT count(*) FROM topups_topuporder WHERE status = 'paid'",
    "captured payments not settled": (
        "SELECT count(*) FROM payments_paymentattempt a JOIN topups_topuporder o "
        "ON o.id = a.order_id WHERE a.provider_data->'gateway'->>'state' = 'succeeded' "
        "AND o.status NOT IN ('fulfilled', 'refunded', 'failed')"
    ),
    "messages waiting": "SELECT count(*) FROM notifications_notification WHERE status = 'pending'",
    "gateway webhooks waiting": (
        "SELECT count(*) FROM django_tasks_database_dbtaskresult "
        "WHERE task_path = 'leb.payments.tasks.deliver_sandbox_webhook' AND status = 'READY'"
    ),
}


def outstanding(database_url: str) -> dict[str, int]:
    import psycopg

    settings = dbadmin.parse(database_url)
    with psycopg.connect(
        dbname=str(settings["NAME"]),
        user=settings.get("USER") or None,
        password=settings.get("PASSWORD") or None,
        host=settings.get("HOST") or None,
        port=settings.get("PORT") or None,
        autocommit=True,
    ) as conn:
        return {
            name: int(conn.execute(sql).fetchone()[0])  # type: ignore[index]
            for name, sql in OUTSTANDING.items()
        }


def recovery_counts() -> dict[str, int]:
    """What the recovery jobs did, from their task results (in a child)."""
    from django_tasks_db.models import DBTaskResult

    from leb.payments.models import ProviderEvent

    counts: Counter[str] = Counter()
    for path, status, value in DBTaskResult.objects.values_list(
        "task_path", "status", "return_value"
    ):
        name = path.rsplit(".", 1)[-1]
        counts[f"tasks {name} {status.lower()}"] += 1
        if name == "recover_paid_orders_task" and isinstance(value, dict):
            counts["orders finished by the recovery job"] += int(value.get("done", 0))
        if name == "reconcile_payments_task" and isinstance(value, dict):
            counts["payments settled by reconciliation"] += int(value.get("settled", 0))
    counts["webhook events stored"] = ProviderEvent.objects.count()
    return dict(sorted(counts.items()))


def check_in_child(received: list[tuple[str, str]]) -> Any:
    """The database checks, and what the phones received: each fulfilled
    order's receipt at least once; deduplicated by its text, one per order."""
    from leb.lines.models import Line
    from leb.topups.models import OrderStatus, TopUpOrder

    from .checks import check_all

    checked = check_all(require_sent=True)
    fulfilled: Counter[str] = Counter()
    numbers = dict(Line.objects.values_list("pk", "phone_number__msisdn"))
    # The seeded first top-ups' receipts go out through the same gateway.
    for line_id in TopUpOrder.objects.filter(status=OrderStatus.FULFILLED).values_list(
        "line_id", flat=True
    ):
        fulfilled[numbers[line_id]] += 1
    receipts = [(to, text) for to, text in received if text.startswith(RECEIPT_PREFIX)]
    distinct: dict[str, set[str]] = {}
    for to, text in receipts:
        distinct.setdefault(to, set()).add(text)
    seen = sum(len(texts) for texts in distinct.values())
    checked.count("receipt texts received by the phones", len(receipts))
    checked.count("distinct receipts received (one per order)", seen)
    checked.count("receipts received more than once", len(receipts) - seen)
    short = [
        f"{number} ({len(distinct.get(number, ()))} of {n})"
        for number, n in fulfilled.items()
        if len(distinct.get(number, ())) != n
    ]
    if short:
        checked.fail(f"phones without one receipt per fulfilled order: {short[:5]}")
    return checked, recovery_counts()


# --- The run ----------------------------------------------------------------------------------


def run_crash(database_url: str, settings: CrashSettings, *, var_dir: str) -> Report:
    """`database_url` is an empty, migrated PostgreSQL database."""
    from .runs import require_postgres

    require_postgres(database_url)
    report = Report(
        title="leb torture crash",
        command=f"leb torture crash --topups {settings.topups} --seed {settings.seed}",
    )
    started = time.monotonic()
    var = Path(var_dir)
    base_env = child_environment(var_dir)
    with environment(base_env):
        msisdns = call_in_child(database_url, "leb.torture.world:seed_crash_world", settings.lines)
    sink = Sink()
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("LEB_")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.update(base_env)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "leb.settings",
            "LEB_DATABASE_URL": database_url.split("?", 1)[0],
            "LEB_DEBUG": "0",
            "LEB_SECRET_KEY": secrets.token_urlsafe(48),
            "LEB_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "LEB_SITE_URL": f"http://127.0.0.1:{port}",
            "LEB_LOG_LEVEL": "WARNING",
            "LEB_LOG_REQUESTS": "0",
            "LEB_SMS_BACKEND": "leb.sms.backends.http.SmsBackend",
            "LEB_SMS_HTTP_URL": f"http://127.0.0.1:{sink.port}/sms",
            "LEB_SMS_HTTP_TOKEN": secrets.token_hex(8),
            "LEB_API_LINE_CHECK_RATE": "",
            # Recovery runs often, so the run ends in seconds, not minutes.
            "LEB_RECOVERY_INTERVAL": "2",
            "LEB_RECOVERY_GRACE_SECONDS": "3",
            "LEB_PAYMENTS_RECONCILE_INTERVAL": "2",
            "LEB_PAYMENTS_RECONCILE_AFTER_SECONDS": "5",
            "LEB_NOTIFICATIONS_DELIVERY_INTERVAL": "2",
            "LEB_NOTIFICATIONS_CLAIM_SECONDS": "10",
            "LEB_NOTIFICATIONS_RETRY_SECONDS": "1",
            "LEB_PAYMENTS_WEBHOOK_RETRY_SECONDS": "1",
            "LEB_PAYMENTS_WEBHOOK_MAX_ATTEMPTS": "20",
            **{
                f"LEB_{name}": "3600"
                for name in (
                    "SWEEP_INTERVAL",
                    "ORDER_EXPIRY_INTERVAL",
                    "AUTOKEEP_INTERVAL",
                    "REMINDERS_INTERVAL",
                    "IVR_SESSION_PURGE_INTERVAL",
                    "VOUCHER_EXPIRY_INTERVAL",
                    "AGENTS_EXPIRY_INTERVAL",
                )
            },
        }
    )
    cluster = Cluster(var_dir=var, env=env, port=port)
    tally: Counter[str] = Counter()
    lock = threading.Lock()
    results: list[dict[str, Any]] = []
    chaos = Chaos(cluster, database_url, settings)
    try:
        cluster.start("web")
        cluster.start("worker-a")
        cluster.start("worker-b")
        cluster.wait_ready()
        plan = plan_topups(settings, msisdns)
        shares = [plan[i :: settings.clients] for i in range(settings.clients)]
        failures: list[str] = []

        def drive(share: list[tuple[int, str, str, str]]) -> None:
            client = Client(f"http://127.0.0.1:{port}", tally, lock)
            for number, msisdn, plan_code, finish in share:
                try:
                    outcome = client.topup(number, msisdn, plan_code, finish, settings.seed)
                except Exception as exc:
                    with lock:
                        failures.append(f"top-up {number}: {exc}")
                    continue
                with lock:
                    results.append(outcome)

        chaos.start()
        drivers = [threading.Thread(target=drive, args=(share,)) for share in shares]
        for thread in drivers:
            thread.start()
        for thread in drivers:
            thread.join()
        chaos.stop()
        load_seconds = time.monotonic() - started
        cluster.revive()
        cluster.wait_ready()
        deadline = time.monotonic() + QUIET_SECONDS
        quiet_rounds = 0
        left: dict[str, int] = {}
        while time.monotonic() < deadline and quiet_rounds < 3:
            left = outstanding(database_url)
            quiet_rounds = quiet_rounds + 1 if not any(left.values()) else 0
            cluster.revive()
            time.sleep(1.0)
        recovery_seconds = time.monotonic() - started - load_seconds
        cluster.stop()
    finally:
        chaos.stopping.set()
        cluster.stop()
        sink.stop()
    with environment(base_env):
        checked, recovered = call_in_child(
            database_url, "leb.torture.crash:check_in_child", list(sink.messages)
        )
    report.counts["top-ups attempted"] = settings.topups
    report.counts["top-ups paid at the gateway (client's view)"] = sum(
        1 for result in results if result.get("paid")
    )
    report.counts["clients that gave up"] = len(failures)
    report.counts.update(dict(sorted(tally.items())))
    report.counts.update(dict(sorted(chaos.done.items())))
    report.counts.update({f"starts of {name}": n for name, n in sorted(cluster.starts.items())})
    report.counts.update(recovered)
    report.counts["seconds of load under chaos"] = round(load_seconds)
    report.counts["seconds until quiet"] = round(recovery_seconds)
    for name, value in left.items():
        report.counts[f"still outstanding: {name}"] = value
    report.add_checks(checked)
    if failures:
        report.violations.append(f"{len(failures)} clients gave up: {failures[:3]}")
    if any(left.values()):
        report.violations.append(f"not quiet after {QUIET_SECONDS:.0f} s: {left}")
    report.seconds = time.monotonic() - started
    report.load = load_average()
    return report
