"""What other apps hear from top-ups.

Receivers run inside the action's transaction, so what they write (the
receipt message in the outbox) commits or rolls back with the order. Top-ups
sit below the services that listen and never import them.
"""

from django.dispatch import Signal

# Sent by do_fulfil_order once the order is fulfilled, before its commit, with
# order=TopUpOrder, line=the locked Line, quote=the order's Quote, now=datetime.
order_fulfilled = Signal()
