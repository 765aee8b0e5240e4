"""Everything that writes tickets: each change, its audit entry and the message
it sends (through the notification outbox) commit together; the message leaves
after the commit."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext_lazy

from leb.audit.actions import record
from leb.audit.models import AuditAction
from leb.common import clock
from leb.common.formatting import format_money
from leb.common.transactions import one_transaction, outside_transaction, own_transactions
from leb.lines.identifiers import normalize_msisdn
from leb.notifications.actions import queue_message
from leb.notifications.models import Channel
from leb.payments.actions import (
    PaymentError,
    do_request_refund,
    do_retry_refund,
    refunded_attempt,
)
from leb.payments.models import PaymentAttempt, Refund, RefundStatus
from leb.topups.models import OrderStatus, TopUpOrder

from .models import (
    LIVE_DISPUTE,
    Dispute,
    DisputeEvent,
    DisputeEventKind,
    DisputeStatus,
    Ticket,
    TicketCategory,
    TicketMessage,
    TicketStatus,
)
from .tokens import make_token

MAX_BODY = 5000


def user_actor(user: Any) -> str:
    return f"user:{user.pk}"


def staff_actor(user: Any) -> str:
    return f"staff:{user.get_username()}"


def ticket_url(ticket: Ticket) -> str:
    """Where the customer reads the thread: their account, or a signed link for a guest."""
    if ticket.user_id is not None:
        path = reverse("support:ticket", args=[ticket.public_id])
    else:
        path = reverse("support:guest_thread", args=[make_token(ticket)])
    return settings.SITE_URL.rstrip("/") + path


def _clean_body(body: str) -> str:
    body = (body or "").strip()
    if not body:
        raise ValidationError(gettext_lazy("Write a message."), code="empty")
    if len(body) > MAX_BODY:
        raise ValidationError(
            gettext_lazy("Keep the message under %(max)d characters."),
            code="too_long",
            params={"max": MAX_BODY},
        )
    return body


@own_transactions
def do_open_ticket(
    *,
    user: Any,
    subject: str,
    category: str,
    body: str,
    contact_email: str = "",
    contact_phone: str = "",
    line: Any = None,
    order: Any = None,
    language: str = "",
    now: datetime | None = None,
) -> Ticket:
    """A new ticket with its first message. Guests must leave an email or a phone."""
    now = now or clock.now()
    user = user if user is not None and user.is_authenticated else None
    body = _clean_body(body)
    subject = (subject or "").strip()
    if not subject:
        raise ValidationError(gettext_lazy("Enter a subject."), code="subject")
    if category not in TicketCategory.values:
        raise ValidationError(gettext_lazy("Choose a topic."), code="category")
    contact_email = (contact_email or "").strip().lower()
    contact_phone = normalize_msisdn(contact_phone) if contact_phone else ""
    if user is None and not (contact_email or contact_phone):
        raise ValidationError(
            gettext_lazy("Enter an email address or a mobile number so we can answer you."),
            code="contact",
        )
    with transaction.atomic():
        ticket = Ticket.objects.create(
            user=user,
            contact_email=contact_email,
            contact_phone=contact_phone,
            language=language or translation.get_language() or settings.LANGUAGE_CODE,
            subject=subject[:200],
            category=category,
            line=line,
            order=order,
            status=TicketStatus.OPEN,
            created_at=now,
            updated_at=now,
        )
        TicketMessage.objects.create(
            ticket=ticket, author=user, from_staff=False, body=body, created_at=now
        )
        record(
            user_actor(user) if user else "guest",
            AuditAction.TICKET_OPEN,
            f"ticket:{ticket.pk}",
            {
                "public_id": str(ticket.public_id),
                "category": category,
                "line": line.pk if line else None,
                "order": order.pk if order else None,
            },
            now=now,
        )
        if user is None and contact_email:
            _queue_guest_confirmation(ticket, now)
    return ticket


@own_transactions
def do_reply(
    ticket: Ticket,
    *,
    body: str,
    author: Any = None,
    as_staff: bool = False,
    guest: bool = False,
    now: datetime | None = None,
) -> TicketMessage:
    """Add a message. Staff answer any ticket (and it becomes answered); the
    customer answers their own (and it waits for staff again): the account
    owner, or for a guest ticket whoever holds its signed link (guest=True)."""
    now = now or clock.now()
    body = _clean_body(body)
    if as_staff:
        if author is None or not author.is_staff:
            raise PermissionDenied
        actor = staff_actor(author)
    elif guest:
        if ticket.user_id is not None:
            raise PermissionDenied
        author, actor = None, "guest"
    else:
        if author is None or ticket.user_id is None or author.pk != ticket.user_id:
            raise PermissionDenied
        actor = user_actor(author)
    with transaction.atomic():
        locked = Ticket.objects.select_for_update().get(pk=ticket.pk)
        if locked.status == TicketStatus.CLOSED and not as_staff:
            raise ValidationError(
                gettext_lazy("This conversation is closed. Please start a new one."),
                code="closed",
            )
        message = TicketMessage.objects.create(
            ticket=locked, author=author, from_staff=as_staff, body=body, created_at=now
        )
        locked.status = TicketStatus.ANSWERED if as_staff else TicketStatus.OPEN
        locked.updated_at = now
        locked.save(update_fields=["status", "updated_at"])
        record(
            actor,
            AuditAction.TICKET_REPLY,
            f"ticket:{locked.pk}",
            {"message": message.pk, "from_staff": as_staff, "status": locked.status},
            now=now,
        )
        if as_staff:
            _queue_answer(locked, message, now)
    ticket.status, ticket.updated_at = locked.status, locked.updated_at
    return message


@own_transactions
def do_close(ticket: Ticket, *, actor: str, now: datetime | None = None) -> Ticket:
    now = now or clock.now()
    with transaction.atomic():
        locked = Ticket.objects.select_for_update().get(pk=ticket.pk)
        if locked.status != TicketStatus.CLOSED:
            previous = locked.status
            locked.status = TicketStatus.CLOSED
            locked.updated_at = now
            locked.save(update_fields=["status", "updated_at"])
            record(
                actor, AuditAction.TICKET_CLOSE, f"ticket:{locked.pk}", {"from": previous}, now=now
            )
    ticket.status, ticket.updated_at = locked.status, locked.updated_at
    return ticket


def _message_language(ticket: Ticket) -> str:
    # Answers come in the language the ticket was written in.
    return ticket.language or settings.LANGUAGE_CODE


def _queue_guest_confirmation(ticket: Ticket, now: datetime) -> None:
    """The signed link is a guest's only way back to the thread: mail it. The
    link reads the conversation, so the outbox keeps it only until it is sent."""
    queue_message(
        kind="ticket_received",
        channel=Channel.EMAIL,
        destination=ticket.contact_email,
        language=_message_language(ticket),
        context={
            "subject": ticket.subject,
            "reference": ticket.reference,
            "url": ticket_url(ticket),
        },
        dedupe_key=f"ticket:{ticket.public_id}",
        secret_keys=("url",),
        now=now,
    )


def _queue_to_subscriber(
    ticket: Ticket, *, kind: str, context: dict[str, Any], dedupe_key: str, now: datetime
) -> None:
    """Tell the ticket's subscriber something, with a link to the ticket, in
    the ticket's language: by email to a proven (or the guest's) address,
    else by SMS; nothing when there is neither. A guest's link is a secret;
    an account's is not. Once per `dedupe_key`."""
    email = ticket.reply_email
    phone = "" if email else ticket.reply_phone
    if not (email or phone):
        return
    queue_message(
        kind=kind,
        channel=Channel.EMAIL if email else Channel.SMS,
        destination=email or phone,
        language=_message_language(ticket),
        context={
            "subject": ticket.subject,
            "reference": ticket.reference,
            **context,
            "url": ticket_url(ticket),
        },
        dedupe_key=dedupe_key,
        user=ticket.user,
        secret_keys=("url",) if ticket.user_id is None else (),
        now=now,
    )


def _queue_answer(ticket: Ticket, message: TicketMessage, now: datetime) -> None:
    """Tell the customer staff answered."""
    _queue_to_subscriber(
        ticket,
        kind="ticket_answered",
        context={"reply": message.body},
        dedupe_key=f"ticket-message:{message.pk}",
        now=now,
    )


def _queue_dispute_step(
    dispute: Dispute, kind: str, context: dict[str, Any], step: str, now: datetime
) -> None:
    """Tell the subscriber a step of their dispute (opened, a refund
    confirmed, rejected, closed), once per step."""
    ticket = Ticket.objects.select_related("user").get(pk=dispute.ticket_id)
    _queue_to_subscriber(
        ticket,
        kind=kind,
        context={"order": dispute.order_label, **context},
        dedupe_key=f"dispute:{dispute.public_id}:{step}",
        now=now,
    )


# --- Disputes ------------------------------------------------------------------------


class DisputeError(ValidationError):
    """A refused dispute operation; the message is for the member of staff."""


def order_belongs_to_ticket(ticket: Ticket, order: TopUpOrder) -> bool:
    """Whether `order` is the ticket subscriber's: the order the ticket is
    about, a top-up of the ticket's line, or one the signed-in subscriber
    bought or whose line they own."""
    if ticket.order_id is not None and order.pk == ticket.order_id:
        return True
    if ticket.line_id is not None and order.line_id == ticket.line_id:
        return True
    if ticket.user_id is not None:
        return ticket.user_id in (order.customer_id, order.line.owner_id)
    return False


def _order_label(order: TopUpOrder) -> str:
    return order.receipt_number or str(order.public_id)[:8].upper()


def _touch_ticket(ticket_id: int, now: datetime) -> None:
    # The subscriber's list is by latest change: a dispute step is one.
    Ticket.objects.filter(pk=ticket_id).update(updated_at=now)


@own_transactions
def do_escalate_ticket(
    ticket: Ticket,
    *,
    order: TopUpOrder,
    reason: str,
    staff: Any,
    amount_requested: int | None = None,
    now: datetime | None = None,
) -> Dispute:
    """Turn a ticket into a dispute about one of its subscriber's top-ups."""
    now = now or clock.now()
    if staff is None or not staff.has_perm("support.add_dispute"):
        raise PermissionDenied
    reason = (reason or "").strip()
    if not reason:
        raise DisputeError(gettext_lazy("Say what the subscriber disputes."), code="reason")
    if not order_belongs_to_ticket(ticket, order):
        raise DisputeError(
            gettext_lazy("This top-up is not one of this ticket's subscriber's."),
            code="wrong_owner",
        )
    if order.status != OrderStatus.FULFILLED:
        raise DisputeError(
            gettext_lazy("Only a completed top-up can be disputed."), code="not_disputable"
        )
    amount = order.price if amount_requested is None else amount_requested
    if not 0 < amount <= order.price:
        raise DisputeError(
            gettext_lazy("The amount asked back must be more than zero and at most %(price)s."),
            code="amount",
            params={"price": format_money(order.price, order.currency)},
        )
    actor = staff_actor(staff)
    with transaction.atomic():
        locked = Ticket.objects.select_for_update().get(pk=ticket.pk)
        if Dispute.objects.filter(ticket=locked).exists():
            raise DisputeError(
                gettext_lazy("This ticket has already been escalated to a dispute."),
                code="already_escalated",
            )
        if Dispute.objects.filter(order=order, status__in=LIVE_DISPUTE).exists():
            raise DisputeError(
                gettext_lazy("This top-up already has an open dispute."), code="already_disputed"
            )
        try:
            with transaction.atomic():
                dispute = Dispute.objects.create(
                    ticket=locked,
                    order=order,
                    amount_requested=amount,
                    currency=order.currency,
                    reason=reason[:5000],
                    opened_by=actor,
                    created_at=now,
                    updated_at=now,
                )
        except IntegrityError as exc:
            # Another member of staff escalated it a moment ago.
            raise DisputeError(
                gettext_lazy("This top-up already has an open dispute."), code="already_disputed"
            ) from exc
        DisputeEvent.objects.create(
            dispute=dispute,
            kind=DisputeEventKind.ESCALATED,
            amount=amount,
            currency=order.currency,
            actor=actor,
            created_at=now,
        )
        record(
            actor,
            AuditAction.DISPUTE_OPEN,
            f"dispute:{dispute.pk}",
            {
                "ticket": locked.pk,
                "order": order.pk,
                "amount_requested": amount,
                "currency": order.currency,
            },
            now=now,
        )
        _touch_ticket(locked.pk, now)
        _queue_dispute_step(
            dispute,
            "dispute_opened",
            {"requested_amount": amount, "requested_currency": order.currency},
            "opened",
            now,
        )
    return dispute


def refund_refusal(staff: Any, currency: str, total: int) -> str:
    """Why `staff` may not bring the refunds of one payment to `total` ("" when
    they may): the support role up to LEB_SUPPORT_REFUND_LIMITS, counting what
    was refunded before (so splitting a refund does not get round it);
    finance any amount."""
    if staff.has_perm("topups.refund_any_topuporder"):
        return ""
    if not staff.has_perm("topups.refund_topuporder"):
        return str(gettext_lazy("You may not refund top-ups."))
    limit = settings.SUPPORT_REFUND_LIMITS.get(currency)
    if limit is None:
        return str(
            gettext_lazy("Refunds in %(currency)s need the finance role.") % {"currency": currency}
        )
    if total > limit:
        return str(
            gettext_lazy("Refunds above %(limit)s need the finance role.")
            % {"limit": format_money(limit, currency)}
        )
    return ""


def can_refund_disputes(staff: Any) -> bool:
    return staff is not None and (
        staff.has_perm("topups.refund_topuporder") or staff.has_perm("topups.refund_any_topuporder")
    )


@outside_transaction
def do_refund_dispute(
    dispute: Dispute, *, staff: Any, amount: int | None = None, now: datetime | None = None
) -> Refund:
    """Refund the disputed top-up, all that is left of its payment by default,
    to the payment method it came from. The refund's steps (requested, then
    confirmed by the provider now or by webhook later) are told in the ticket."""
    now = now or clock.now()
    if not can_refund_disputes(staff):
        raise PermissionDenied
    dispute = Dispute.objects.select_related("order").get(pk=dispute.pk)
    if dispute.status not in (
        DisputeStatus.OPEN,
        DisputeStatus.REFUND_REQUESTED,
        DisputeStatus.REFUNDED,
    ):
        raise DisputeError(
            gettext_lazy("This dispute is decided; it cannot be refunded."), code="decided"
        )
    if dispute.status == DisputeStatus.REFUNDED and _another_live_dispute(dispute).exists():
        raise DisputeError(
            gettext_lazy("Another dispute about this top-up is open: refund from that one."),
            code="another_open",
        )
    attempt = refunded_attempt(dispute.order)
    if attempt is None:
        raise DisputeError(
            gettext_lazy(
                "This top-up was not paid through a payment provider, so there is no "
                "payment to refund."
            ),
            code="no_payment",
        )
    actor = staff_actor(staff)
    try:
        # The support limit counts the refunds already on the payment, so it
        # is checked under the payment's lock: two refunds asked at the same
        # moment are added up together, never each against the old total.
        refund = do_request_refund(
            attempt,
            amount=amount,
            reason=f"dispute {dispute.reference}",
            actor=actor,
            refusal=lambda total: refund_refusal(staff, attempt.currency, total),
            now=now,
        )
    except PaymentError as exc:
        raise DisputeError(str(exc.message), code=exc.code) from exc
    with transaction.atomic():
        # The same lock order as the payment actions: attempt, refund, dispute.
        PaymentAttempt.objects.select_for_update().get(pk=attempt.pk)
        refund = Refund.objects.select_for_update().get(pk=refund.pk)
        locked = Dispute.objects.select_for_update().get(pk=dispute.pk)
        DisputeEvent.objects.create(
            dispute=locked,
            kind=DisputeEventKind.REFUND_REQUESTED,
            amount=refund.amount,
            currency=refund.currency,
            refund=refund,
            provider=attempt.provider,
            actor=actor,
            created_at=now,
        )
        record(
            actor,
            AuditAction.DISPUTE_REFUND,
            f"dispute:{locked.pk}",
            {"refund": str(refund.public_id), "amount": refund.amount, "currency": refund.currency},
            now=now,
        )
        # The money has gone out: the event and the audit entry stand whatever
        # happened to the dispute meanwhile. Its status follows the refund,
        # unless another dispute about the order became the live one.
        if (
            locked.status != DisputeStatus.REFUND_REQUESTED
            and not _another_live_dispute(locked).exists()
        ):
            locked.status = DisputeStatus.REFUND_REQUESTED
            locked.updated_at = now
            locked.save(update_fields=["status", "updated_at"])
        # Confirmed already (in the provider's answer, or a webhook faster
        # than this): said now, as the webhook's receiver found no request yet.
        _note_refund_outcome(locked, refund, actor=actor, now=now)
        _touch_ticket(locked.ticket_id, now)
    return refund


def _another_live_dispute(dispute: Dispute) -> Any:
    return Dispute.objects.filter(
        order_id=dispute.order_id,
        status__in=[DisputeStatus.OPEN, DisputeStatus.REFUND_REQUESTED],
    ).exclude(pk=dispute.pk)


@outside_transaction
def do_retry_dispute_refund(
    dispute: Dispute, refund: Refund, *, staff: Any, now: datetime | None = None
) -> Refund:
    """Ask the provider again for a dispute's refund that failed."""
    now = now or clock.now()
    if not can_refund_disputes(staff):
        raise PermissionDenied
    if not DisputeEvent.objects.filter(
        dispute=dispute, refund=refund, kind=DisputeEventKind.REFUND_REQUESTED
    ).exists():
        raise DisputeError(gettext_lazy("This refund is not one of this dispute's."), code="other")
    try:
        return do_retry_refund(refund, actor=staff_actor(staff), now=now)
    except PaymentError as exc:
        raise DisputeError(str(exc.message), code=exc.code) from exc


def _note_refund_outcome(dispute: Dispute, refund: Refund, *, actor: str, now: datetime) -> None:
    """Tell the dispute what became of one of its refunds (the dispute row is
    locked by the caller); once every refund is confirmed it is refunded."""
    if refund.status == RefundStatus.CONFIRMED:
        _event, told = DisputeEvent.objects.get_or_create(
            refund=refund,
            kind=DisputeEventKind.REFUND_CONFIRMED,
            defaults={
                "dispute": dispute,
                "amount": refund.amount,
                "currency": refund.currency,
                "provider": refund.attempt.provider,
                "actor": actor,
                "created_at": now,
            },
        )
        if told:
            _queue_dispute_step(
                dispute,
                "dispute_refund_confirmed",
                {
                    "refund_amount": refund.amount,
                    "refund_currency": refund.currency,
                    "provider": refund.attempt.provider,
                },
                f"refund:{refund.public_id}:confirmed",
                now,
            )
    elif refund.status == RefundStatus.FAILED:
        DisputeEvent.objects.create(
            dispute=dispute,
            kind=DisputeEventKind.REFUND_FAILED,
            amount=refund.amount,
            currency=refund.currency,
            refund=refund,
            provider=refund.attempt.provider,
            note=refund.failure_message[:500],
            actor=actor,
            created_at=now,
        )
    if dispute.status not in (DisputeStatus.REFUND_REQUESTED, DisputeStatus.REFUNDED):
        return
    waiting = (
        Refund.objects.filter(
            dispute_events__dispute=dispute,
            dispute_events__kind=DisputeEventKind.REFUND_REQUESTED,
        )
        .exclude(status=RefundStatus.CONFIRMED)
        .exists()
    )
    status = DisputeStatus.REFUND_REQUESTED if waiting else DisputeStatus.REFUNDED
    if status != dispute.status:
        dispute.status = status
        dispute.updated_at = now
        dispute.save(update_fields=["status", "updated_at"])
        if status == DisputeStatus.REFUNDED:
            record(
                actor,
                AuditAction.DISPUTE_REFUNDED,
                f"dispute:{dispute.pk}",
                {"refund": str(refund.public_id)},
                now=now,
            )


def note_refund_settled(refund: Refund, now: datetime, **_kwargs: Any) -> None:
    """payments' refund_settled: a provider confirmed (or failed) a refund,
    typically by webhook. Runs in the payment action's transaction."""
    requested = (
        DisputeEvent.objects.filter(refund=refund, kind=DisputeEventKind.REFUND_REQUESTED)
        .values_list("dispute_id", flat=True)
        .first()
    )
    if requested is None:
        # Not a dispute's refund, or its dispute is still being told of it
        # (do_refund_dispute notes the outcome itself).
        return
    dispute = Dispute.objects.select_for_update().get(pk=requested)
    _note_refund_outcome(dispute, refund, actor=refund.actor, now=now)
    _touch_ticket(dispute.ticket_id, now)


@one_transaction
def do_reject_dispute(
    dispute: Dispute, *, note: str, staff: Any, now: datetime | None = None
) -> Dispute:
    """Decide against the subscriber: nothing is refunded. Only an open
    dispute (no refund asked yet) can be rejected."""
    now = now or clock.now()
    if staff is None or not staff.has_perm("support.change_dispute"):
        raise PermissionDenied
    note = (note or "").strip()
    if not note:
        raise DisputeError(
            gettext_lazy("Say why the dispute is rejected: the subscriber reads it."), code="note"
        )
    locked = Dispute.objects.select_for_update().get(pk=dispute.pk)
    if locked.status != DisputeStatus.OPEN:
        raise DisputeError(
            gettext_lazy("Only an open dispute without a refund can be rejected."),
            code="not_open",
        )
    return _decide(locked, DisputeStatus.REJECTED, note, staff_actor(staff), now)


@one_transaction
def do_close_dispute(
    dispute: Dispute, *, staff: Any, note: str = "", now: datetime | None = None
) -> Dispute:
    """End a dispute: withdrawn, settled another way, or done. Not while a
    refund is still waiting for the provider."""
    now = now or clock.now()
    if staff is None or not staff.has_perm("support.change_dispute"):
        raise PermissionDenied
    locked = Dispute.objects.select_for_update().get(pk=dispute.pk)
    if locked.status == DisputeStatus.CLOSED:
        return locked
    if locked.status == DisputeStatus.REFUND_REQUESTED:
        raise DisputeError(
            gettext_lazy("A refund is still waiting for the provider; close it once it is done."),
            code="refund_waiting",
        )
    return _decide(locked, DisputeStatus.CLOSED, (note or "").strip(), staff_actor(staff), now)


def _decide(dispute: Dispute, status: str, note: str, actor: str, now: datetime) -> Dispute:
    previous = dispute.status
    dispute.status = status
    if note:
        dispute.decision_note = note[:500]
    dispute.updated_at = now
    dispute.save(update_fields=["status", "decision_note", "updated_at"])
    DisputeEvent.objects.create(
        dispute=dispute,
        kind=DisputeEventKind.REJECTED
        if status == DisputeStatus.REJECTED
        else DisputeEventKind.CLOSED,
        note=note[:500],
        actor=actor,
        created_at=now,
    )
    record(
        actor,
        AuditAction.DISPUTE_REJECT
        if status == DisputeStatus.REJECTED
        else AuditAction.DISPUTE_CLOSE,
        f"dispute:{dispute.pk}",
        {"from": previous, "note": note[:500]},
        now=now,
    )
    _touch_ticket(dispute.ticket_id, now)
    step = "rejected" if status == DisputeStatus.REJECTED else "closed"
    _queue_dispute_step(dispute, f"dispute_{step}", {"note": note[:500]}, step, now)
    return dispute
