"""USSD menus (Africa's Talking conventions).

The gateway posts `text`: every input of the session so far, joined by "*".
So the menu is a pure function of that text: each request walks the inputs
from the top. A reply starts with "CON " (ask for more) or "END " (final) and
is at most USSD_MAX_CHARS characters (182 by default), prefix included.

Menu: 1 validity and balance, 2 voucher top-up, 3 buy a plan from the balance
(when the line's policy allows), 4 language. A wrong choice in the main menu
shows it again; anything wrong deeper ends the session with the reason and
writes nothing.
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlparse

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from leb.accounts.models import Profile
from leb.catalog.models import Plan
from leb.catalog.quotes import Quote, QuoteError, quote
from leb.common.formatting import format_local_date, format_money
from leb.lines import lifecycle
from leb.lines.identifiers import format_msisdn, normalize_msisdn
from leb.lines.models import Line, LineStatus
from leb.lines.queries import live_line_for_number
from leb.topups.balance import BalanceRefused, do_buy_plan_from_balance

from . import queries

CHANNEL = "ussd"
PIN_DIGITS = 16
LANGUAGES = {"1": "zh-hans", "2": "zh-hant", "3": "en"}
LANGUAGE_LABELS = {"1": "简体中文", "2": "繁體中文", "3": "English"}


def _limit() -> int:
    return int(getattr(settings, "USSD_MAX_CHARS", 182))


def fit(kind: str, lines: list[str]) -> str:
    """`CON`/`END` and the lines, cut to the limit (a last resort: every
    screen is written to fit)."""
    text = f"{kind} " + "\n".join(line for line in lines if line)
    limit = _limit()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def con(*lines: str) -> str:
    return fit("CON", list(lines))


def end(*lines: str) -> str:
    return fit("END", list(lines))


def _date(value: datetime | None) -> str:
    from zoneinfo import ZoneInfo

    if value is None:
        return "-"
    return format_local_date(value, ZoneInfo(settings.TIME_ZONE), fmt="medium")


def _money(amount: int, currency: str) -> str:
    return format_money(amount, currency)


def days_added_line(frozen: Quote, cap_days: int | None) -> str:
    """One short line when a top-up adds fewer days than its plan: how many,
    and why (the cap, or days counted from today). Empty otherwise."""
    if not frozen.adds_fewer_days:
        return ""
    if frozen.fewer_days_because == "cap" and cap_days:
        why = _("cap: %(max)s days") % {"max": cap_days}
    else:
        why = _("counted from today")
    if frozen.days_added == 0:
        return _("Adds no days, only credit (%(why)s).") % {"why": why}
    return ngettext(
        "Adds %(added)s day, not %(days)s (%(why)s).",
        "Adds %(added)s days, not %(days)s (%(why)s).",
        frozen.days_added,
    ) % {"added": frozen.days_added, "days": frozen.validity_days, "why": why}


def terminated_screen(facts: queries.TerminatedFacts) -> str:
    """What a session from a number whose line is gone reads."""
    site = urlparse(settings.SITE_URL).hostname or settings.SITE_URL
    values = {"date": _date(facts.terminated_on), "site": site}
    if facts.quarantined_until is not None:
        values["until"] = _date(facts.quarantined_until)
        text = _(
            "This line was terminated on %(date)s and can no longer be topped up. "
            "Its number is in quarantine until %(until)s. "
            "Buy a new leb card, or contact support: %(site)s"
        )
    else:
        text = _(
            "This line was terminated on %(date)s and can no longer be topped up. "
            "Its number has been released. Buy a new leb card, or contact support: %(site)s"
        )
    return end(text % values)


def _chosen_language(text: str) -> str:
    """The language picked first thing in the session (4, then a key), if any."""
    tokens = text.split("*") if text else []
    if len(tokens) >= 2 and tokens[0] == "4":
        return LANGUAGES.get(tokens[1], "")
    return ""


def _line_language(line: Line | None) -> str:
    language = ""
    if line is not None and line.owner_id is not None:
        profile = Profile.objects.filter(user_id=line.owner_id).only("language").first()
        language = ((profile.language if profile else "") or "").lower()
    if language in LANGUAGES.values():
        return language
    default = (getattr(settings, "USSD_DEFAULT_LANGUAGE", "en") or "en").lower()
    return default if default in LANGUAGES.values() else "en"


class Menu:
    def __init__(self, line: Line, session_id: str, now: datetime) -> None:
        self.line = line
        self.session_id = session_id
        self.now = now

    @property
    def sells_from_balance(self) -> bool:
        return bool(self.line.policy.plans_from_balance)

    def main(self, note: str = "") -> str:
        return con(
            note,
            _("1 Validity and balance"),
            _("2 Top up with a voucher"),
            _("3 Buy a plan with balance") if self.sells_from_balance else "",
            _("4 Language / 语言 / 語言"),
        )

    def facts(self) -> list[str]:
        facts = queries.line_facts(self.line, self.now)
        lines = [format_msisdn(self.line.msisdn)]
        if facts.status != LineStatus.ACTIVE:
            lines.append(_("Status: %(status)s") % {"status": LineStatus(facts.status).label})
        lines += [
            _("Valid until: %(date)s") % {"date": _date(facts.valid_until)},
            _("Balance: %(amount)s") % {"amount": _money(facts.balance, facts.currency)},
        ]
        return lines

    def status(self) -> str:
        return end(*self.facts())

    def voucher(self, rest: list[str]) -> str:
        from leb.vouchers.actions import VoucherRefused, do_redeem_voucher

        if not rest:
            return con(_("Enter the %(count)s-digit voucher PIN:") % {"count": PIN_DIGITS})
        if len(rest) > 1:
            return end(_("A PIN contains digits only. Do not type * in it. Nothing was charged."))
        pin = rest[0].strip()
        if not pin:
            return end(_("No PIN was entered. Nothing was charged."))
        if not (pin.isascii() and pin.isdigit()):
            return end(_("A PIN contains digits only. Nothing was charged."))
        if len(pin) != PIN_DIGITS:
            return end(
                _("A voucher PIN has %(count)s digits; you entered %(entered)s.")
                % {"count": PIN_DIGITS, "entered": len(pin)}
            )
        try:
            redemption = do_redeem_voucher(
                line=self.line,
                pin=pin,
                channel=CHANNEL,
                lockout_keys={"line": str(self.line.pk), "caller": self.line.msisdn},
                now=self.now,
            )
        except VoucherRefused as exc:
            return end(exc.messages[0])
        self.line.refresh_from_db()
        frozen = Quote.from_dict(redemption.order.quote)
        return end(
            _("Top-up complete."),
            *self.facts()[1:],
            days_added_line(frozen, self.line.policy.max_validity_days),
        )

    def plans(self, rest: list[str]) -> str | None:
        """None: back to the main menu (the caller chose 0)."""
        if not self.sells_from_balance:
            return end(_("Plans cannot be bought from the balance on this line."))
        plans = queries.plans_on_sale(self.line.currency, CHANNEL, self.now, limit=8)
        if not plans:
            return end(_("No plans can be bought here right now."))
        facts = queries.line_facts(self.line, self.now)
        if not rest:
            lines = [_("Balance: %(amount)s") % {"amount": _money(facts.balance, facts.currency)}]
            footer = _("0 Back")
            for index, plan in enumerate(plans, start=1):
                entry = _("%(key)s %(price)s, %(days)s days") % {
                    "key": index,
                    "price": _money(plan.price, plan.currency),
                    "days": plan.validity_days,
                }
                if len(con(*lines, entry, footer)) > _limit():
                    break
                lines.append(entry)
            return con(*lines, footer)
        choice = rest[0]
        if choice == "0" and len(rest) == 1:
            return None
        if not (choice.isdigit() and 1 <= int(choice) <= len(plans)):
            return end(_("That is not one of the choices. Nothing was charged."))
        plan = plans[int(choice) - 1]
        if len(rest) == 1:
            return self.confirm(plan, facts.balance)
        if rest[1:] == ["2"]:
            return end(_("Cancelled. Nothing was charged."))
        if rest[1:] != ["1"]:
            return end(_("That is not one of the choices. Nothing was charged."))
        return self.buy(plan)

    def confirm(self, plan: Plan, balance: int) -> str:
        try:
            frozen = quote(self.line, plan, CHANNEL, now=self.now)
        except QuoteError as exc:
            return end(exc.messages[0])
        return con(
            _("Pay %(price)s from your balance (%(balance)s) for %(days)s days?")
            % {
                "price": _money(frozen.price, frozen.currency),
                "balance": _money(balance, frozen.currency),
                "days": frozen.validity_days,
            },
            _("Valid until: %(date)s") % {"date": _date(frozen.new_valid_until)},
            days_added_line(frozen, self.line.policy.max_validity_days),
            _("1 Confirm"),
            _("2 Cancel"),
        )

    def buy(self, plan: Plan) -> str:
        try:
            order = do_buy_plan_from_balance(
                line=self.line,
                plan=plan,
                channel=CHANNEL,
                idempotency_key=f"ussd:{self.session_id}:{self.line.pk}:{plan.pk}"[:200],
                now=self.now,
            )
        except BalanceRefused as exc:
            return end(exc.messages[0])
        self.line.refresh_from_db()
        return end(
            _("Done. Receipt %(number)s.") % {"number": order.receipt_number or "-"},
            *self.facts()[1:],
            days_added_line(Quote.from_dict(order.quote), self.line.policy.max_validity_days),
        )


def _walk(menu: Menu, tokens: list[str]) -> str:
    """Follow the inputs from the main menu; a language choice switches the
    language for everything after it."""
    position = 0
    note = ""
    while True:
        if position >= len(tokens):
            return menu.main(note)
        choice = tokens[position]
        rest = tokens[position + 1 :]
        if choice == "1":
            return menu.status()
        if choice == "2":
            return menu.voucher(rest)
        if choice == "3" and menu.sells_from_balance:
            answer = menu.plans(rest)
            if answer is not None:
                return answer
            position += 2
            note = ""
            continue
        if choice == "4":
            if not rest:
                return con(*[f"{key} {label}" for key, label in LANGUAGE_LABELS.items()])
            language = LANGUAGES.get(rest[0])
            if language is None:
                return end(_("That is not one of the choices."))
            translation.activate(language)
            position += 2
            note = ""
            continue
        # A wrong choice in the main menu: show it again and ignore that input.
        position += 1
        note = _("That is not one of the choices.")


def reply(*, session_id: str, phone_number: str, text: str, now: datetime) -> str:
    try:
        msisdn = normalize_msisdn(phone_number)
    except ValidationError:
        msisdn = ""
    line = live_line_for_number(msisdn) if msisdn else None
    gone = None
    if line is None or lifecycle.effective_status(line, now) == LineStatus.TERMINATED:
        # A number whose line was terminated: say so, in its last owner's language.
        gone = queries.terminated_facts(msisdn, now)
    language = _line_language(gone.line if gone is not None else line)
    with translation.override(_chosen_language(text) or language):
        if gone is not None:
            return terminated_screen(gone)
        if line is None or line.status == LineStatus.INVENTORY:
            return end(_("This number is not one of our lines."))
        if lifecycle.effective_status(line, now) == LineStatus.TERMINATED:
            return end(_("This line has been terminated and can no longer be topped up."))
        tokens = text.split("*") if text else []
        return _walk(Menu(line, session_id, now), tokens)
