"""Request ids, per-request metrics and the health endpoints.

First in MIDDLEWARE, so it times the whole stack, sees every response (the
inner handlers turn exceptions into responses) and can answer /healthz,
/readyz and /metrics before the host check."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from . import metrics, requestid, views

logger = logging.getLogger("leb.http")

DIRECT = {
    "/healthz": ("healthz", views.healthz),
    "/readyz": ("readyz", views.readyz),
    "/metrics": ("metrics", views.metrics_view),
}


class ObservabilityMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = requestid.accept(request.headers.get(requestid.HEADER))
        request.request_id = request_id  # type: ignore[attr-defined]
        started = time.perf_counter()
        # Cleared on request_finished (signals.py), after Django's own response log.
        requestid.set_current(request_id)
        direct = DIRECT.get(request.path_info)
        if direct is not None and request.method in ("GET", "HEAD"):
            view_name, view = direct
            response = view(request)
        else:
            response = self.get_response(request)
            view_name = self.view_name(request)
        seconds = time.perf_counter() - started
        response[requestid.HEADER] = request_id
        metrics.observe_request(view_name, request.method or "", response.status_code, seconds)
        if view_name == "payments:webhook":
            self.count_webhook(request, response)
        if settings.LOG_REQUESTS:
            logger.info(
                "%s %s %s %.1fms",
                request.method,
                request.path,
                response.status_code,
                seconds * 1000,
                extra={
                    "method": request.method,
                    "path": request.path,
                    "view": view_name,
                    "status": response.status_code,
                    "duration_ms": round(seconds * 1000, 1),
                },
            )
        return response

    @staticmethod
    def view_name(request: HttpRequest) -> str:
        # The URL pattern's name, never the raw path: one series per view.
        match = getattr(request, "resolver_match", None)
        if match is None:
            return "unmatched"
        return match.view_name or match._func_path or "unnamed"

    @staticmethod
    def count_webhook(request: HttpRequest, response: HttpResponse) -> None:
        match = request.resolver_match
        provider = str(match.kwargs.get("provider", "")) if match else ""
        outcome = f"http_{response.status_code}"
        if response.status_code == 200 and not getattr(response, "streaming", False):
            try:
                outcome = str(json.loads(response.content).get("outcome", "received"))
            except (ValueError, AttributeError):
                outcome = "received"
        metrics.observe_webhook(provider, outcome)
