from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.utils import translation
from django.utils.translation import gettext as _
from django_tasks import task

logger = logging.getLogger(__name__)


@task()
def send_topup_receipt(order_id: int) -> str:
    """Tell the line's owner the top-up went through. Enqueued inside the
    fulfilment transaction: the database task backend stores it in the same
    commit, so it runs if and only if the top-up happened."""
    from leb.lines.identifiers import format_msisdn

    from .models import TopUpOrder

    order = TopUpOrder.objects.select_related("line__phone_number", "line__owner").get(pk=order_id)
    owner = order.line.owner
    if owner is None or not owner.email:
        return "no recipient"
    with translation.override(settings.LANGUAGE_CODE):
        subject = _("Top-up %(receipt)s completed") % {"receipt": order.receipt_number}
        body = _("Your line %(number)s is valid until %(date)s. Receipt: %(receipt)s") % {
            "number": format_msisdn(order.line.msisdn),
            "date": order.valid_until_after.date().isoformat() if order.valid_until_after else "-",
            "receipt": order.receipt_number,
        }
    send_mail(subject, body, None, [owner.email])
    return "sent"


@task()
def recover_paid_orders_task() -> dict[str, int]:
    from .actions import recover_paid_orders

    result = recover_paid_orders()
    return {"done": result.done, "errors": result.errors}


@task()
def expire_unpaid_orders_task() -> dict[str, int]:
    from .actions import expire_unpaid_orders

    result = expire_unpaid_orders()
    return {"done": result.done, "errors": result.errors}
