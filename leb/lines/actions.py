"""Every write to lines, phone numbers and line history."""

from __future__ import annotations

import hashlib
import hmac
import logging
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import (
    Case,
    DateTimeField,
    ExpressionWrapper,
    F,
    OuterRef,
    Subquery,
    When,
)
from django.utils.translation import gettext_lazy as _

from leb.audit.actions import record
from leb.audit.models import AuditAction
from leb.common import clock
from leb.common.bulk import insert_rows, update_rows
from leb.common.transactions import one_transaction
from leb.ledger.actions import (
    Leg,
    Posting,
    get_account,
    post_transfer_groups,
    system_account,
)
from leb.ledger.models import Account, AccountKind

from . import lifecycle
from .identifiers import normalize_eid, normalize_iccid, normalize_msisdn
from .models import (
    DocumentType,
    Line,
    LineEvent,
    LineEventKind,
    LineStatus,
    NumberPolicy,
    NumberStatus,
    PhoneNumber,
    RealNameRegistration,
)

logger = logging.getLogger(__name__)


class LineError(ValidationError):
    """A refused operation on a line; the message is for the person who asked."""


def wallet_for(line: Line) -> Account:
    """The line's wallet: a liability with a running balance that may never go negative."""
    if line.wallet_id:
        return line.wallet  # type: ignore[return-value]
    account = get_account(
        f"wallet:line:{line.pk}",
        AccountKind.WALLET,
        line.currency,
        no_negative=True,
        tracks_balance=True,
    )
    Line.objects.filter(pk=line.pk).update(wallet=account)
    line.wallet = account
    return account


def _event(
    line: Line,
    kind: str,
    now: datetime,
    *,
    happened_at: datetime | None = None,
    from_status: str = "",
    to_status: str = "",
    actor: str = "",
    data: dict[str, Any] | None = None,
) -> LineEvent:
    return LineEvent(
        line=line,
        kind=kind,
        from_status=from_status,
        to_status=to_status,
        happened_at=happened_at or now,
        recorded_at=now,
        valid_until=line.valid_until,
        actor=actor,
        data=data or {},
    )


def lock_line(line_id: int) -> Line:
    """The line, row-locked for the rest of the transaction (on SQLite the
    IMMEDIATE transaction already holds the database write lock)."""
    return (
        Line.objects.select_for_update(of=("self",))
        .select_related("policy", "phone_number", "wallet")
        .get(pk=line_id)
    )


@one_transaction
def do_create_line(
    *,
    iccid: str,
    policy: NumberPolicy,
    currency: str,
    activation_code: str = "",
    msisdn: str = "",
    eid: str = "",
    actor: str = "",
    now: datetime | None = None,
) -> Line:
    """A new line in inventory, optionally with its number reserved."""
    now = now or clock.now()
    iccid = normalize_iccid(iccid)
    eid = normalize_eid(eid) if eid else ""
    if Line.objects.filter(iccid=iccid).exists():
        raise LineError(_("A line with ICCID %(iccid)s already exists."), params={"iccid": iccid})
    number = _reserve_number(normalize_msisdn(msisdn), now) if msisdn else None
    line = Line.objects.create(
        iccid=iccid,
        eid=eid,
        activation_code=activation_code,
        phone_number=number,
        policy=policy,
        currency=currency.upper(),
    )
    _event(line, LineEventKind.CREATED, now, to_status=LineStatus.INVENTORY, actor=actor).save()
    return line


def _reserve_number(msisdn: str, now: datetime) -> PhoneNumber:
    number, _created = PhoneNumber.objects.select_for_update().get_or_create(msisdn=msisdn)
    if (
        number.status == NumberStatus.QUARANTINED
        and number.quarantined_until
        and number.quarantined_until <= now
    ):
        number.status = NumberStatus.AVAILABLE
    if number.status != NumberStatus.AVAILABLE:
        raise LineError(
            _("Number %(msisdn)s is not available."), params={"msisdn": msisdn}, code="number_taken"
        )
    number.status = NumberStatus.ASSIGNED
    number.quarantined_until = None
    number.save(update_fields=["status", "quarantined_until", "updated_at"])
    return number


def _take_pool_number(now: datetime, prefix: str) -> PhoneNumber:
    query = PhoneNumber.objects.filter(
        status=NumberStatus.AVAILABLE, msisdn__startswith=prefix
    ).order_by("msisdn")
    if connection.features.has_select_for_update_skip_locked:
        query = query.select_for_update(skip_locked=True)
    number = query.first()
    if number is None:
        raise LineError(_("No phone number is available in the pool."), code="pool_empty")
    number.status = NumberStatus.ASSIGNED
    number.save(update_fields=["status", "updated_at"])
    return number


@one_transaction
def do_activate_line(
    line: Line,
    *,
    msisdn: str = "",
    actor: str = "",
    now: datetime | None = None,
) -> Line:
    """Give the line a number (its reserved one, the one asked for, or the next
    free one from the pool) and start the first-top-up window."""
    now = now or clock.now()
    line = lock_line(line.pk)
    if line.status != LineStatus.INVENTORY:
        raise LineError(_("This line is already activated."), code="already_active")
    if needs_real_name(line):
        raise LineError(
            _("This line needs a real-name registration before it can be activated."),
            code="real_name_required",
        )
    if line.phone_number is None:
        line.phone_number = (
            _reserve_number(normalize_msisdn(msisdn), now)
            if msisdn
            else _take_pool_number(now, line.policy.number_prefix)
        )
    line.status = LineStatus.ACTIVE
    line.activated_at = now
    line.valid_until = now + timedelta(days=line.policy.first_topup_days)
    line.next_transition_at = lifecycle.next_transition(line.status, line.valid_until, line.policy)
    line.save(
        update_fields=[
            "phone_number",
            "status",
            "activated_at",
            "valid_until",
            "next_transition_at",
        ]
    )
    wallet_for(line)
    _event(
        line,
        LineEventKind.ACTIVATED,
        now,
        from_status=LineStatus.INVENTORY,
        to_status=LineStatus.ACTIVE,
        actor=actor,
        data={"msisdn": line.phone_number.msisdn},
    ).save()
    if actor.startswith("staff:"):
        record(
            actor,
            AuditAction.LINE_ACTIVATE,
            f"line:{line.pk}",
            {"msisdn": line.phone_number.msisdn},
            now=now,
        )
    return line


def needs_real_name(line: Line) -> bool:
    """True while the line's policy requires a registration it does not have."""
    if not line.policy.requires_real_name:
        return False
    return not RealNameRegistration.objects.filter(line_id=line.pk).exists()


def _real_name_pepper() -> bytes:
    configured = getattr(settings, "REAL_NAME_PEPPER", "")
    if configured:
        return str(configured).encode()
    # Local use only: settings refuse an empty pepper in production.
    return hashlib.sha256(f"leb-real-name-pepper:{settings.SECRET_KEY}".encode()).digest()


def normalize_document_number(value: str) -> str:
    """Upper case, no spaces, dashes or brackets: "A123456(7)" and "a1234567"
    are the same document."""
    text = unicodedata.normalize("NFKC", str(value or "")).upper()
    return "".join(ch for ch in text if ch.isalnum())


def document_fingerprint(document_type: str, number: str) -> str:
    message = f"{document_type}:{normalize_document_number(number)}".encode()
    return hmac.new(_real_name_pepper(), message, hashlib.sha256).hexdigest()


def check_real_name(
    line: Line, *, full_name: str, document_type: str, document_number: str
) -> tuple[str, str]:
    """The cleaned name and document number, or LineError saying what is wrong."""
    full_name = " ".join(str(full_name or "").split())
    number = normalize_document_number(document_number)
    if not full_name:
        raise LineError(_("Enter the name as it appears on the document."), code="name_empty")
    if len(full_name) > 200:
        raise LineError(_("The name is too long."), code="name_length")
    if document_type not in DocumentType.values:
        raise LineError(_("Choose the type of identity document."), code="document_type")
    if not 5 <= len(number) <= 30:
        raise LineError(
            _("Enter the document number (5 to 30 letters and digits)."), code="document_number"
        )
    if RealNameRegistration.objects.filter(line_id=line.pk).exists():
        raise LineError(_("This line is already registered."), code="already_registered")
    return full_name, number


@one_transaction
def do_register_real_name(
    line: Line,
    *,
    full_name: str,
    document_type: str,
    document_number: str,
    actor: str,
    now: datetime | None = None,
) -> RealNameRegistration:
    """Record who the line is registered to. The document number is kept only
    as a keyed fingerprint and its last four characters."""
    now = now or clock.now()
    full_name, number = check_real_name(
        line, full_name=full_name, document_type=document_type, document_number=document_number
    )
    line = lock_line(line.pk)
    if RealNameRegistration.objects.filter(line=line).exists():
        raise LineError(_("This line is already registered."), code="already_registered")
    registration = RealNameRegistration.objects.create(
        line=line,
        full_name=full_name,
        document_type=document_type,
        document_hmac=document_fingerprint(document_type, number),
        document_last4=number[-4:],
        registered_at=now,
        registered_by=actor,
    )
    _event(
        line,
        LineEventKind.REAL_NAME_REGISTERED,
        now,
        actor=actor,
        data={"document_type": document_type, "document_last4": registration.document_last4},
    ).save()
    record(
        actor,
        AuditAction.LINE_REAL_NAME_REGISTER,
        f"line:{line.pk}",
        {"document_type": document_type, "document_last4": registration.document_last4},
        now=now,
    )
    return registration


def mark_esim_installed(line: Line, *, installed_at: datetime | None, eid: str = "") -> None:
    """Keep the line's own eSIM facts (installed when, on which EID) in step
    with its profile. Called by the provisioning actions inside their
    transaction; `installed_at=None` means the profile left the device."""
    fields: dict[str, Any] = {"installed_at": installed_at}
    if eid:
        fields["eid"] = eid
    Line.objects.filter(pk=line.pk).update(**fields)
    line.installed_at = installed_at
    if eid:
        line.eid = eid


@one_transaction
def do_set_line_owner(line: Line, owner: Any, *, actor: str, now: datetime | None = None) -> Line:
    """Bind the line to an account (or unbind it with owner=None)."""
    now = now or clock.now()
    line = lock_line(line.pk)
    if line.owner_id == (owner.pk if owner else None):
        return line
    line.owner = owner
    line.save(update_fields=["owner"])
    _event(
        line,
        LineEventKind.OWNER_CHANGED,
        now,
        actor=actor,
        data={"owner": owner.get_username() if owner else ""},
    ).save()
    if actor.startswith("staff:"):
        record(
            actor,
            AuditAction.LINE_OWNER,
            f"line:{line.pk}",
            {"owner": owner.pk if owner else None},
            now=now,
        )
    return line


def refresh_next_transitions(
    policy: NumberPolicy, statuses: tuple[str, ...] = (LineStatus.GRACE, LineStatus.SUSPENDED)
) -> int:
    """After a policy's timers change, recompute when its lines in `statuses`
    next move, in one UPDATE, so the sweep neither misses nor delays a
    transition. Active lines next move at valid_until, which no timer
    changes; terminated and inventory lines have no next transition."""
    grace = timedelta(days=policy.grace_days)
    lost = timedelta(days=policy.grace_days + policy.suspension_days)
    return Line.objects.filter(
        policy=policy, status__in=list(statuses), valid_until__isnull=False
    ).update(
        next_transition_at=Case(
            When(status=LineStatus.GRACE, then=F("valid_until") + grace),
            default=F("valid_until") + lost,
            output_field=DateTimeField(),
        )
    )


@dataclass
class ValidityChange:
    from_status: str
    extension: lifecycle.Extension
    events: list[LineEvent] = field(default_factory=list)


def apply_topup_validity(
    line: Line, *, days: int, now: datetime, actor: str, data: dict[str, Any]
) -> ValidityChange:
    """Extend a locked line's validity and restore it to active. Records the
    transitions it passed through unseen by the sweep, then the top-up.
    The caller holds the line lock and has checked the line is not terminated."""
    policy = line.policy
    stored = line.status
    effective = lifecycle.effective_status(line, now)
    if effective in (LineStatus.TERMINATED, LineStatus.INVENTORY):
        raise LineError(_("This line cannot be topped up."), code="line_not_topupable")
    events = [
        _event(line, LineEventKind.STATUS_CHANGED, now, happened_at=at, from_status=a, to_status=b)
        for a, b, at in lifecycle.transitions_between(stored, line.valid_until, policy, now)  # type: ignore[arg-type]
    ]
    extension = lifecycle.extend_validity(policy, line.valid_until, now, days)
    line.valid_until = extension.valid_until
    line.status = LineStatus.ACTIVE
    line.next_transition_at = lifecycle.next_transition(line.status, line.valid_until, policy)
    line.save(update_fields=["valid_until", "status", "next_transition_at"])
    events.append(
        _event(
            line,
            LineEventKind.TOPPED_UP,
            now,
            from_status=effective,
            to_status=LineStatus.ACTIVE,
            actor=actor,
            data={
                **data,
                "days": days,
                "days_added": extension.days_added,
                "capped": extension.capped,
            },
        )
    )
    LineEvent.objects.bulk_create(events)
    return ValidityChange(from_status=effective, extension=extension, events=events)


def revoke_topup_validity(
    line: Line, *, days: int, now: datetime, actor: str, data: dict[str, Any]
) -> None:
    """Take back `days` of validity from a locked line (a refunded top-up),
    never below now, and let the status follow the dates."""
    if line.valid_until is None or line.status == LineStatus.TERMINATED:
        return
    before = line.status
    line.valid_until = max(now, line.valid_until - timedelta(days=days))
    line.status = lifecycle.status_at(line.valid_until, line.policy, now)
    if line.status == LineStatus.TERMINATED:  # cannot happen: valid_until >= now
        line.status = LineStatus.GRACE
    line.next_transition_at = lifecycle.next_transition(line.status, line.valid_until, line.policy)
    line.save(update_fields=["valid_until", "status", "next_transition_at"])
    _event(
        line,
        LineEventKind.REFUNDED,
        now,
        from_status=before,
        to_status=line.status,
        actor=actor,
        data={**data, "days_revoked": days},
    ).save()


@dataclass
class SweepResult:
    lines: int = 0
    transitions: int = 0
    terminated: int = 0
    forfeited_minor: dict[str, int] = field(default_factory=dict)
    numbers_released: int = 0
    batches: int = 0


EVENT_COLUMNS = (
    "line_id",
    "kind",
    "from_status",
    "to_status",
    "happened_at",
    "recorded_at",
    "valid_until",
    "actor",
    "data",
)


@dataclass
class _DueLine:
    """What the sweep reads of a due line: plain values, not a model instance
    (building thousands of those cost more than the batch's SQL)."""

    pk: int
    status: str
    valid_until: datetime
    policy: NumberPolicy
    phone_number_id: int | None
    wallet_id: int | None
    currency: str
    terminated_at: datetime | None


def _sweep_batch(now: datetime, batch_size: int, result: SweepResult) -> int:
    with transaction.atomic():
        query = Line.objects.filter(next_transition_at__lte=now).order_by(
            "next_transition_at", "pk"
        )
        if connection.features.has_select_for_update_skip_locked:
            # Two sweeps at once split the due lines instead of waiting on each other.
            query = query.select_for_update(skip_locked=True, of=("self",))
        rows = list(
            query.values_list(
                "pk",
                "status",
                "valid_until",
                "policy_id",
                "phone_number_id",
                "wallet_id",
                "currency",
                "terminated_at",
            )[:batch_size]
        )
        if not rows:
            return 0
        policies = NumberPolicy.objects.in_bulk({row[3] for row in rows})
        lines = []
        for pk, status, valid_until, policy_id, number_id, wallet_id, cur, ended in rows:
            assert valid_until is not None  # a line with a next transition has a validity
            lines.append(
                _DueLine(
                    pk, status, valid_until, policies[policy_id], number_id, wallet_id, cur, ended
                )
            )
        plans = [
            (line, lifecycle.transitions_between(line.status, line.valid_until, line.policy, now))
            for line in lines
        ]
        # Only lines that terminate need their number and wallet (and its
        # balance): one query each for those, not a join for every due line.
        ending = [
            line
            for line, steps in plans
            if any(to == LineStatus.TERMINATED for _from, to, _at in steps)
        ]
        msisdns = dict(
            PhoneNumber.objects.filter(
                pk__in=[line.phone_number_id for line in ending if line.phone_number_id]
            ).values_list("pk", "msisdn")
        )
        wallets = Account.objects.in_bulk([line.wallet_id for line in ending if line.wallet_id])
        events: list[tuple[Any, ...]] = []
        numbers: list[tuple[int, str, datetime, datetime]] = []
        forfeits: list[Posting] = []
        forfeited = _ForfeitedAccounts()
        for line, steps in plans:
            for from_status, to_status, at in steps:
                events.append(
                    _sweep_event(
                        line,
                        LineEventKind.STATUS_CHANGED,
                        at,
                        now,
                        from_status=from_status,
                        to_status=to_status,
                    )
                )
                result.transitions += 1
                if to_status == LineStatus.TERMINATED:
                    _terminate(
                        line,
                        at,
                        now,
                        result,
                        wallets,
                        msisdns,
                        events,
                        numbers,
                        forfeits,
                        forfeited,
                    )
                line.status = to_status
        post_transfer_groups(forfeits, now=now)
        update_rows(
            Line,
            ["status", "next_transition_at", "terminated_at"],
            [
                (
                    line.pk,
                    line.status,
                    lifecycle.next_transition(line.status, line.valid_until, line.policy),
                    line.terminated_at,
                )
                for line in lines
            ],
        )
        update_rows(PhoneNumber, ["status", "quarantined_until", "updated_at"], numbers)
        insert_rows(LineEvent, EVENT_COLUMNS, events)
        result.lines += len(lines)
        result.batches += 1
        return len(lines)


def _sweep_event(
    line: _DueLine,
    kind: str,
    at: datetime,
    now: datetime,
    *,
    from_status: str = "",
    to_status: str = "",
    data: dict[str, Any] | None = None,
) -> tuple[Any, ...]:
    """A line event as the row EVENT_COLUMNS names (see `_event`)."""
    return (line.pk, kind, from_status, to_status, at, now, line.valid_until, "sweep", data or {})


class _ForfeitedAccounts(dict[str, Account]):
    def __missing__(self, currency: str) -> Account:
        self[currency] = system_account(AccountKind.FORFEITED, currency)
        return self[currency]


def _terminate(
    line: _DueLine,
    at: datetime,
    now: datetime,
    result: SweepResult,
    wallets: dict[int, Account],
    msisdns: dict[int, str],
    events: list[tuple[Any, ...]],
    numbers: list[tuple[int, str, datetime, datetime]],
    forfeits: list[Posting],
    forfeited: _ForfeitedAccounts,
) -> None:
    line.terminated_at = at
    result.terminated += 1
    wallet = wallets.get(line.wallet_id or 0)
    balance = wallet.balance if wallet is not None else 0
    if line.policy.forfeit_balance_at_termination and wallet is not None and balance > 0:
        forfeits.append(
            Posting(
                f"line:{line.pk}:forfeit",
                [Leg(wallet, forfeited[line.currency], balance, "forfeit")],
                description=f"balance forfeited at termination of line {line.pk}",
            )
        )
        result.forfeited_minor[line.currency] = (
            result.forfeited_minor.get(line.currency, 0) + balance
        )
        events.append(
            _sweep_event(
                line,
                LineEventKind.BALANCE_FORFEITED,
                at,
                now,
                data={"amount": balance, "currency": line.currency},
            )
        )
    if line.phone_number_id is not None:
        until = lifecycle.number_released_at(at, line.policy)
        numbers.append((line.phone_number_id, NumberStatus.QUARANTINED, until, now))
        events.append(
            _sweep_event(
                line,
                LineEventKind.NUMBER_QUARANTINED,
                at,
                now,
                data={"msisdn": msisdns[line.phone_number_id], "until": until.isoformat()},
            )
        )


def release_quarantined_numbers(now: datetime) -> int:
    return PhoneNumber.objects.filter(
        status=NumberStatus.QUARANTINED, quarantined_until__lte=now
    ).update(status=NumberStatus.AVAILABLE, quarantined_until=None, updated_at=now)


def sweep_lines(now: datetime | None = None, *, batch_size: int = 1000) -> SweepResult:
    """Persist every transition that is due. Each batch is its own transaction,
    so a crash loses nothing and the next run resumes; it selects by the indexed
    next_transition_at, so its cost follows the due lines, not all lines."""
    now = now or clock.now()
    result = SweepResult()
    while _sweep_batch(now, batch_size, result) == batch_size:
        pass
    result.numbers_released = release_quarantined_numbers(now)
    if result.terminated:
        logger.info(
            "sweep terminated %d lines, forfeited %s", result.terminated, result.forfeited_minor
        )
    return result


# --- Policies and the number pool (the back office's pages) ----------------------

POLICY_FIELDS = (
    "code",
    "name",
    "first_topup_days",
    "grace_days",
    "suspension_days",
    "quarantine_days",
    "max_validity_days",
    "extension_rule",
    "number_prefix",
    "reminder_offsets",
    "restore_fee",
    "forfeit_balance_at_termination",
    "refund_validity_rule",
    "plans_from_balance",
    "requires_real_name",
)


def check_reminder_offsets(offsets: Any) -> list[int]:
    """Whole positive days before expiry, most distant first; LineError otherwise."""
    if not isinstance(offsets, list) or not all(
        isinstance(day, int) and not isinstance(day, bool) and day > 0 for day in offsets
    ):
        raise LineError(
            {"reminder_offsets": [_("Enter a list of whole days before expiry, e.g. [30, 7, 1].")]}
        )
    return sorted(set(offsets), reverse=True)


def check_policy(policy: NumberPolicy) -> None:
    """Everything a policy must satisfy before it is saved (LineError otherwise)."""
    problems: dict[str, list[Any]] = {}
    try:
        policy.reminder_offsets = check_reminder_offsets(policy.reminder_offsets)
    except LineError as exc:
        problems.update(exc.message_dict)
    if policy.max_validity_days is not None and policy.max_validity_days < 1:
        problems["max_validity_days"] = [
            _("The validity cap must be at least one day, or empty for no cap.")
        ]
    prefix = (policy.number_prefix or "").strip()
    if prefix and not (prefix.startswith("+") and prefix[1:].isdigit()):
        problems["number_prefix"] = [_("Enter a prefix as + and digits, e.g. +852.")]
    policy.number_prefix = prefix
    if problems:
        raise LineError(problems)
    try:
        policy.full_clean(validate_constraints=False)
    except ValidationError as exc:
        raise LineError(exc.message_dict) from exc


@one_transaction
def do_create_policy(
    fields: dict[str, Any], *, actor: str, now: datetime | None = None
) -> NumberPolicy:
    """A new number policy, checked and audited. No line uses it yet."""
    now = now or clock.now()
    unknown = sorted(set(fields) - set(POLICY_FIELDS))
    if unknown:
        raise ValueError(f"not editable here: {', '.join(unknown)}")
    policy = NumberPolicy(**fields)
    check_policy(policy)
    policy.save()
    record(
        actor,
        AuditAction.NUMBERPOLICY_ADD,
        f"numberpolicy:{policy.pk}",
        {"fields": sorted(fields)},
        now=now,
    )
    return policy


@dataclass(frozen=True)
class Rescheduled:
    """How many stored dates a policy change moved."""

    # Lines in grace or suspended whose next transition moved.
    lines: int = 0
    # Quarantined numbers (of lines of the policy that terminated) whose release moved.
    numbers: int = 0


def reschedule_policy_dates(
    policy: NumberPolicy, changed: set[str], *, actor: str, now: datetime
) -> Rescheduled:
    """Move the stored dates that follow from the policy's timers, set-based:
    one UPDATE per date column. A line in grace next moves (to suspended) at
    valid_until + grace days, a suspended one (to terminated) at valid_until +
    grace + suspension days; a quarantined number goes back to the pool at the
    termination of its line + quarantine days. Active lines next move at
    valid_until, which no timer changes; terminated lines keep their dates
    (what happened, happened). Validity already granted (first top-up days,
    the cap) is not taken back or added to."""
    lines = numbers = 0
    if {"grace_days", "suspension_days"} & changed:
        # Grace ends after grace days alone: only suspended lines move when
        # only the suspension changes.
        statuses: tuple[str, ...] = (
            (LineStatus.GRACE, LineStatus.SUSPENDED)
            if "grace_days" in changed
            else (LineStatus.SUSPENDED,)
        )
        lines = refresh_next_transitions(policy, statuses)
    if "quarantine_days" in changed:
        # The line that put a number in quarantine is its latest terminated one.
        quarantining = Line.objects.filter(
            phone_number=OuterRef("pk"), status=LineStatus.TERMINATED, terminated_at__isnull=False
        ).order_by("-terminated_at", "-pk")
        numbers = (
            PhoneNumber.objects.filter(status=NumberStatus.QUARANTINED)
            .alias(quarantining_policy=Subquery(quarantining.values("policy_id")[:1]))
            .filter(quarantining_policy=policy.pk)
            .update(
                quarantined_until=ExpressionWrapper(
                    Subquery(quarantining.values("terminated_at")[:1])
                    + timedelta(days=policy.quarantine_days),
                    output_field=DateTimeField(),
                ),
                updated_at=now,
            )
        )
    result = Rescheduled(lines=lines, numbers=numbers)
    if lines or numbers:
        record(
            actor,
            AuditAction.LINES_RESCHEDULE,
            f"numberpolicy:{policy.pk}",
            {"lines": lines, "numbers": numbers, "fields": sorted(changed & _TIMER_FIELDS)},
            now=now,
        )
    return result


_TIMER_FIELDS = {"grace_days", "suspension_days", "quarantine_days"}


@one_transaction
def do_update_policy(
    policy: NumberPolicy, changes: dict[str, Any], *, actor: str, now: datetime | None = None
) -> tuple[NumberPolicy, Rescheduled]:
    """Change a policy and move the dates of its lines and numbers that
    follow from the changed timers, in the same transaction, so the sweep
    neither misses nor delays a transition. Audited: the change, and how
    many dates moved."""
    now = now or clock.now()
    unknown = sorted(set(changes) - set(POLICY_FIELDS))
    if unknown:
        raise ValueError(f"not editable here: {', '.join(unknown)}")
    policy = NumberPolicy.objects.select_for_update().get(pk=policy.pk)
    before = {name: getattr(policy, name) for name in POLICY_FIELDS}
    changed = [name for name, value in changes.items() if before[name] != value]
    if not changed:
        return policy, Rescheduled()
    for name in changed:
        setattr(policy, name, changes[name])
    check_policy(policy)
    policy.save(update_fields=changed)
    result = reschedule_policy_dates(policy, set(changed), actor=actor, now=now)
    record(
        actor,
        AuditAction.NUMBERPOLICY_CHANGE,
        f"numberpolicy:{policy.pk}",
        {
            "fields": changed,
            "before": {name: before[name] for name in changed},
            "after": {name: getattr(policy, name) for name in changed},
            "rescheduled_lines": result.lines,
            "rescheduled_numbers": result.numbers,
        },
        now=now,
    )
    return policy, result


@one_transaction
def do_add_phone_number(msisdn: str, *, actor: str, now: datetime | None = None) -> PhoneNumber:
    """Put a new number into the pool, available."""
    now = now or clock.now()
    msisdn = normalize_msisdn(msisdn)
    if PhoneNumber.objects.filter(msisdn=msisdn).exists():
        raise LineError(
            {"msisdn": [_("Number %(msisdn)s is already in the pool.") % {"msisdn": msisdn}]}
        )
    number = PhoneNumber.objects.create(msisdn=msisdn, status=NumberStatus.AVAILABLE)
    record(
        actor, AuditAction.PHONENUMBER_ADD, f"phonenumber:{number.pk}", {"msisdn": msisdn}, now=now
    )
    return number
