from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AgentsConfig(AppConfig):
    name = "leb.agents"
    label = "agents"
    verbose_name = _("Agents")

    def ready(self) -> None:
        # Registers the callback document kind with the notification outbox,
        # so a worker that never loads the admin still signs and sends them.
        # Receipts name the agent that sold an order through this lookup.
        from leb.catalog.models import Channel
        from leb.receipts.queries import register_seller_lookup

        from . import callbacks  # noqa: F401
        from .queries import seller_on_receipt

        register_seller_lookup(Channel.AGENT, seller_on_receipt)
