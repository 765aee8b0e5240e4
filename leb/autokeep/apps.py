from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AutokeepConfig(AppConfig):
    name = "leb.autokeep"
    label = "autokeep"
    verbose_name = _("Auto-keep")
