"""What must hold after a torture run, read from the database alone.

Both runs end here. Every check compares two records that are written by
different code: the provider's own record of what it captured against the
orders, the ledger's groups against the orders' states, the line histories
against the receipts, the promotion budgets against their redemptions, the
agent floats against their sales, the vouchers against their orders and the
outbox against the fulfilled orders. A planted double credit or a lost
payment fails it (leb/torture/tests/test_checks.py).

Runs in a process that Django was set up for the torture database.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

# The sandbox gateway's own record of a captured payment (provider_data.gateway.state).
CAPTURED = "succeeded"
# A captured payment that leb refused to turn into a top-up: finance refunds it.
REFUSED_CAPTURES = ("paid_twice", "amount_mismatch")


@dataclass
class Checked:
    """Counts (name -> number, in the order they were found) and violations."""

    counts: dict[str, int] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def count(self, name: str, value: int) -> None:
        self.counts[name] = value

    def fail(self, message: str) -> None:
        self.violations.append(message)

    def merge(self, other: Checked) -> None:
        self.counts.update(other.counts)
        self.violations.extend(other.violations)


def _short(items: list[Any], limit: int = 5) -> str:
    shown = ", ".join(str(item) for item in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def check_orders(result: Checked) -> None:
    """Every paid order fulfilled exactly once; no credit without an order."""
    from leb.catalog.quotes import Quote
    from leb.ledger.models import AccountKind, Transfer, TransferGroup
    from leb.lines.models import LineEvent, LineEventKind
    from leb.topups.models import OrderStatus, TopUpOrder

    orders = list(
        TopUpOrder.objects.values(
            "pk",
            "public_id",
            "status",
            "paid_at",
            "refund_due",
            "quote",
            "receipt_number",
            "payment_provider",
            "payment_reference",
            "channel",
        )
    )
    by_status = Counter(order["status"] for order in orders)
    for status in OrderStatus.values:
        result.count(f"orders {status}", by_status.get(status, 0))
    groups = set(
        TransferGroup.objects.filter(idempotency_key__endswith=":fulfil").values_list(
            "idempotency_key", flat=True
        )
    )
    # Wallet credits by ledger group: only a top-up's fulfilment credits a wallet.
    credits: dict[str, int] = defaultdict(int)
    for key, amount in Transfer.objects.filter(credit_account__kind=AccountKind.WALLET).values_list(
        "group__idempotency_key", "amount"
    ):
        credits[key] += amount
    topped_up = Counter(
        str((data or {}).get("order", ""))
        for data in LineEvent.objects.filter(kind=LineEventKind.TOPPED_UP).values_list(
            "data", flat=True
        )
    )
    lost, unfulfilled_paid, wrong_credit, double_history, missing = [], [], [], [], []
    fulfilled_refs = set()
    for order in orders:
        ref = f"order:{order['pk']}:fulfil"
        public = str(order["public_id"])
        done = order["status"] in (OrderStatus.FULFILLED, OrderStatus.REFUNDED)
        if done:
            fulfilled_refs.add(ref)
            if ref not in groups or not order["receipt_number"]:
                missing.append(order["pk"])
            frozen = Quote.from_dict(order["quote"])
            # Credit and bonus go in; a restore fee is a separate debit of the group.
            expected = frozen.credit + frozen.bonus_credit
            if credits.get(ref, 0) != expected:
                wrong_credit.append(f"{order['pk']} ({credits.get(ref, 0)} != {expected})")
            if topped_up.get(public, 0) != 1:
                double_history.append(f"{order['pk']} ({topped_up.get(public, 0)} top-up events)")
        elif ref in groups or topped_up.get(public, 0):
            wrong_credit.append(f"{order['pk']} (credited while {order['status']})")
        if order["status"] == OrderStatus.PAID:
            unfulfilled_paid.append(order["pk"])
        elif (
            order["paid_at"] is not None
            and not done
            and not (order["status"] == OrderStatus.FAILED and order["refund_due"])
        ):
            lost.append(order["pk"])
    # A partial refund folded back into its order's full refund returns credit too.
    stray = sorted(
        key
        for key in credits
        if key not in fulfilled_refs and not key.endswith((":reversal", ":folded"))
    )
    receipts = Counter(order["receipt_number"] for order in orders if order["receipt_number"])
    doubled_receipts = sorted(number for number, n in receipts.items() if n > 1)
    result.count("paid orders not fulfilled", len(unfulfilled_paid) + len(lost))
    result.count("wallet credits without a fulfilled order", len(stray))
    if unfulfilled_paid:
        result.fail(f"paid but never fulfilled: orders {_short(unfulfilled_paid)}")
    if lost:
        result.fail(f"paid, then closed without a refund: orders {_short(lost)}")
    if missing:
        result.fail(f"fulfilled without a ledger posting or receipt: orders {_short(missing)}")
    if wrong_credit:
        result.fail(f"wallet credit differs from the quote: orders {_short(wrong_credit)}")
    if double_history:
        result.fail(f"top-up history not exactly once: orders {_short(double_history)}")
    if stray:
        result.fail(f"wallet credited outside a fulfilment: groups {_short(stray)}")
    if doubled_receipts:
        result.fail(f"receipt numbers used twice: {_short(doubled_receipts)}")
    # One business event, one order: a voucher serial or an agent sale's key
    # paying two orders is a double credit.
    paid_by = Counter(
        (order["payment_provider"], order["payment_reference"])
        for order in orders
        if order["paid_at"] is not None and order["payment_provider"] in ("voucher", "agent")
    )
    doubled = sorted(f"{p}:{r}" for (p, r), n in paid_by.items() if n > 1)
    result.count("double credits", len(doubled) + len(stray))
    if doubled:
        result.fail(f"one voucher or agent sale paid several orders: {_short(doubled)}")


def check_payments(result: Checked) -> None:
    """Every payment the provider captured became exactly one fulfilled
    top-up, or is owed back (a second payment of a paid order)."""
    from leb.payments.models import AttemptStatus, PaymentAttempt
    from leb.topups.models import OrderStatus

    captured = lost = refund_owed = 0
    lost_ids = []
    succeeded_per_order: Counter[int] = Counter()
    for attempt in PaymentAttempt.objects.select_related("order"):
        gateway = (attempt.provider_data or {}).get("gateway") or {}
        if gateway.get("state") != CAPTURED:
            continue
        captured += 1
        order = attempt.order
        if attempt.failure_code in REFUSED_CAPTURES:
            refund_owed += 1
            continue
        if attempt.status == AttemptStatus.SUCCEEDED:
            succeeded_per_order[order.pk] += 1
        settled = attempt.status in (AttemptStatus.SUCCEEDED, AttemptStatus.REFUNDED)
        order_done = order.status in (OrderStatus.FULFILLED, OrderStatus.REFUNDED) or (
            order.status == OrderStatus.FAILED and order.refund_due
        )
        if not (settled and order_done):
            lost += 1
            lost_ids.append(f"{attempt.public_id} (attempt {attempt.status}, order {order.status})")
    doubled = sorted(pk for pk, n in succeeded_per_order.items() if n > 1)
    result.count("payments captured at the provider", captured)
    result.count("captured payments refused and owed back", refund_owed)
    result.count("lost payments", lost)
    if lost_ids:
        result.fail(f"captured at the provider but not fulfilled: attempts {_short(lost_ids)}")
    if doubled:
        result.fail(f"one order credited by several captured payments: orders {_short(doubled)}")


def check_promotions(result: Checked) -> None:
    """Budgets: used ≤ cap, used = what the live redemptions hold, and the
    used redemptions are exactly the discounts of fulfilled orders."""
    from leb.catalog.models import Promotion, PromotionRedemption, RedemptionState
    from leb.catalog.quotes import Quote
    from leb.topups.models import OrderStatus, TopUpOrder

    granted: dict[int, int] = defaultdict(int)
    for data in TopUpOrder.objects.filter(
        status__in=[OrderStatus.FULFILLED, OrderStatus.REFUNDED]
    ).values_list("quote", flat=True):
        frozen = Quote.from_dict(data)
        if frozen.promotion_id:
            granted[frozen.promotion_id] += frozen.promotion_cost
    for promo in Promotion.objects.order_by("pk"):
        held = used = 0
        for state, cost in PromotionRedemption.objects.filter(promotion=promo).values_list(
            "state", "cost"
        ):
            if state in (RedemptionState.RESERVED, RedemptionState.USED):
                held += cost
            if state == RedemptionState.USED:
                used += cost
        result.count(f"promotion {promo.code}: budget", promo.budget or 0)
        result.count(f"promotion {promo.code}: spent", used)
        result.count(f"promotion {promo.code}: granted in fulfilled orders", granted[promo.pk])
        if promo.budget is not None and promo.budget_used > promo.budget:
            result.fail(f"promotion {promo.code}: {promo.budget_used} used of a {promo.budget} cap")
        if promo.budget_used != held:
            result.fail(
                f"promotion {promo.code}: budget_used {promo.budget_used} != {held} held by "
                "its reserved and used redemptions"
            )
        if used != granted[promo.pk]:
            result.fail(
                f"promotion {promo.code}: {used} spent != {granted[promo.pk]} granted in "
                "fulfilled orders"
            )


def check_agents(result: Checked) -> None:
    """Each float = approved deposits - sales at retail + commissions, to the
    minor unit, and one completed sale per external id."""
    from django.db.models import Sum

    from leb.agents.actions import float_account
    from leb.agents.models import Agent, AgentDeposit, AgentTopUp, AgentTopUpStatus
    from leb.topups.models import OrderStatus

    for agent in Agent.objects.order_by("pk"):
        opening = (
            AgentDeposit.objects.filter(agent=agent, status="approved").aggregate(
                total=Sum("amount")
            )["total"]
            or 0
        )
        sales = AgentTopUp.objects.filter(agent=agent, status=AgentTopUpStatus.COMPLETED)
        retail = sales.aggregate(total=Sum("retail_price"))["total"] or 0
        wholesale = sales.aggregate(total=Sum("wholesale_price"))["total"] or 0
        commission = retail - wholesale
        balance = float_account(agent).balance
        result.count(f"agent {agent.code}: opening float", opening)
        result.count(f"agent {agent.code}: sales", sales.count())
        result.count(f"agent {agent.code}: float", balance)
        if balance != opening - retail + commission:
            result.fail(
                f"agent {agent.code}: float {balance} != {opening} - {retail} + {commission}"
            )
        not_done = sales.exclude(order__status=OrderStatus.FULFILLED).count()
        if not_done:
            result.fail(f"agent {agent.code}: {not_done} completed sales without a fulfilled order")


def check_vouchers(result: Checked) -> None:
    from leb.topups.models import OrderStatus, TopUpOrder
    from leb.vouchers.models import Voucher, VoucherState

    orders = Counter(
        TopUpOrder.objects.filter(payment_provider="voucher").values_list(
            "payment_reference", flat=True
        )
    )
    redeemed = bad = 0
    wrong = []
    for voucher in Voucher.objects.select_related("order"):
        count = orders.get(voucher.serial, 0)
        if voucher.state == VoucherState.REDEEMED:
            redeemed += 1
            if count != 1 or voucher.order is None or voucher.order.status != OrderStatus.FULFILLED:
                bad += 1
                wrong.append(f"{voucher.serial} ({count} orders)")
        elif count:
            bad += 1
            wrong.append(f"{voucher.serial} ({voucher.state} with {count} orders)")
    result.count("vouchers redeemed", redeemed)
    result.count("vouchers redeemed other than once", bad)
    if wrong:
        result.fail(f"vouchers not redeemed exactly once: {_short(wrong)}")


def check_receipt_messages(result: Checked, *, require_sent: bool) -> None:
    """One receipt message per fulfilled order and channel in the outbox;
    with `require_sent`, each of them delivered."""
    from leb.notifications.models import Notification, Status
    from leb.topups.models import OrderStatus, TopUpOrder

    rows = Counter(
        (key, channel)
        for key, channel in Notification.objects.filter(kind="topup_succeeded").values_list(
            "dedupe_key", "channel"
        )
    )
    per_order = Counter(key for key, _channel in rows)
    doubled = sorted(f"{key} {channel}" for (key, channel), n in rows.items() if n > 1)
    fulfilled = [
        f"order:{public_id}"
        for public_id in TopUpOrder.objects.filter(
            status__in=[OrderStatus.FULFILLED, OrderStatus.REFUNDED]
        ).values_list("public_id", flat=True)
    ]
    without = [key for key in fulfilled if not per_order.get(key)]
    result.count("receipt messages queued", sum(rows.values()))
    if doubled:
        result.fail(f"receipt message queued twice: {_short(doubled)}")
    if without:
        result.fail(f"fulfilled orders without a receipt message: {_short(without)}")
    if require_sent:
        unsent = list(
            Notification.objects.filter(kind="topup_succeeded")
            .exclude(status=Status.SENT)
            .values_list("pk", "status")
        )
        result.count("receipt messages not delivered", len(unsent))
        if unsent:
            result.fail(f"receipt messages not delivered: {_short(unsent)}")


def check_books(result: Checked) -> None:
    from leb.audit.actions import verify_chain
    from leb.ledger.queries import verify_ledger

    ledger = verify_ledger()
    result.count("ledger accounts", ledger.accounts)
    result.count("ledger transfers", ledger.transfers)
    result.count("ledger verify problems", len(ledger.problems))
    for problem in ledger.problems[:10]:
        result.fail(f"ledger verify: {problem}")
    audit = verify_chain()
    result.count("audit verify problems", len(audit))
    for problem in audit[:10]:
        result.fail(f"audit verify: {problem}")


def check_all(*, require_sent: bool = False) -> Checked:
    result = Checked()
    check_orders(result)
    check_payments(result)
    check_promotions(result)
    check_agents(result)
    check_vouchers(result)
    check_receipt_messages(result, require_sent=require_sent)
    check_books(result)
    return result
