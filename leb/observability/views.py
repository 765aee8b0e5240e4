"""/healthz, /readyz and /metrics.

The middleware answers these paths itself, before the host check and the
session, so a load balancer or Prometheus may call them by IP address; the
URL patterns point here too, so they also resolve and reverse normally."""

from __future__ import annotations

import logging
import threading

from django.conf import settings
from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, HttpResponse, JsonResponse

from . import metrics, requestid

logger = logging.getLogger(__name__)

# Once every migration is applied it stays so for this process's code, so the
# (slow) migration graph is loaded until the first success only.
_migrations_done = threading.Event()


def healthz(request: HttpRequest) -> JsonResponse:
    """The process is up and answering. Touches nothing else."""
    return JsonResponse({"status": "ok"})


def check_database() -> str:
    connection = connections[DEFAULT_DB_ALIAS]
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return "ok"


def check_migrations() -> str:
    if _migrations_done.is_set():
        return "ok"
    executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if plan:
        return f"{len(plan)} unapplied"
    _migrations_done.set()
    return "ok"


def check_cache() -> str:
    key = f"observability:readyz:{requestid.new_id()}"
    cache.set(key, "1", 10)
    found = cache.get(key)
    cache.delete(key)
    return "ok" if found == "1" else "value not read back"


def readyz(request: HttpRequest) -> JsonResponse:
    """Ready for traffic: database reachable, schema current, cache (Redis
    when configured) working. 503 naming each check that failed."""
    checks: dict[str, str] = {}
    try:
        checks["database"] = check_database()
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    if checks["database"] == "ok":
        try:
            checks["migrations"] = check_migrations()
        except Exception as exc:
            checks["migrations"] = f"error: {type(exc).__name__}"
    else:
        checks["migrations"] = "not checked: no database"
    cache_name = "redis" if settings.REDIS_URL else "cache"
    try:
        checks[cache_name] = check_cache()
    except Exception as exc:
        checks[cache_name] = f"error: {type(exc).__name__}"
    failed = sorted(name for name, result in checks.items() if result != "ok")
    if failed:
        logger.warning("Not ready: %s", ", ".join(f"{n} ({checks[n]})" for n in failed))
        return JsonResponse(
            {"status": "unavailable", "failed": failed, "checks": checks}, status=503
        )
    return JsonResponse({"status": "ok", "checks": checks})


def metrics_view(request: HttpRequest) -> HttpResponse:
    if not metrics.may_scrape(request):
        return HttpResponse("Forbidden\n", status=403, content_type="text/plain")
    return HttpResponse(metrics.render(), content_type="text/plain; version=0.0.4; charset=utf-8")
