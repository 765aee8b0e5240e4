"""`leb torture race`: many processes hitting the same lines, promotion,
vouchers and agent float at once, through the entry points the channels use.

The parent draws every operation from one seeded generator and deals them
to the processes round-robin, so a seed always attempts the same things;
which contender wins a race is up to the database. Each process runs its
operations in turn; an operation that races with itself (a duplicated
webhook, a repeated Idempotency-Key, one PIN from three channels) fires its
copies from threads released together, each thread on its own connection.
What must hold afterwards is checked from the database (`checks`).
"""

from __future__ import annotations

import json
import random
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from . import world as world_mod

T = TypeVar("T")

KINDS = {
    "web_topup": 20,
    "api_order": 14,
    "voucher": 12,
    "agent": 12,
    "autokeep": 6,
    "sweep": 6,
    "reminders": 6,
    "deliver": 4,
}
CHANNELS = ("web", "ivr", "ussd")
CARD = "4242424242424242"
DECLINED_CARD = "4000000000000002"
RETRIES = 4


@dataclass
class Settings:
    processes: int = 16
    operations: int = 2000
    seed: int = 1
    lines: int = 48
    autokeep: int = 8
    vouchers: int = 24
    agent_sales: int = 25
    promotion_uses: int = 12


@dataclass
class Op:
    number: int
    kind: str
    params: dict[str, Any] = field(default_factory=dict)


def draw_operations(settings: Settings, world: world_mod.World) -> list[Op]:
    """The run's operations, from the seed alone."""
    rng = random.Random(settings.seed)
    kinds = list(KINDS)
    weights = [KINDS[kind] for kind in kinds]
    lines = len(world.line_ids)
    ops = []
    for number in range(settings.operations):
        kind = rng.choices(kinds, weights)[0]
        params: dict[str, Any] = {}
        if kind in ("web_topup", "api_order"):
            params = {
                "line": rng.randrange(lines),
                "plan": rng.choice(world.plans),
                "copies": rng.randint(2, 4),
                "returns": rng.randint(0, 2),
                "declined": rng.random() < 0.1,
            }
        elif kind == "voucher":
            channels = rng.sample(CHANNELS, rng.randint(2, 3))
            line = rng.randrange(lines)
            same = rng.random() < 0.5
            params = {
                "pin": rng.randrange(len(world.pins)),
                "channels": channels,
                "lines": [line if same else rng.randrange(lines) for _ in channels],
            }
        elif kind == "agent":
            params = {"line": rng.randrange(lines), "copies": rng.randint(1, 3)}
        ops.append(Op(number, kind, params))
    return ops


# --- In a worker process ---------------------------------------------------------------


def together(fns: list[Callable[[], str]]) -> list[str]:
    """Run the callables in threads released at the same moment, each on its
    own connection; each result, or "error:<type>" with the trace kept."""
    from django.db import connections

    barrier = threading.Barrier(len(fns))
    results = [""] * len(fns)

    def run(i: int) -> None:
        try:
            barrier.wait(60)
            results[i] = fns[i]()
        except Exception as exc:
            results[i] = f"error:{type(exc).__name__}:{exc}"[:300]
            results[i] += "\n" + traceback.format_exc()[-1500:]
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(fns))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def retrying(fn: Callable[[], T], tally: Counter[str]) -> T:
    """A deadlock or lock timeout is retried: every action is idempotent."""
    from django.db import OperationalError

    for attempt in range(RETRIES + 1):
        try:
            return fn()
        except OperationalError:
            if attempt == RETRIES:
                raise
            tally["retries after a lock conflict"] += 1
            time.sleep(0.01 * (attempt + 1))
    raise AssertionError("unreachable")


def answered(send: Callable[[], Any], tally: Counter[str]) -> Any:
    """The response to a request, sent again after a 503: leb's answer when
    another transaction held a row past the lock timeout (nothing written;
    the documented reply is to try again, with the same Idempotency-Key)."""
    for attempt in range(RETRIES + 1):
        response = send()
        if response.status_code != 503 or attempt == RETRIES:
            return response
        tally["retries after a 503 (database busy)"] += 1
        time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


class Runner:
    def __init__(self, world: world_mod.World) -> None:
        from django.test import Client

        from leb.agents.models import Agent

        self.world = world
        self.client_class = Client
        self.agent = Agent.objects.get(pk=world.agent_id)
        self.tally: Counter[str] = Counter()
        self.orders_per_key: dict[str, set[str]] = {}
        self.errors: list[str] = []

    # --- bookkeeping ---------------------------------------------------------------

    def record(self, kind: str, outcome: str) -> None:
        if outcome.startswith("error:"):
            self.errors.append(f"{kind}: {outcome}")
            outcome = "error"
        self.tally[f"{kind}|{outcome}"] += 1

    # --- the operations ------------------------------------------------------------

    def create_order(self, op: Op, key: str) -> tuple[str, str]:
        """POST /api/v1/orders as a guest: (outcome, order public id)."""
        client = self.client_class()
        response = answered(
            lambda: client.post(
                "/api/v1/orders",
                json.dumps(
                    {
                        "number": self.world.msisdns[op.params["line"]],
                        "plan_code": op.params["plan"],
                    }
                ),
                content_type="application/json",
                headers={"Idempotency-Key": key},
            ),
            self.tally,
        )
        if response.status_code >= 500:
            return f"error:http {response.status_code}", ""
        body = response.json()
        if response.status_code not in (200, 201):
            return str(body.get("code", response.status_code)), ""
        self.orders_per_key.setdefault(key, set()).add(str(body["public_id"]))
        return ("created" if response.status_code == 201 else "replayed"), str(body["public_id"])

    def pay(self, op: Op, order_id: str) -> str:
        """Start a sandbox payment, pay at the hosted checkout, then deliver
        the gateway's webhook `copies` times and open the return page
        `returns` times, all at once."""
        from leb.payments.providers import sandbox

        client = self.client_class()
        response = answered(
            lambda: client.post(
                f"/api/v1/orders/{order_id}/payments",
                json.dumps({"provider": "sandbox"}),
                content_type="application/json",
            ),
            self.tally,
        )
        if response.status_code != 201:
            if response.status_code >= 500:
                return f"error:http {response.status_code}"
            return "payment " + str(response.json().get("code", response.status_code))
        attempt = str(response.json()["attempt"])
        card = DECLINED_CARD if op.params["declined"] else CARD
        response = answered(
            lambda: client.post(
                f"/pay/sandbox/{attempt}/",
                {"number": card, "expiry": "12/39", "cvc": "123", "name": "Torture"},
            ),
            self.tally,
        )
        if response.status_code != 302:
            return f"error:checkout answered {response.status_code}"
        body = self.webhook_body(attempt)
        if body is None:
            return "error:the gateway queued no webhook"

        def webhook() -> str:
            raw = body.encode()
            # A gateway sends its webhook again after any answer but 2xx.
            answer = answered(
                lambda: self.client_class().post(
                    "/webhooks/sandbox",
                    raw,
                    content_type="application/json",
                    headers={sandbox.SIGNATURE_HEADER: sandbox.sign(raw, int(time.time()))},
                ),
                self.tally,
            )
            if answer.status_code != 200:
                return f"error:webhook answered {answer.status_code}"
            return str(answer.json()["outcome"])

        def return_page() -> str:
            answer = answered(lambda: client.get(f"/pay/return/{attempt}/"), self.tally)
            if answer.status_code != 200:
                return f"error:return page answered {answer.status_code}"
            return "return page"

        deliveries = [webhook] * op.params["copies"] + [return_page] * op.params["returns"]
        outcomes = together(deliveries)
        for outcome in outcomes:
            self.record("webhook or return page", outcome)
        return "declined" if op.params["declined"] else "paid"

    def webhook_body(self, attempt: str) -> str | None:
        from django_tasks_db.models import DBTaskResult

        rows = DBTaskResult.objects.filter(
            task_path="leb.payments.tasks.deliver_sandbox_webhook"
        ).order_by("-enqueued_at")[:200]
        for row in rows:
            args = (row.args_kwargs or {}).get("args") or []
            if args and f'"attempt":"{attempt}"' in args[0]:
                return str(args[0])
        return None

    def web_topup(self, op: Op) -> str:
        outcome, order_id = retrying(
            lambda: self.create_order(op, f"race-web-{op.number}"), self.tally
        )
        if not order_id:
            return outcome
        return retrying(lambda: self.pay(op, order_id), self.tally)

    def api_order(self, op: Op) -> str:
        key = f"race-api-{op.number}"
        results = together(
            [lambda: retrying(lambda: "|".join(self.create_order(op, key)), self.tally)]
            * op.params["copies"]
        )
        ids = set()
        for result in results:
            outcome, _sep, order_id = result.partition("|")
            self.record("api order copy", outcome if not result.startswith("error:") else result)
            if order_id:
                ids.add(order_id)
        if not ids:
            return "refused"
        if len(ids) > 1:
            return f"error:one Idempotency-Key gave {len(ids)} orders"
        created = sum(1 for result in results if result.startswith("created|"))
        if created > 1:
            return f"error:one Idempotency-Key was answered 201 Created {created} times"
        order_id = ids.pop()
        return retrying(lambda: self.pay(op, order_id), self.tally)

    def voucher(self, op: Op) -> str:
        from leb.lines.models import Line
        from leb.vouchers.actions import VoucherRefused, do_redeem_voucher

        pin = self.world.pins[op.params["pin"]]

        def redeem(channel: str, line_index: int) -> Callable[[], str]:
            def attempt() -> str:
                line = Line.objects.get(pk=self.world.line_ids[line_index])
                # The lockout keys each channel passes (vouchers.views, telephony.ivr/ussd).
                if channel == "web":
                    keys = {"ip": f"198.51.100.{line_index % 250}", "line": str(line.pk)}
                else:
                    keys = {"line": str(line.pk), "caller": line.msisdn}
                try:
                    redemption = retrying(
                        lambda: do_redeem_voucher(
                            line=line, pin=pin, channel=channel, lockout_keys=keys
                        ),
                        self.tally,
                    )
                except VoucherRefused as exc:
                    return f"refused {exc.code}"
                return "redeemed" if redemption.order is not None else "refused"

            return attempt

        results = together(
            [
                redeem(channel, line)
                for channel, line in zip(op.params["channels"], op.params["lines"], strict=True)
            ]
        )
        for result in results:
            self.record("voucher entry", result)
        return "redeemed" if "redeemed" in results else "refused"

    def agent_topup(self, op: Op) -> str:
        from leb.agents.actions import AgentRefused, do_create_agent_topup

        external_id = f"race-{op.number}"

        def sell() -> str:
            try:
                result = retrying(
                    lambda: do_create_agent_topup(
                        self.agent,
                        external_id=external_id,
                        msisdn=self.world.msisdns[op.params["line"]],
                        plan_code=world_mod.SMALL_PLAN,
                        allow_repeat=True,
                    ),
                    self.tally,
                )
            except AgentRefused as exc:
                return f"refused {exc.code}"
            topup = result.topup
            if result.replayed:
                return "replayed"
            return "sold" if topup.status == "completed" else f"refused {topup.reason}"

        results = together([sell] * op.params["copies"])
        for result in results:
            self.record("agent sale copy", result)
        sold = [r for r in results if r == "sold"]
        if len(sold) > 1:
            return f"error:one external id sold {len(sold)} times"
        return "sold" if sold else (results[0] if results else "refused")

    def job(self, kind: str) -> str:
        from leb.autokeep.actions import do_run_autokeep
        from leb.lines.actions import sweep_lines
        from leb.notifications.delivery import deliver_due_notifications
        from leb.reminders.actions import scan_reminders

        jobs: dict[str, Callable[[], Any]] = {
            "autokeep": do_run_autokeep,
            "sweep": sweep_lines,
            "reminders": scan_reminders,
            "deliver": deliver_due_notifications,
        }
        retrying(lambda: str(jobs[kind]()), self.tally)
        return "ran"

    def run(self, op: Op) -> None:
        try:
            if op.kind == "web_topup":
                outcome = self.web_topup(op)
            elif op.kind == "api_order":
                outcome = self.api_order(op)
            elif op.kind == "voucher":
                outcome = self.voucher(op)
            elif op.kind == "agent":
                outcome = self.agent_topup(op)
            else:
                outcome = self.job(op.kind)
        except Exception as exc:
            outcome = (
                f"error:{type(exc).__name__}:{exc}"[:300] + "\n" + traceback.format_exc()[-1500:]
            )
        self.record(op.kind, outcome)


def worker(job: dict[str, Any], start: Callable[[], None]) -> dict[str, Any]:
    """One process: its share of the operations, in order."""
    from django.db import connection

    connection.ensure_connection()
    runner = Runner(job["world"])
    start()
    for op in job["ops"]:
        runner.run(op)
    connection.close()
    return {
        "tally": dict(runner.tally),
        "orders_per_key": {key: sorted(ids) for key, ids in runner.orders_per_key.items()},
        "errors": runner.errors[:20],
    }


def check() -> Any:
    """After the run, in a fresh process."""
    from .checks import check_all

    return check_all()


def check_autokeep(world: world_mod.World) -> list[str]:
    """Auto-keep charged each due line at most once, however many runs raced."""
    from django.db.models import Count

    from leb.topups.models import OrderStatus, TopUpOrder

    doubled = (
        TopUpOrder.objects.filter(
            channel="auto",
            line_id__in=world.autokeep_line_ids,
            status__in=[OrderStatus.PAID, OrderStatus.FULFILLED],
        )
        .values("line_id")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
    )
    return [f"auto-keep topped up line {row['line_id']} {row['n']} times" for row in doubled]
