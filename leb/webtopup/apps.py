from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WebtopupConfig(AppConfig):
    name = "leb.webtopup"
    label = "webtopup"
    verbose_name = _("Online top-up")
