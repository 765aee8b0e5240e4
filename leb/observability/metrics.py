"""Prometheus metrics.

Two kinds:
- Counted in the process (HTTP requests, their latency, payment webhooks).
  Under gunicorn each worker process counts its own; with
  PROMETHEUS_MULTIPROC_DIR set, prometheus-client writes them to files there
  and a scrape adds up every process of the machine.
- Read from the database at scrape time (top-ups, reminders, task queue,
  sweep lag). The database is the one place that sees every web and worker
  machine, so these are exact cluster-wide whichever process answers; the
  result is cached for METRICS_DB_CACHE_SECONDS so several scrapers (or
  several web machines behind one name) cost one set of queries.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import secrets
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Min, Q
from django.http import HttpRequest
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from leb.common import clock
from leb.common.cache import cache_call

logger = logging.getLogger(__name__)

HTTP_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
# Label values from the outside (provider names, webhook outcomes) are kept
# only if short and plain, so a caller cannot blow up the number of series.
_LABEL = re.compile(r"[a-z0-9_-]{1,32}")

HTTP_REQUESTS = Counter(
    "leb_http_requests",
    "HTTP requests answered, by view, method and status code.",
    ["view", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "leb_http_request_duration_seconds",
    "Time to answer an HTTP request, by view and method.",
    ["view", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
PAYMENT_WEBHOOKS = Counter(
    "leb_payment_webhooks",
    "Payment provider webhooks received, by provider and outcome.",
    ["provider", "outcome"],
)

DB_CACHE_KEY = "observability:db-metrics:v1"


def label(value: object, fallback: str = "other") -> str:
    text = str(value or "").lower()
    return text if _LABEL.fullmatch(text) else fallback


def observe_request(view: str, method: str, status: int, seconds: float) -> None:
    method = method if method in HTTP_METHODS else "OTHER"
    HTTP_REQUESTS.labels(view, method, str(status)).inc()
    HTTP_LATENCY.labels(view, method).observe(seconds)


def observe_webhook(provider: str, outcome: str) -> None:
    known = {name.lower() for name in settings.PAYMENT_PROVIDERS}
    PAYMENT_WEBHOOKS.labels(
        provider if provider in known else "unknown", label(outcome, "unknown")
    ).inc()


# --- Read from the database -------------------------------------------------------


def database_samples(now: datetime) -> dict[str, Any]:
    """Plain data (so it can be cached) for the database-backed metrics."""
    from django_tasks_db.models import DBTaskResult

    from leb.lines.models import Line
    from leb.reminders.models import SentReminder
    from leb.topups.models import OrderStatus, TopUpOrder

    queues: dict[str, dict[str, float]] = {}
    # Ready and due now: what a worker would pick up next.
    for row in (
        DBTaskResult.objects.ready()
        .order_by()
        .values("queue_name")
        .annotate(depth=Count("id"), oldest=Min("enqueued_at"))
    ):
        queues[row["queue_name"]] = {
            "depth": row["depth"],
            "oldest_age": max(0.0, (now - row["oldest"]).total_seconds()),
        }
    running = dict(
        DBTaskResult.objects.running()
        .order_by()
        .values("queue_name")
        .annotate(n=Count("id"))
        .values_list("queue_name", "n")
    )
    failed_tasks = DBTaskResult.objects.failed().count()

    # Orders that ever reached each result: every column below is set once and
    # never cleared, so the counts only grow, as a Prometheus counter must.
    topups: list[tuple[str, str, int]] = []
    results = {
        "fulfilled": Count("pk", filter=Q(fulfilled_at__isnull=False)),
        "failed": Count("pk", filter=Q(status=OrderStatus.FAILED)),
        "expired": Count("pk", filter=Q(status=OrderStatus.EXPIRED)),
        "cancelled": Count("pk", filter=Q(status=OrderStatus.CANCELLED)),
        "refunded": Count("pk", filter=Q(refunded_at__isnull=False)),
    }
    for row in TopUpOrder.objects.order_by().values("channel").annotate(**results):
        topups.extend((row["channel"], result, row[result]) for result in results)

    reminders = [
        (row["kind"], row["outcome"], row["n"])
        for row in SentReminder.objects.order_by().values("kind", "outcome").annotate(n=Count("pk"))
    ]

    oldest_due = Line.objects.filter(next_transition_at__lte=now).aggregate(
        oldest=Min("next_transition_at")
    )["oldest"]
    sweep_lag = max(0.0, (now - oldest_due).total_seconds()) if oldest_due else 0.0
    return {
        "queues": queues,
        "running": running,
        "failed_tasks": failed_tasks,
        "topups": topups,
        "reminders": reminders,
        "sweep_lag": sweep_lag,
    }


class DatabaseCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "leb_metrics_database_up", "1 if the database metrics below could be read."
        )
        data = cache_get(DB_CACHE_KEY)
        if data is None:
            try:
                data = database_samples(clock.now())
            except Exception:
                # Whatever went wrong, the process metrics must still answer.
                logger.warning("Could not read the database metrics", exc_info=True)
                up.add_metric([], 0)
                yield up
                return
            ttl = settings.METRICS_DB_CACHE_SECONDS
            if ttl > 0:
                cache_set(DB_CACHE_KEY, data, ttl)
        up.add_metric([], 1)
        yield up

        depth = GaugeMetricFamily(
            "leb_task_queue_depth", "Tasks ready to run now, by queue.", labels=["queue"]
        )
        age = GaugeMetricFamily(
            "leb_task_queue_oldest_age_seconds",
            "Age of the oldest task ready to run, by queue (0: none waiting).",
            labels=["queue"],
        )
        for queue in settings.TASKS["default"].get("QUEUES", ["default"]):
            data["queues"].setdefault(queue, {"depth": 0, "oldest_age": 0.0})
        for queue, row in sorted(data["queues"].items()):
            depth.add_metric([queue], row["depth"])
            age.add_metric([queue], row["oldest_age"])
        yield depth
        yield age

        running = GaugeMetricFamily(
            "leb_tasks_running", "Tasks being run by a worker now, by queue.", labels=["queue"]
        )
        for queue, n in sorted(data["running"].items()):
            running.add_metric([queue], n)
        yield running
        yield GaugeMetricFamily(
            "leb_tasks_failed", "Task results stored as failed.", value=data["failed_tasks"]
        )

        topups = CounterMetricFamily(
            "leb_topups",
            "Top-up orders that reached a result, by channel and result.",
            labels=["channel", "result"],
        )
        for channel, result, n in data["topups"]:
            topups.add_metric([channel, result], n)
        yield topups

        reminders = CounterMetricFamily(
            "leb_reminders",
            "Reminders recorded (sent, or skipped as superseded), by kind and outcome.",
            labels=["kind", "outcome"],
        )
        for kind, outcome, n in data["reminders"]:
            reminders.add_metric([kind, outcome], n)
        yield reminders

        yield GaugeMetricFamily(
            "leb_sweep_lag_seconds",
            "How far the oldest due lifecycle transition (next_transition_at) is behind now.",
            value=data["sweep_lag"],
        )


def cache_get(key: str) -> Any:
    # Metrics must still answer when the cache (Redis) is down.
    return cache_call(lambda: cache.get(key), None)


def cache_set(key: str, value: Any, ttl: int) -> None:
    cache_call(lambda: cache.set(key, value, ttl), None)


class _ThisProcess(Collector):
    """The default registry: this process's counters and its process stats."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def multiprocess_dir() -> str:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


def render() -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_dir():
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    registry.register(DatabaseCollector())
    return generate_latest(registry)


# --- Who may scrape ------------------------------------------------------------------

_PROXY_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")


def may_scrape(request: HttpRequest) -> bool:
    """A matching bearer token, or a direct connection from an allowed network.

    A request that passed through a proxy (it carries a forwarding header) is
    never let in by address: behind a proxy on the same machine every public
    request would come from 127.0.0.1."""
    token = settings.METRICS_TOKEN
    auth = request.META.get("HTTP_AUTHORIZATION", "")
    if token and auth.startswith("Bearer "):
        return secrets.compare_digest(auth[7:].strip().encode(), token.encode())
    if any(request.META.get(header) for header in _PROXY_HEADERS):
        return False
    try:
        address = ipaddress.ip_address(str(request.META.get("REMOTE_ADDR", "")))
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address in network for network in allowed_networks())


def allowed_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    networks = []
    for item in settings.METRICS_ALLOWED_NETWORKS:
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            logger.warning("Ignoring LEB_METRICS_ALLOWED_NETWORKS entry %r", item)
    return networks
