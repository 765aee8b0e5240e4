"""What other apps hear from payments.

Receivers run inside the action's transaction, so what they write commits or
rolls back with it. Payments sit below the services that listen (support's
disputes) and never import them.
"""

from django.dispatch import Signal

# Sent when a refund's status changes (confirmed by the provider, or failed),
# before the commit, with refund=Refund (its new status set), now=datetime.
refund_settled = Signal()
