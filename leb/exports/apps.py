from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ExportsConfig(AppConfig):
    name = "leb.exports"
    label = "exports"
    verbose_name = _("Exports")

    def ready(self) -> None:
        # Every app's exports.py adds its datasets now, in the web and the
        # worker processes alike.
        from .registry import discover

        discover()
