"""The periodic jobs, defined in code. The scheduler mirrors this list into
PeriodicJob rows; intervals come from settings so each deployment can tune them."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings


@dataclass(frozen=True)
class ScheduledJob:
    name: str
    task_path: str
    interval_seconds: int


def scheduled_jobs() -> list[ScheduledJob]:
    # Read at call time, not import time, so overridden settings take effect.
    return [
        ScheduledJob("lines-sweep", "leb.lines.tasks.sweep_lines_task", settings.SWEEP_INTERVAL),
        ScheduledJob(
            "orders-recovery",
            "leb.topups.tasks.recover_paid_orders_task",
            settings.RECOVERY_INTERVAL,
        ),
        ScheduledJob(
            "payments-reconcile",
            "leb.payments.tasks.reconcile_payments_task",
            settings.PAYMENTS_RECONCILE_INTERVAL,
        ),
        ScheduledJob(
            "refunds-reconcile",
            "leb.payments.tasks.reconcile_refunds_task",
            settings.REFUNDS_RECONCILE_INTERVAL,
        ),
        ScheduledJob(
            "settlement-daily",
            "leb.finance.tasks.reconcile_yesterday_task",
            settings.SETTLEMENT_INTERVAL,
        ),
        ScheduledJob(
            "orders-expiry",
            "leb.topups.tasks.expire_unpaid_orders_task",
            settings.ORDER_EXPIRY_INTERVAL,
        ),
        ScheduledJob(
            "autokeep", "leb.autokeep.tasks.run_autokeep_task", settings.AUTOKEEP_INTERVAL
        ),
        ScheduledJob(
            "reminders-scan",
            "leb.reminders.tasks.scan_reminders_task",
            settings.REMINDERS_INTERVAL,
        ),
        ScheduledJob(
            "call-sessions-purge",
            "leb.telephony.tasks.purge_call_sessions_task",
            settings.IVR_SESSION_PURGE_INTERVAL,
        ),
        ScheduledJob(
            "notifications-delivery",
            "leb.notifications.tasks.deliver_due_notifications_task",
            settings.NOTIFICATIONS_DELIVERY_INTERVAL,
        ),
        ScheduledJob(
            "vouchers-expiry",
            "leb.vouchers.tasks.expire_vouchers_task",
            settings.VOUCHER_EXPIRY_INTERVAL,
        ),
        ScheduledJob(
            "agents-expiry",
            "leb.agents.tasks.expire_agent_topups_task",
            settings.AGENTS_EXPIRY_INTERVAL,
        ),
        ScheduledJob(
            "exports-purge",
            "leb.exports.tasks.purge_expired_exports_task",
            settings.EXPORTS_PURGE_INTERVAL,
        ),
    ]
