from django.db import models
from django.utils.translation import gettext_lazy as _


class AuditAction(models.TextChoices):
    """Every name an audit entry may carry: `record()` refuses any other, so
    the log can be read and filtered by a closed list (and shown in words)."""

    # Lines and numbers
    LINE_ACTIVATE = "line.activate", _("Line activated")
    LINE_OWNER = "line.owner", _("Line owner changed")
    LINE_IMPORT = "line.import", _("Lines imported from a CSV file")
    NUMBERPOLICY_ADD = "numberpolicy.add", _("Number policy added")
    NUMBERPOLICY_CHANGE = "numberpolicy.change", _("Number policy changed")
    LINES_RESCHEDULE = "lines.reschedule", _("Line dates rescheduled after a policy change")
    PHONENUMBER_ADD = "phonenumber.add", _("Phone number added")
    PHONENUMBER_CHANGE = "phonenumber.change", _("Phone number changed")
    LINE_REAL_NAME_REGISTER = "line.real_name_register", _("Real-name registration recorded")
    REAL_NAME_VIEW = "real_name.view", _("Real-name registration viewed")
    REAL_NAME_LIST = "real_name.list", _("Real-name registrations listed")
    # eSIM provisioning (profile states)
    ESIM_ORDERED = "esim.ordered", _("eSIM download order placed")
    ESIM_CONFIRMED = "esim.confirmed", _("eSIM order confirmed")
    ESIM_RELEASED = "esim.released", _("eSIM released for download")
    ESIM_CANCELLED = "esim.cancelled", _("eSIM order cancelled")
    ESIM_DOWNLOADED = "esim.downloaded", _("eSIM downloaded to a phone")
    ESIM_INSTALLED = "esim.installed", _("eSIM installed on a phone")
    ESIM_ENABLED = "esim.enabled", _("eSIM enabled on a phone")
    ESIM_DELETED = "esim.deleted", _("eSIM deleted from a phone")
    ESIM_REDOWNLOAD = "esim.redownload", _("eSIM download again requested")
    # Catalog
    PLAN_ADD = "plan.add", _("Plan added")
    PLAN_CHANGE = "plan.change", _("Plan changed")
    PLAN_RETIRE = "plan.retire", _("Plan taken off sale")
    PLAN_DELETE = "plan.delete", _("Unused plan removed")
    FREEAMOUNTRULE_ADD = "freeamountrule.add", _("Free-amount rule added")
    FREEAMOUNTRULE_CHANGE = "freeamountrule.change", _("Free-amount rule changed")
    PROMOTION_ADD = "promotion.add", _("Promotion added")
    PROMOTION_CHANGE = "promotion.change", _("Promotion changed")
    PROMOTION_END = "promotion.end", _("Promotion ended")
    # Top-ups and payments
    TOPUP_MANUAL = "topup.manual", _("Manual top-up")
    TOPUP_REFUND = "topup.refund", _("Top-up refunded")
    TOPUP_REFUND_PART = "topup.refund_part", _("Top-up refunded in part")
    PAYMENT_REFUND = "payment.refund", _("Payment refunded at the provider")
    PAYMENT_REFUND_REQUEST = "payment.refund.request", _("Refund requested at the provider")
    PAYMENT_REFUND_CONFIRM = "payment.refund.confirm", _("Refund confirmed by the provider")
    PAYMENT_REFUND_FAIL = "payment.refund.fail", _("Refund failed at the provider")
    PAYMENT_REFUND_RETRY = "payment.refund.retry", _("Refund asked again at the provider")
    PAYMENT_AMOUNT_MISMATCH = "payment.amount_mismatch", _("Payment refused: wrong amount")
    PAYMENT_PAID_TWICE = "payment.paid_twice", _("Payment refused: order already paid")
    PAYMENT_METHOD_SAVE = "payment_method.save", _("Saved payment method added")
    PAYMENT_METHOD_REMOVE = "payment_method.remove", _("Saved payment method removed")
    # API access
    API_TOKEN_CREATE = "api_token.create", _("API token created")
    API_TOKEN_REVOKE = "api_token.revoke", _("API token revoked")
    # Vouchers
    DISTRIBUTOR_ADD = "distributor.add", _("Distributor added")
    DISTRIBUTOR_CHANGE = "distributor.change", _("Distributor changed")
    VOUCHER_BATCH_GENERATE = "voucher.batch.generate", _("Voucher batch generated")
    VOUCHER_BATCH_DISTRIBUTE = "voucher.batch.distribute", _("Voucher batch distributed")
    VOUCHER_BATCH_ACTIVATE = "voucher.batch.activate", _("Voucher batch activated")
    VOUCHER_BLOCK = "voucher.block", _("Vouchers blocked")
    VOUCHER_EXPIRE = "voucher.expire", _("Vouchers expired")
    # Finance
    SETTLEMENT_RECONCILE = "settlement.reconcile", _("Day's settlement reconciled")
    DISTRIBUTOR_PAYMENT = "distributor.payment", _("Distributor payment recorded")
    # Agents
    AGENT_ADD = "agent.add", _("Agent added")
    AGENT_CHANGE = "agent.change", _("Agent changed")
    AGENT_CREATE = "agent.create", _("Agent created")
    AGENT_ACTIVE = "agent.active", _("Agent reactivated")
    AGENT_SUSPENDED = "agent.suspended", _("Agent suspended")
    AGENT_TERMINATED = "agent.terminated", _("Agent terminated")
    AGENT_CHANNELS = "agent.channels", _("Agent's official channels changed")
    AGENT_DEPOSIT_RECORD = "agent.deposit.record", _("Agent deposit recorded")
    AGENT_DEPOSIT_APPROVE = "agent.deposit.approve", _("Agent deposit approved")
    AGENT_DEPOSIT_REJECT = "agent.deposit.reject", _("Agent deposit rejected")
    AGENT_KEY_CREATE = "agent.key.create", _("Agent API key created")
    AGENT_KEY_ROTATE = "agent.key.rotate", _("Agent API key rotated")
    AGENT_KEY_REVOKE = "agent.key.revoke", _("Agent API key revoked")
    AGENT_TOPUP_REVERSE = "agent.topup.reverse", _("Agent top-up reversed")
    AGENT_SALES_EXPORT = "agent.sales_report.export", _("Agent sales report exported")
    AGENT_MEMBERS = "agent.members", _("Agent's portal members changed")
    AGENT_CALLBACK_URL = "agent.callback_url", _("Agent's callback URL changed")
    AGENT_PORTAL_SALE = "agent.portal.sale", _("Top-up sold in the agent portal")
    # Support
    TICKET_OPEN = "ticket.open", _("Ticket opened")
    TICKET_REPLY = "ticket.reply", _("Ticket answered")
    TICKET_CHANGE = "ticket.change", _("Ticket changed")
    TICKET_CLOSE = "ticket.close", _("Ticket closed")
    DISPUTE_OPEN = "dispute.open", _("Ticket escalated to a dispute")
    DISPUTE_REFUND = "dispute.refund", _("Dispute refund requested")
    DISPUTE_REFUNDED = "dispute.refunded", _("Dispute refunded")
    DISPUTE_REJECT = "dispute.reject", _("Dispute rejected")
    DISPUTE_CLOSE = "dispute.close", _("Dispute closed")
    # Exports
    EXPORT_REQUEST = "export.request", _("Export requested")
    EXPORT_DOWNLOAD = "export.download", _("Export downloaded")


class AuditEntry(models.Model):
    """Hash-chained record of staff actions and money movements: each entry's
    hash covers its content and the previous entry's hash, so an edited or
    deleted row breaks the chain (`leb audit verify`)."""

    at = models.DateTimeField(_("at"), db_index=True)
    actor = models.CharField(_("actor"), max_length=100)
    action = models.CharField(_("action"), max_length=60, choices=AuditAction.choices)
    target = models.CharField(_("target"), max_length=100)
    data = models.JSONField(_("details"), default=dict)
    prev_hash = models.CharField(_("previous hash"), max_length=64)
    entry_hash = models.CharField(_("hash"), max_length=64, unique=True)

    class Meta:
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit entries")
        ordering = ["-pk"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor} {self.action} {self.target}"
