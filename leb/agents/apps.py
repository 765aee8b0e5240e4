from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AgentsConfig(AppConfig):
    name = "leb.agents"
    label = "agents"
    verbose_name = _("Agents")

    def ready(self) -> None:
        # Registers the callback document kind with the notification outbox,
        # so a worker that never loads the admin still signs and sends them.
        from . import callbacks  # noqa: F401
