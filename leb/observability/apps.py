from __future__ import annotations

import os

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ObservabilityConfig(AppConfig):
    name = "leb.observability"
    label = "observability"
    verbose_name = _("Observability")

    def ready(self) -> None:
        from . import signals

        signals.connect()
        # prometheus-client writes there on the first counted request; a
        # missing folder would turn every request into an error.
        metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
        if metrics_dir:
            os.makedirs(metrics_dir, exist_ok=True)
