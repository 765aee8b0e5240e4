"""The hotline: a DTMF menu in Mandarin, Cantonese and English, as TwiML.

Each turn reads the call's state (CallSession, by CallSid), handles the keys
the caller pressed for the prompt it was asked (the prompt's number travels in
the action URL) and answers with the next prompt. No input (Twilio falls
through the <Gather> to the <Redirect>) and wrong input re-prompt; the
fourth miss in a row ends the call politely. A repeated request (a Twilio
retry) gets the same answer again without doing anything twice, and the
saved-card charge carries an idempotency key made of the CallSid and the
prompt's number.

Balance and the saved card are offered only when the caller's own number
(`From`) is the line: a caller who keys in a number may hear its validity and
top it up with a voucher, as anyone may on the website.
"""

from __future__ import annotations

import math
import unicodedata
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlparse

from django.conf import settings
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from twilio.twiml.voice_response import Gather, VoiceResponse

from leb.catalog.models import Plan
from leb.catalog.quotes import Quote, QuoteError, quote
from leb.lines import lifecycle
from leb.lines.identifiers import normalize_msisdn
from leb.lines.models import Line, LineStatus
from leb.lines.queries import live_line_for_number
from leb.topups.models import OrderStatus

from . import actions, queries, speech
from .models import CallSession
from .security import public_base_url

CHANNEL = "ivr"
MAX_RETRIES = 3
PIN_DIGITS = 16
# Entering a number or a PIN takes longer than pressing one key.
LONG_TIMEOUT = 15
_NOT_A_LINE = (LineStatus.TERMINATED, LineStatus.INVENTORY)


def _absolute(name: str) -> str:
    return public_base_url() + reverse(name)


def action_url(seq: int) -> str:
    return f"{_absolute('telephony:voice_input')}?seq={seq}"


def _valid_number(caller: str) -> str:
    try:
        return normalize_msisdn(caller)
    except ValidationError:
        return ""


def _caller_line(caller: str, now: datetime) -> Line | None:
    msisdn = _valid_number(caller)
    if not msisdn:
        return None
    line = live_line_for_number(msisdn)
    if line is None or line.status == LineStatus.INVENTORY:
        return None
    if lifecycle.effective_status(line, now) == LineStatus.TERMINATED:
        return None  # gone by its dates: the caller hears so after the language menu
    return line


class Turn:
    """One answer to Twilio: what to say, then the next prompt or the end."""

    def __init__(self, session: CallSession, now: datetime) -> None:
        self.session = session
        self.now = now
        self.response = VoiceResponse()
        self.lang = speech.language(session.language) if session.language else None

    # -- speaking ------------------------------------------------------------

    def _say_to(self, target: VoiceResponse | Gather, text: str, lang: speech.Language) -> None:
        target.say(text, voice=lang.voice, language=lang.say_language)

    def say(self, text: str) -> None:
        assert self.lang is not None
        self._say_to(self.response, text, self.lang)

    def say_in_every_language(self, message: Any) -> None:
        """Before a language is chosen: the same sentence in each language."""
        for code in speech.MENU.values():
            lang = speech.language(code)
            with translation.override(lang.django):
                self._say_to(self.response, str(message), lang)

    # -- prompts -------------------------------------------------------------

    def prompt(self, step: str) -> None:
        session = self.session
        session.step = step
        session.seq += 1
        url = action_url(session.seq)
        if step == "language":
            gather = self.response.gather(
                input="dtmf",
                num_digits=1,
                timeout=settings.IVR_GATHER_TIMEOUT,
                action=url,
                method="POST",
            )
            for key, code in speech.MENU.items():
                lang = speech.language(code)
                with translation.override(lang.django):
                    text = _("For %(language)s, press %(key)s.") % {
                        "language": lang.menu_label,
                        "key": key,
                    }
                self._say_to(gather, text, lang)
        else:
            texts = getattr(self, f"_prompt_{step}")()
            if texts is None:
                return  # the prompt turned into another one
            entry: dict[str, Any] = (
                {"finish_on_key": "#", "timeout": LONG_TIMEOUT}
                if step in ("number", "pin")
                else {"num_digits": 1, "timeout": settings.IVR_GATHER_TIMEOUT}
            )
            gather = self.response.gather(input="dtmf", action=url, method="POST", **entry)
            assert self.lang is not None
            for text in texts:
                self._say_to(gather, text, self.lang)
        # No key pressed: Twilio goes on to the next verb, which asks again.
        self.response.redirect(url, method="POST")

    def _prompt_number(self) -> list[str]:
        return [_("Please key in your mobile number, then press the hash key.")]

    def _prompt_pin(self) -> list[str]:
        return [
            _("Please key in the %(count)s-digit PIN of your voucher, then press the hash key.")
            % {"count": PIN_DIGITS}
        ]

    def _prompt_main(self) -> list[str]:
        texts = [_("To top up with a voucher, press 1.")]
        if self.session.caller_is_line:
            texts.append(_("To hear your validity and balance, press 2."))
        else:
            texts.append(_("To hear the validity of the number, press 2."))
        if self.saved_method() is not None:
            texts.append(_("To top up with your saved card, press 3."))
        texts += [
            _("To hear these options again, press 9."),
            _("To speak to our support team, press 0."),
        ]
        return texts

    def _prompt_plans(self) -> list[str] | None:
        line = self.line
        plans = queries.plans_on_sale(line.currency, CHANNEL, self.now)
        if not plans:
            self.say(_("Sorry, no plans can be bought by phone right now."))
            self.prompt("main")
            return None
        self.session.data["plans"] = [plan.pk for plan in plans]
        assert self.lang is not None
        texts = [
            _("For %(price)s with %(days)s of validity, press %(key)s.")
            % {
                "price": speech.spoken_money(plan.price, plan.currency, self.lang),
                "days": speech.spoken_days(plan.validity_days, self.lang),
                "key": index,
            }
            for index, plan in enumerate(plans, start=1)
        ]
        texts.append(_("To go back to the main menu, press 0."))
        return texts

    def _prompt_confirm(self) -> list[str] | None:
        assert self.lang is not None
        plan = Plan.objects.filter(pk=self.session.data.get("plan")).first()
        method = self.saved_method()
        if plan is None or method is None:
            self.prompt("main")
            return None
        try:
            frozen = quote(self.line, plan, CHANNEL, now=self.now)
        except QuoteError as exc:
            self.say(exc.messages[0])
            self.prompt("plans" if exc.code == "adds_nothing" else "main")
            return None
        return [
            _("You chose %(price)s with %(days)s of validity.")
            % {
                "price": speech.spoken_money(frozen.price, frozen.currency, self.lang),
                "days": speech.spoken_days(frozen.validity_days, self.lang),
            },
            _("It will be charged to your saved card ending in %(digits)s.")
            % {"digits": speech.spoken_digits(getattr(method, "last4", ""))},
            *self.days_added_texts(frozen),
            _("To confirm, press 1. To cancel, press 2."),
        ]

    def days_added_texts(self, frozen: Quote, *, done: bool = False) -> list[str]:
        """The days a top-up really adds (or added) and why fewer than the
        plan's, spoken; before the confirm key, also the date it gives."""
        assert self.lang is not None
        lang = self.lang
        date = speech.spoken_date(frozen.new_valid_until, lang)
        if not frozen.adds_fewer_days:
            if done:
                return []
            return [_("Your number will then be valid until %(date)s.") % {"date": date}]
        if frozen.fewer_days_because == "cap":
            cap = self.line.policy.max_validity_days or 0
            why = _("Validity on this line cannot go beyond %(days)s from today.") % {
                "days": speech.spoken_days(cap, lang)
            }
        else:
            why = _("On this line the days count from today, not from the end of your validity.")
        values = {
            "added": speech.spoken_days(frozen.days_added, lang),
            "days": speech.spoken_days(frozen.validity_days, lang),
            "date": date,
        }
        if done:
            if frozen.days_added:
                text = _("This top-up added only %(added)s, not %(days)s.") % values
            else:
                text = _("This top-up added no days, only credit.")
            return [text, why]
        if frozen.days_added:
            text = (
                _(
                    "This top-up adds only %(added)s, not %(days)s: "
                    "your number will then be valid until %(date)s."
                )
                % values
            )
        else:
            text = (
                _("This top-up adds no days, only credit: your number stays valid until %(date)s.")
                % values
            )
        return [text, why]

    def say_terminated(self, facts: queries.TerminatedFacts, msisdn: str) -> None:
        """The line of `msisdn` is gone: since when, what became of the
        number, and what to do now."""
        assert self.lang is not None
        self.say(
            _(
                "The line with the number %(number)s was terminated on %(date)s. "
                "It can no longer be topped up."
            )
            % {
                "number": speech.spoken_digits(msisdn),
                "date": speech.spoken_date(facts.terminated_on, self.lang),
            }
        )
        if facts.quarantined_until is not None:
            self.say(
                _(
                    "The number is in quarantine until %(date)s and cannot be kept; "
                    "after that it may be given to a new subscriber."
                )
                % {"date": speech.spoken_date(facts.quarantined_until, self.lang)}
            )
        else:
            self.say(_("The number has been released and may be given to a new subscriber."))
        host = urlparse(settings.SITE_URL).hostname or settings.SITE_URL
        self.say(
            _(
                "To keep using leb, please buy a new leb card. For help, contact our "
                "support team through our website, %(site)s."
            )
            % {"site": host}
        )

    # -- outcomes ------------------------------------------------------------

    def goodbye(self) -> None:
        if self.lang is None:
            self.say_in_every_language(_("Thank you for calling. Goodbye."))
        else:
            self.say(_("Thank you for calling. Goodbye."))
        self.response.hangup()
        self.session.step = "ended"

    def retry(self, digits: str, message: str = "") -> None:
        """Wrong or missing input: say why and ask again, at most three times."""
        session = self.session
        session.retries += 1
        if session.retries > MAX_RETRIES:
            self.goodbye()
            return
        if message:
            self.say(message)
        elif self.lang is None:
            self.say_in_every_language(
                _("Sorry, that is not a valid choice.")
                if digits
                else _("Sorry, I did not hear you.")
            )
        else:
            self.say(
                _("Sorry, that is not a valid choice.")
                if digits
                else _("Sorry, I did not hear you.")
            )
        self.prompt(session.step)

    def advance(self, step: str) -> None:
        self.session.retries = 0
        self.prompt(step)

    # -- facts ---------------------------------------------------------------

    @property
    def line(self) -> Line:
        assert self.session.line is not None
        return self.session.line

    def saved_method(self) -> Any:
        if not self.session.caller_is_line or self.session.line is None:
            return None
        from leb.autokeep.queries import saved_method_for_line

        return saved_method_for_line(self.line, self.now)

    def say_line_facts(self, *, after_topup: bool = False) -> None:
        assert self.lang is not None
        self.line.refresh_from_db()
        facts = queries.line_facts(self.line, self.now)
        date = speech.spoken_date(facts.valid_until, self.lang) if facts.valid_until else ""
        if after_topup or facts.status == LineStatus.ACTIVE:
            self.say(_("Your number is valid until %(date)s.") % {"date": date})
        elif facts.status == LineStatus.GRACE:
            self.say(
                _(
                    "Your number's validity ended on %(date)s. It can only receive calls now. "
                    "Please top up to keep your number."
                )
                % {"date": date}
            )
        elif facts.status == LineStatus.SUSPENDED:
            lost = (
                speech.spoken_date(facts.number_lost_on, self.lang) if facts.number_lost_on else ""
            )
            self.say(
                _(
                    "Your number is suspended since its validity ended on %(date)s. "
                    "Please top up before %(lost)s to keep your number."
                )
                % {"date": date, "lost": lost}
            )
        else:
            self.say(_("This number can no longer be topped up."))
        if self.session.caller_is_line:
            self.say(
                _("Your balance is %(amount)s.")
                % {"amount": speech.spoken_money(facts.balance, facts.currency, self.lang)}
            )


# -- the steps -------------------------------------------------------------------


def _step_language(turn: Turn, digits: str) -> None:
    code = speech.MENU.get(digits)
    if code is None:
        turn.retry(digits)
        return
    turn.session.language = code
    turn.lang = speech.language(code)
    translation.activate(turn.lang.django)
    notice = speech.setting_text("IVR_CALL_CHARGE_NOTICE", turn.lang)
    if notice:
        turn.say(notice)
    if turn.session.line is None:
        caller = _valid_number(turn.session.caller)
        facts = queries.terminated_facts(caller, turn.now)
        if facts is not None:
            turn.say_terminated(facts, caller)
    turn.advance("main" if turn.session.line is not None else "number")


def _step_number(turn: Turn, digits: str) -> None:
    if not digits:
        turn.retry(digits)
        return
    try:
        msisdn = normalize_msisdn(digits)
    except ValidationError:
        turn.retry(digits, _("Sorry, that is not a valid phone number."))
        return
    line = live_line_for_number(msisdn)
    if line is not None and lifecycle.effective_status(line, turn.now) == LineStatus.TERMINATED:
        line = None  # gone by its dates, before the sweep wrote it down
    if line is None or line.status in _NOT_A_LINE:
        facts = queries.terminated_facts(msisdn, turn.now) if line is None else None
        if facts is not None:
            turn.say_terminated(facts, digits)
            turn.retry(digits, _("To hear about another number, key it in now."))
            return
        turn.retry(
            digits,
            _("Sorry, the number %(number)s is not one of our numbers. Please check it.")
            % {"number": speech.spoken_digits(digits)},
        )
        return
    turn.session.line = line
    turn.session.caller_is_line = False
    turn.advance("main")


def _step_main(turn: Turn, digits: str) -> None:
    if digits == "1":
        turn.advance("pin")
    elif digits == "2":
        turn.say_line_facts()
        turn.advance("main")
    elif digits == "3" and turn.saved_method() is not None:
        turn.advance("plans")
    elif digits == "9":
        turn.prompt("main")
    elif digits == "0":
        _support(turn)
    else:
        turn.retry(digits)


def _support(turn: Turn) -> None:
    number = getattr(settings, "IVR_SUPPORT_NUMBER", "")
    if number:
        turn.say(_("Connecting you to our support team. Please hold."))
        turn.response.dial(number)
        turn.response.hangup()
        turn.session.step = "ended"
        return
    assert turn.lang is not None
    host = urlparse(settings.SITE_URL).hostname or settings.SITE_URL
    turn.say(
        _("Our support team can be reached through our website, %(site)s, under Support.")
        % {"site": host}
    )
    hours = speech.setting_text("IVR_SUPPORT_HOURS", turn.lang)
    if hours:
        turn.say(_("Support hours: %(hours)s.") % {"hours": hours})
    turn.advance("main")


def _lock_minutes(exc: ValidationError, now: datetime) -> int:
    params = getattr(exc, "params", None) or {}
    for key in ("minutes", "retry_minutes"):
        if isinstance(params.get(key), int):
            return max(1, params[key])
    for key in ("until", "locked_until"):
        until = params.get(key)
        if isinstance(until, datetime):
            return max(1, math.ceil((until - now) / timedelta(minutes=1)))
    return 15


def _step_pin(turn: Turn, digits: str) -> None:
    from leb.vouchers.actions import VoucherRefused, do_redeem_voucher

    if not digits:
        turn.retry(digits)
        return
    if not digits.isdigit() or len(digits) != PIN_DIGITS:
        turn.retry(
            digits,
            _("A voucher PIN has %(count)s digits. You entered %(entered)s.")
            % {"count": PIN_DIGITS, "entered": len(digits)},
        )
        return
    keys = {"line": str(turn.line.pk)}
    caller = _valid_number(turn.session.caller)
    if caller:
        # A withheld caller ID ("anonymous") is no key: it would lock out every such caller.
        keys["caller"] = caller
    try:
        redemption = do_redeem_voucher(
            line=turn.line, pin=digits, channel=CHANNEL, lockout_keys=keys, now=turn.now
        )
    except VoucherRefused as exc:
        code = getattr(exc, "code", "")
        if code == "locked":
            turn.say(
                _("Too many attempts. Please try again in %(minutes)s minutes.")
                % {"minutes": _lock_minutes(exc, turn.now)}
            )
            turn.advance("main")
        elif code in ("pin_invalid", "pin_format"):
            # The same words whether the PIN exists or not.
            turn.say(_("Sorry, this PIN was not accepted. Please check it and try again."))
            turn.prompt("pin")
        else:
            turn.say(exc.messages[0])
            turn.advance("main")
        return
    turn.say(_("Thank you. Your top-up is complete."))
    for text in turn.days_added_texts(Quote.from_dict(redemption.order.quote), done=True):
        turn.say(text)
    turn.say_line_facts(after_topup=True)
    turn.advance("main")


def _step_plans(turn: Turn, digits: str) -> None:
    plan_ids = turn.session.data.get("plans") or []
    if digits == "0":
        turn.advance("main")
    elif digits == "9":
        turn.prompt("plans")
    elif digits.isdigit() and 1 <= int(digits) <= len(plan_ids):
        turn.session.data["plan"] = plan_ids[int(digits) - 1]
        turn.advance("confirm")
    else:
        turn.retry(digits)


def _step_confirm(turn: Turn, digits: str, seq: int) -> None:
    from leb.autokeep.actions import do_charge_saved_method

    if digits == "2":
        turn.say(_("Cancelled. Nothing was charged."))
        turn.advance("main")
        return
    if digits != "1":
        turn.retry(digits)
        return
    plan = Plan.objects.filter(pk=turn.session.data.get("plan")).first()
    if plan is None or turn.saved_method() is None:
        turn.advance("main")
        return
    try:
        order = do_charge_saved_method(
            line=turn.line,
            plan=plan,
            channel=CHANNEL,
            idempotency_key=f"ivr:{turn.session.call_sid}:{seq}",
            now=turn.now,
        )
    except ValidationError as exc:
        turn.say(exc.messages[0])
        turn.advance("plans" if getattr(exc, "code", "") == "adds_nothing" else "main")
        return
    if order.status == OrderStatus.FULFILLED:
        turn.say(_("Thank you. Your payment was accepted and your top-up is complete."))
        for text in turn.days_added_texts(Quote.from_dict(order.quote), done=True):
            turn.say(text)
        turn.say_line_facts(after_topup=True)
    elif order.status == OrderStatus.PENDING_PAYMENT:
        # The card company did not answer: the charge may still go through.
        turn.say(
            _(
                "We could not confirm the payment yet. If it goes through, your top-up "
                "is made and you get a message with the receipt. You are never charged twice."
            )
        )
    else:
        turn.say(_("Sorry, the payment did not go through. Nothing was charged."))
    turn.advance("main")


# -- entry points -------------------------------------------------------------------


def start_call(params: Any, now: datetime) -> str:
    caller = str(params.get("From", "") or "")
    session = actions.do_start_call_session(
        call_sid=str(params.get("CallSid", "")),
        caller=caller,
        line=_caller_line(caller, now),
        now=now,
    )
    turn = Turn(session, now)
    turn.prompt("language")
    actions.do_save_call_session(session, now=now)
    return str(turn.response)


def _keys(value: Any) -> str:
    """The keys pressed, as the steps read them. A control character (a
    forged request; a NUL, which PostgreSQL cannot store in the session's
    JSON) becomes `?`, which no step accepts, so the caller hears the same
    re-prompt as for any wrong entry."""
    text = str(value or "").strip()
    return "".join("?" if unicodedata.category(ch).startswith("C") else ch for ch in text)


def answer(params: Any, seq: int | None, now: datetime) -> str:
    """The reply to keys pressed (or none) for prompt number `seq`."""
    call_sid = str(params.get("CallSid", ""))
    session = queries.live_call_session(call_sid, now)
    if session is None or session.step == "ended":
        return start_call(params, now)  # expired or unknown: start again cleanly
    digits = _keys(params.get("Digits"))
    last = session.data.get("last") or {}
    if last.get("seq") == seq and last.get("digits") == digits and last.get("twiml"):
        return str(last["twiml"])  # a repeated request: the same answer, nothing done twice
    turn = Turn(session, now)
    with translation.override(turn.lang.django if turn.lang else None):
        if seq != session.seq:
            turn.prompt(session.step)  # an answer to an older prompt: ask the current one
        elif session.step == "confirm":
            _step_confirm(turn, digits, seq)
        else:
            STEPS[session.step](turn, digits)
        twiml = str(turn.response)
    session.data["last"] = {"seq": seq, "digits": digits, "twiml": twiml}
    actions.do_save_call_session(session, now=now)
    return twiml


def call_ended(params: Any) -> None:
    if str(params.get("CallStatus", "")) in (
        "completed",
        "busy",
        "failed",
        "no-answer",
        "canceled",
    ):
        actions.do_end_call_session(str(params.get("CallSid", "")))


STEPS = {
    "language": _step_language,
    "number": _step_number,
    "main": _step_main,
    "pin": _step_pin,
    "plans": _step_plans,
}
