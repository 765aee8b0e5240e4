from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MylinesConfig(AppConfig):
    name = "leb.mylines"
    label = "mylines"
    verbose_name = _("My lines")
