"""Everything that writes tickets: each change, its audit entry and the message
it sends (through the notification outbox) commit together; the message leaves
after the commit."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext_lazy

from leb.audit.actions import record
from leb.audit.models import AuditAction
from leb.common import clock
from leb.common.transactions import own_transactions
from leb.lines.identifiers import normalize_msisdn
from leb.notifications.actions import queue_message
from leb.notifications.models import Channel

from .models import Ticket, TicketCategory, TicketMessage, TicketStatus
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


def _queue_answer(ticket: Ticket, message: TicketMessage, now: datetime) -> None:
    """Tell the customer staff answered: by email to a proven (or the guest's)
    address, else by SMS. A guest's link is a secret; an account's is not."""
    email = ticket.reply_email
    phone = "" if email else ticket.reply_phone
    if not (email or phone):
        return
    context = {
        "subject": ticket.subject,
        "reference": ticket.reference,
        "reply": message.body,
        "url": ticket_url(ticket),
    }
    queue_message(
        kind="ticket_answered",
        channel=Channel.EMAIL if email else Channel.SMS,
        destination=email or phone,
        language=_message_language(ticket),
        context=context,
        dedupe_key=f"ticket-message:{message.pk}",
        user=ticket.user,
        secret_keys=("url",) if ticket.user_id is None else (),
        now=now,
    )
