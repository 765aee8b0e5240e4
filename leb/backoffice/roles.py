"""The three staff roles and what each may see and do.

A role is a Django group named after it. Its permissions are listed here and
nowhere else: a migration creates the groups and every `migrate` puts them
back in step (new models bring new permissions), so editing a role means
editing this file. Staff get a role by being put in its group; superusers
keep every permission.

- support: looks up lines, numbers, orders, payments, messages and eSIM
  profiles, answers tickets, lifts lockouts, activates lines, orders and
  re-downloads eSIMs, records real-name registrations, escalates tickets to
  disputes, refunds top-ups and disputes up to LEB_SUPPORT_REFUND_LIMITS, and
  exports orders and receipts.
- finance: the books (and the prepaid liability report), orders and
  payments, agents' deposits (record and approve), agent top-up reversals,
  the agent sales report, voucher batches and distributors, manual top-ups
  and refunds (disputes too) of any amount, the audit log; exports of
  orders, receipts, the ledger, agents' statements and the settlement; the
  daily settlement with the providers (runs, mismatches, reconciling a day).
- admin: the catalog (plans, promotions, free-amount rules), number policies
  and numbers, agents, their keys and their portal members, announcements,
  staff accounts and their roles, periodic jobs; and everything support and
  finance may do.
"""

from __future__ import annotations

from typing import Any

SUPPORT = "support"
FINANCE = "finance"
ADMIN = "admin"


def _crud(label: str, *verbs: str) -> list[str]:
    app, model = label.split(".")
    return [f"{app}.{verb}_{model}" for verb in verbs]


_LOOK_UP = [
    *_crud("lines.line", "view"),
    *_crud("lines.lineevent", "view"),
    *_crud("lines.phonenumber", "view"),
    *_crud("lines.numberpolicy", "view"),
    *_crud("catalog.plan", "view"),
    *_crud("catalog.promotion", "view"),
    *_crud("catalog.freeamountrule", "view"),
    *_crud("topups.topuporder", "view"),
    *_crud("payments.paymentattempt", "view"),
    *_crud("payments.providerevent", "view"),
    *_crud("payments.refund", "view"),
    *_crud("support.dispute", "view"),
    *_crud("notifications.notification", "view"),
    *_crud("reminders.sentreminder", "view"),
    *_crud("autokeep.autokeeprule", "view"),
    *_crud("autokeep.autokeeprun", "view"),
    *_crud("autokeep.savedpaymentmethod", "view"),
    *_crud("vouchers.voucher", "view"),
    *_crud("vouchers.voucherbatch", "view"),
    *_crud("agents.agent", "view"),
    *_crud("agents.agentmember", "view"),
    *_crud("agents.agenttopup", "view"),
    *_crud("provisioning.profile", "view"),
    *_crud("provisioning.profileevent", "view"),
    *_crud("provisioning.es2call", "view"),
]

ROLE_PERMISSIONS: dict[str, list[str]] = {
    SUPPORT: [
        *_LOOK_UP,
        *_crud("lines.line", "change"),
        # order, release, cancel and re-download eSIMs; register and look up
        # real-name registrations (every look is audited)
        *_crud("provisioning.profile", "change"),
        *_crud("lines.realnameregistration", "view", "add"),
        *_crud("support.ticket", "view", "change"),
        # escalate a ticket to a dispute, reject or close it; refund it up to the limit
        *_crud("support.dispute", "add", "change"),
        *_crud("security.lockout", "view", "delete"),
        *_crud("auth.user", "view"),
        "topups.refund_topuporder",
        # exports of what support may look up (leb.exports, docs/exports.md)
        *_crud("exports.exportjob", "view"),
        "exports.export_orders",
        "exports.export_receipts",
    ],
    FINANCE: [
        *_LOOK_UP,
        *_crud("ledger.account", "view"),
        *_crud("ledger.transfer", "view"),
        *_crud("ledger.transfergroup", "view"),
        "ledger.view_liability_report",
        *_crud("topups.receiptcounter", "view"),
        *_crud("topups.topuporder", "add", "change"),
        "topups.refund_topuporder",
        "topups.refund_any_topuporder",
        # refund disputes of any amount, reject or close them
        *_crud("support.dispute", "change"),
        *_crud("agents.agentdeposit", "view", "add", "change"),
        *_crud("agents.agenttopup", "change"),
        "agents.view_agent_sales",
        *_crud("vouchers.voucherbatch", "change"),
        *_crud("vouchers.voucher", "change"),
        *_crud("vouchers.distributor", "view", "add", "change"),
        *_crud("vouchers.distributorpayment", "view", "add"),
        *_crud("audit.auditentry", "view"),
        # exports: orders and receipts, and the books, agents' statements and
        # the settlement runs and mismatches
        *_crud("exports.exportjob", "view"),
        "exports.export_orders",
        "exports.export_receipts",
        "exports.export_ledger",
        "exports.export_agent_statements",
        "exports.export_settlement",
        *_crud("finance.settlementrun", "view"),
        *_crud("finance.mismatch", "view"),
        "finance.reconcile_settlement",
    ],
}
ROLE_PERMISSIONS[ADMIN] = sorted(
    {
        *ROLE_PERMISSIONS[SUPPORT],
        *ROLE_PERMISSIONS[FINANCE],
        *_crud("catalog.plan", "add", "change"),
        *_crud("catalog.promotion", "add", "change"),
        *_crud("catalog.freeamountrule", "add", "change"),
        *_crud("catalog.promotionredemption", "view"),
        # import lines from a supplier's CSV file (the line list's "Import lines")
        *_crud("lines.line", "add"),
        *_crud("lines.numberpolicy", "add", "change"),
        *_crud("lines.phonenumber", "add", "change"),
        *_crud("agents.agent", "add", "change"),
        *_crud("agents.agentapikey", "view", "add", "change"),
        *_crud("agents.agentmember", "add", "change", "delete"),
        *_crud("announcements.announcement", "view", "add", "change", "delete"),
        *_crud("auth.user", "add", "change"),
        *_crud("auth.group", "view"),
        *_crud("otp_totp.totpdevice", "view", "delete"),
        *_crud("api.personaltoken", "view", "change"),
        *_crud("jobs.periodicjob", "view", "change"),
        *_crud("notifications.notificationpreference", "view"),
        *_crud("reminders.calendarfeed", "view"),
        *_crud("payments.sandboxvaultedcard", "view"),
        *_crud("autokeep.methodsetup", "view"),
        *_crud("django_tasks_database.dbtaskresult", "view"),
        *_crud("provisioning.simulatedprofile", "view"),
        *_crud("provisioning.simulatedcall", "view"),
    }
)


def sync_roles(permission_model: Any, group_model: Any) -> list[str]:
    """Create the role groups and set their permissions to the lists above.
    Returns the listed permissions that do not exist (a typo, or a model
    that was removed), so a test can insist on none."""
    missing: list[str] = []
    for role, names in ROLE_PERMISSIONS.items():
        wanted = []
        for name in names:
            app_label, codename = name.split(".")
            found = permission_model.objects.filter(
                content_type__app_label=app_label, codename=codename
            ).first()
            if found is None:
                missing.append(name)
            else:
                wanted.append(found)
        group, _created = group_model.objects.get_or_create(name=role)
        group.permissions.set(wanted)
    return sorted(set(missing))


def sync_roles_after_migrate(sender: Any, **kwargs: Any) -> None:
    from django.contrib.auth.models import Group, Permission

    # Once per migrate, after the last app's permissions exist.
    if sender.label != "backoffice":
        return
    sync_roles(Permission, Group)
