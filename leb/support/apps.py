from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SupportConfig(AppConfig):
    name = "leb.support"
    label = "support"
    verbose_name = _("Support")

    def ready(self) -> None:
        from leb.payments.signals import refund_settled

        from .actions import note_refund_settled

        refund_settled.connect(note_refund_settled, dispatch_uid="support.dispute_refunds")
