from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TortureConfig(AppConfig):
    name = "leb.torture"
    label = "torture"
    verbose_name = _("Torture")
