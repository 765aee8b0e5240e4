"""Agents' float statements as an export (leb.exports): for each agent of the
agent list's filters, the opening balance and every movement of its float
in a period, with the running balance. See docs/exports.md."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date, timedelta
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from leb.common import clock
from leb.common.exporting import (
    Column,
    Dataset,
    Filter,
    Kind,
    Money,
    Prepared,
    Registry,
    choice_filter,
    local_day_start,
    search_q,
    text_filter,
)
from leb.ledger.models import Account, Transfer

from .models import Agent, AgentStatus
from .queries import MAX_STATEMENT_DAYS, _net, float_code, statement_range_ok

OPENING = "opening"


class AgentStatementsDataset(Dataset):
    name = "agent_statements"
    label = _("Agents' statements")
    permission = "exports.export_agent_statements"
    changelist = "agents.agent"
    # The agent list's filters and search (leb.agents.admin.AgentAdmin), and
    # the statement's period (both days included, the operator's time zone;
    # this month when not given).
    filters = (
        choice_filter("status__exact", AgentStatus.choices, label=_("status")),
        text_filter("region__exact", label=_("region"), max_length=2),
        text_filter("currency__exact", label=_("currency"), max_length=3),
        Filter("date_from", forms.DateField(), label=_("From"), asked=True),
        Filter("date_to", forms.DateField(), label=_("To"), asked=True),
    )
    search_fields = ("code", "legal_name", "display_name", "contact_email")
    columns = (
        Column("agent", _("Agent")),
        Column("agent_name", _("Agent name")),
        Column("posted_at", _("Posted"), Kind.DATETIME),
        Column("movement", _("Movement")),
        Column("reference", _("Reference")),
        Column("description", _("Description")),
        Column("amount", _("Amount"), Kind.MONEY),
        Column("balance", _("Balance after"), Kind.MONEY),
        Column("currency", _("Currency")),
    )

    def clean_together(self, cleaned: dict[str, Any]) -> dict[str, Any]:
        today = timezone.localdate(clock.now())
        cleaned.setdefault("date_from", today.replace(day=1))
        cleaned.setdefault("date_to", today)
        if not statement_range_ok(cleaned["date_from"], cleaned["date_to"]):
            raise ValidationError(
                _("The period must end on or after its first day and last at most %(days)d days."),
                params={"days": MAX_STATEMENT_DAYS},
            )
        return cleaned

    def queryset(self, cleaned: dict[str, Any]) -> QuerySet[Agent]:
        return Agent.objects.all()

    def filtered(self, cleaned: dict[str, Any]) -> QuerySet[Agent]:
        query = self.queryset(cleaned)
        for param in ("status__exact", "region__exact", "currency__exact"):
            if param in cleaned:
                query = query.filter(**{param: cleaned[param]})
        if cleaned.get("q"):
            query = query.filter(search_q(self.search_fields, cleaned["q"]))
        return query.order_by("code")

    def _movements(self, account: Account, start: Any, end: Any) -> QuerySet[Transfer]:
        return Transfer.objects.filter(
            Q(debit_account_id=account.pk) | Q(credit_account_id=account.pk),
            created_at__gte=start,
            created_at__lt=end,
        )

    def prepare(self, cleaned: dict[str, Any], chunk_size: int) -> Prepared:
        first: date = cleaned["date_from"]
        last: date = cleaned["date_to"]
        start, end = local_day_start(first), local_day_start(last + timedelta(days=1))
        agents = list(self.filtered(cleaned))
        accounts = {
            account.code: account
            for account in Account.objects.filter(code__in=[float_code(a) for a in agents])
        }
        total = 0
        for agent in agents:
            account = accounts.get(float_code(agent))
            total += 1 + (self._movements(account, start, end).count() if account else 0)
        return Prepared(total, self._rows(agents, accounts, start, end, chunk_size))

    def _rows(
        self,
        agents: list[Agent],
        accounts: dict[str, Account],
        start: Any,
        end: Any,
        chunk_size: int,
    ) -> Iterator[Sequence[Any]]:
        for agent in agents:
            account = accounts.get(float_code(agent))
            running = _net(account.pk, Q(created_at__lt=start)) if account else 0
            yield (
                agent.code,
                agent.display_name,
                start,
                str(_("Opening balance")),
                "",
                "",
                None,
                Money(running, agent.currency),
                agent.currency,
            )
            if account is None:
                continue
            # Pages in (posted, id) order: the running balance needs time order.
            after: tuple[Any, int] | None = None
            while True:
                page = self._movements(account, start, end).select_related("group")
                if after is not None:
                    page = page.filter(
                        Q(created_at__gt=after[0]) | Q(created_at=after[0], pk__gt=after[1])
                    )
                batch = list(page.order_by("created_at", "pk")[:chunk_size])
                if not batch:
                    break
                for transfer in batch:
                    amount = (
                        transfer.amount
                        if transfer.credit_account_id == account.pk
                        else -transfer.amount
                    )
                    running += amount
                    yield (
                        agent.code,
                        agent.display_name,
                        transfer.created_at,
                        transfer.code,
                        transfer.group.idempotency_key,
                        transfer.group.description,
                        Money(amount, agent.currency),
                        Money(running, agent.currency),
                        agent.currency,
                    )
                after = (batch[-1].created_at, batch[-1].pk)


def register(registry: Registry) -> None:
    registry.add(AgentStatementsDataset())
