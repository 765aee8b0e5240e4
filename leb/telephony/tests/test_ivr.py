"""Whole hotline calls through a fake Twilio, in the three languages."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from leb.telephony.actions import purge_expired_call_sessions
from leb.telephony.models import CallSession
from leb.topups.models import OrderStatus, TopUpOrder
from leb.vouchers.models import Voucher, VoucherState

from .caller import BASE, FakeTwilio

pytestmark = pytest.mark.django_db

# key on the language menu, Say language, what the prompts sound like
LANGUAGES = {
    "cmn": ("1", "cmn-CN", "按1"),
    "yue": ("2", "yue-HK", "按1"),
    "en": ("3", "en-US", "press 1"),
}
# After a HK$100 voucher on a line activated on 2026-06-01 (30 days) + 180 days.
TOPPED_UP = {
    "cmn": ("2026年12月28日", "一百港元"),
    "yue": ("2026年12月28日", "一百港元"),
    "en": ("December 28, 2026", "100 Hong Kong dollars"),
}
UNKNOWN_PIN = "4111111111111111"  # right shape and check digit, no such voucher


def _menu(call: FakeTwilio, language: str) -> None:
    call.start()
    call.press(LANGUAGES[language][0])


# --- signatures ---------------------------------------------------------------------


def test_unsigned_request_is_forbidden(call: Any) -> None:
    # given a call whose requests carry no signature
    fake = call()
    # when it dials
    reply = fake.post(f"{BASE}/phone/voice/", sign=False)
    # then
    assert reply.status == 403
    assert not CallSession.objects.exists()


def test_forged_signature_is_forbidden(call: Any) -> None:
    # given a caller that signs with the wrong token
    fake = call(token="not-the-auth-token")
    # when / then
    assert fake.start().status == 403
    assert fake.post(f"{BASE}/phone/voice/input?seq=1", {"Digits": "1"}).status == 403
    assert fake.post(f"{BASE}/phone/voice/status", {"CallStatus": "completed"}).status == 403


def test_parameters_changed_after_signing_are_forbidden(call: Any, settings: Any) -> None:
    # given a request signed for one set of parameters
    fake = call()
    fake.start()
    url = fake.last.gather["action"]
    signature = fake.validator.compute_signature(url, {"CallSid": fake.call_sid, "Digits": "3"})
    # when the digits are changed in transit
    response = fake.client.post(
        url.removeprefix(BASE),
        {"CallSid": fake.call_sid, "Digits": "1"},
        HTTP_X_TWILIO_SIGNATURE=signature,
    )
    # then
    assert response.status_code == 403


def test_without_an_auth_token_everything_is_refused(call: Any, settings: Any) -> None:
    # given no Twilio auth token configured
    settings.TWILIO_AUTH_TOKEN = ""
    # when / then
    assert call(token="").start().status == 403


def test_signature_is_checked_against_the_public_url(call: Any, settings: Any) -> None:
    # given leb behind a proxy: Twilio calls https://phone.example.com
    settings.PHONE_PUBLIC_URL = "https://phone.example.com"
    fake = call()
    # when Twilio signs the public URL, while the request reaches leb as testserver
    reply = fake.post("https://phone.example.com/phone/voice/")
    # then it is accepted and the action URLs point at the public URL
    assert reply.status == 200
    assert reply.gather is not None
    assert reply.gather["action"].startswith("https://phone.example.com/phone/voice/input?seq=")
    # and a signature over another host is not
    assert fake.post("https://evil.example.com/phone/voice/").status == 403


def test_get_is_not_allowed(client: Any) -> None:
    assert client.get("/phone/voice/").status_code == 405


# --- language menu --------------------------------------------------------------------


def test_language_menu_speaks_each_language_in_its_own_voice(call: Any) -> None:
    # when
    reply = call().start()
    # then
    root_says = reply.xml.count("<Say ")
    assert root_says == 3
    assert 'language="cmn-CN" voice="Google.cmn-CN-Standard-A"' in reply.xml
    assert 'language="yue-HK" voice="Google.yue-HK-Standard-A"' in reply.xml
    assert 'language="en-US" voice="Google.en-US-Standard-C"' in reply.xml
    assert reply.gather is not None
    assert reply.gather["numDigits"] == "1"
    assert reply.gather["input"] == "dtmf"
    assert reply.redirect == reply.gather["action"]


def test_voices_come_from_settings(call: Any, settings: Any) -> None:
    # given the operator prefers a British voice
    settings.IVR_VOICES = '{"en": ["Polly.Amy", "en-GB"]}'
    fake = call()
    # when
    fake.start()
    reply = fake.press("3")
    # then
    assert 'language="en-GB" voice="Polly.Amy"' in reply.xml
    reply = fake.press("2")
    assert "1 July 2026" in reply.text  # British order of day and month


@pytest.mark.parametrize("language", LANGUAGES)
def test_call_charge_notice_is_read_in_the_chosen_language(
    call: Any, settings: Any, language: str
) -> None:
    settings.IVR_CALL_CHARGE_NOTICE = (
        '{"cmn": "本次通话免费。", "yue": "本次通話免費。", "en": "This call is free."}'
    )
    fake = call()
    fake.start()
    reply = fake.press(LANGUAGES[language][0])
    expected = {"cmn": "本次通话免费。", "yue": "本次通話免費。", "en": "This call is free."}
    assert reply.says[0] == expected[language]


def test_no_call_charge_notice_by_default(call: Any) -> None:
    fake = call()
    fake.start()
    reply = fake.press("3")
    assert reply.says[0] == "To top up with a voucher, press 1."


# --- validity and balance ---------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_hear_validity_and_balance(call: Any, line: Any, language: str) -> None:
    # given a line activated on 2026-06-01: valid 30 days, no balance
    fake = call()
    _menu(fake, language)
    # when
    reply = fake.press("2")
    # then
    expected = {
        "cmn": ["2026年7月1日", "零港元"],
        "yue": ["2026年7月1日", "零港元"],
        "en": ["July 1, 2026", "0 Hong Kong dollars"],
    }[language]
    for words in expected:
        assert words in reply.text
    assert f'language="{LANGUAGES[language][1]}"' in reply.xml
    assert reply.gather is not None  # back to the main menu


# --- voucher top-up -------------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_voucher_top_up(
    call: Any, line: Any, make_pins: Any, language: str, ledger_ok: Any
) -> None:
    # given a HK$100 voucher
    pin = make_pins()[0]
    fake = call()
    _menu(fake, language)
    # when the caller chooses 1 and keys in the PIN (Twilio drops the #)
    reply = fake.press("1")
    assert reply.gather is not None and reply.gather["finishOnKey"] == "#"
    assert "16" in reply.text or "十六" in reply.text
    reply = fake.press(pin)
    # then the new validity and the balance are read out
    date, money = TOPPED_UP[language]
    assert date in reply.text
    assert money in reply.text
    line.refresh_from_db()
    assert line.valid_until.date().isoformat() == "2026-12-28"
    voucher = Voucher.objects.get(state=VoucherState.REDEEMED)
    assert voucher.order is not None and voucher.order.line == line
    ledger_ok()


@pytest.mark.parametrize("language", LANGUAGES)
def test_unknown_and_wrong_pins_get_the_same_words(
    call: Any, line: Any, make_pins: Any, language: str
) -> None:
    # given a voucher someone else already used, and a PIN with a typo
    other_pin = make_pins()[0]
    typo = UNKNOWN_PIN[:-1] + "2"  # the check digit no longer matches
    fake = call()
    _menu(fake, language)
    fake.press("1")
    replies = [fake.press(UNKNOWN_PIN).says[0]]
    replies.append(fake.press(typo).says[0])
    Voucher.objects.update(state=VoucherState.REDEEMED)  # redeemed elsewhere
    replies.append(fake.press(other_pin).says[0])
    # then the caller cannot tell an unknown PIN from a wrong one
    assert len(set(replies)) == 1
    assert f'language="{LANGUAGES[language][1]}"' in fake.last.xml
    if language == "en":
        assert replies[0] == "Sorry, this PIN was not accepted. Please check it and try again."
    assert not TopUpOrder.objects.exists()


def test_pin_of_wrong_length_is_refused_and_counts_as_a_retry(call: Any, line: Any) -> None:
    fake = call()
    _menu(fake, "en")
    fake.press("1")
    reply = fake.press("1234")
    assert reply.says[0] == "A voucher PIN has 16 digits. You entered 4."
    assert reply.gather is not None
    assert CallSession.objects.get().retries == 1
    assert not TopUpOrder.objects.exists()


def test_lockout_after_five_wrong_pins(call: Any, line: Any, make_pins: Any) -> None:
    # given a real voucher
    pin = make_pins()[0]
    fake = call()
    _menu(fake, "en")
    fake.press("1")
    # when five unknown PINs are tried
    for _attempt in range(5):
        reply = fake.press(UNKNOWN_PIN)
    # then the fifth is already refused, and even the right PIN is now locked out
    reply = fake.press(pin)
    assert reply.says[0] == "Too many attempts. Please try again in 15 minutes."
    assert not TopUpOrder.objects.exists()
    # and the lock follows the caller into a new call
    again = call()
    _menu(again, "en")
    again.press("1")
    assert again.press(pin).says[0].startswith("Too many attempts.")


@pytest.mark.parametrize("language", LANGUAGES)
def test_locked_message_in_each_language(
    call: Any, line: Any, make_pins: Any, language: str
) -> None:
    fake = call()
    _menu(fake, language)
    fake.press("1")
    for _attempt in range(6):
        reply = fake.press(UNKNOWN_PIN)
    assert "15" in reply.says[0]
    assert f'language="{LANGUAGES[language][1]}"' in reply.xml
    if language == "en":
        assert reply.says[0] == "Too many attempts. Please try again in 15 minutes."


def test_expired_voucher_is_explained(call: Any, line: Any, make_pins: Any) -> None:
    pin = make_pins()[0]
    Voucher.objects.update(state=VoucherState.EXPIRED)
    fake = call()
    _menu(fake, "en")
    fake.press("1")
    reply = fake.press(pin)
    assert "expired" in reply.says[0].lower()
    assert not TopUpOrder.objects.exists()


# --- timeouts and wrong keys ------------------------------------------------------------


def test_timeouts_reprompt_three_times_then_goodbye(call: Any) -> None:
    # given a caller who never presses a key
    fake = call()
    fake.start()
    fake.press("3")
    # when Twilio times out on each prompt
    for _attempt in range(3):
        reply = fake.wait()
        # then the prompt is asked again
        assert reply.says[0] == "Sorry, I did not hear you."
        assert reply.gather is not None
        assert not reply.hangup
    reply = fake.wait()
    # and the fourth time the call ends politely
    assert reply.says == ["Thank you for calling. Goodbye."]
    assert reply.hangup
    assert reply.gather is None


def test_timeouts_on_the_language_menu_speak_every_language(call: Any) -> None:
    fake = call()
    fake.start()
    for _attempt in range(3):
        reply = fake.wait()
        # "sorry" and the menu, each in the three voices
        assert len(reply.says) == 6
        assert reply.says[2] == "Sorry, I did not hear you."
        assert reply.gather is not None
    reply = fake.wait()
    assert reply.hangup
    assert len(reply.says) == 3  # goodbye in the three languages


@pytest.mark.parametrize("language", LANGUAGES)
def test_wrong_keys_reprompt_then_goodbye(call: Any, language: str) -> None:
    fake = call()
    _menu(fake, language)
    for _attempt in range(3):
        reply = fake.press("7")
        assert reply.gather is not None
    reply = fake.press("7")
    assert reply.hangup


def test_a_good_answer_resets_the_retries(call: Any) -> None:
    fake = call()
    _menu(fake, "en")
    fake.press("7")
    fake.press("7")
    fake.press("2")  # a valid choice
    for _attempt in range(3):
        assert not fake.press("7").hangup


def test_repeat_with_9(call: Any) -> None:
    fake = call()
    _menu(fake, "en")
    first = fake.last
    reply = fake.press("9")
    assert reply.says == first.says
    assert CallSession.objects.get().retries == 0


# --- callers who are not the line ---------------------------------------------------------


def test_unknown_caller_keys_in_the_number(call: Any, line: Any, make_pins: Any) -> None:
    # given a caller from a number that is not a leb line
    pin = make_pins()[0]
    fake = call(caller="+85261234567")
    fake.start()
    reply = fake.press("3")
    assert reply.says == ["Please key in your mobile number, then press the hash key."]
    assert reply.gather is not None and reply.gather["finishOnKey"] == "#"
    # when they key in the line's number without the country code
    reply = fake.press(line.msisdn.removeprefix("+852"))
    # then the main menu offers validity, not balance
    assert "To hear the validity of the number, press 2." in reply.says
    reply = fake.press("2")
    assert "July 1, 2026" in reply.text
    assert "balance" not in reply.says[0].lower()
    assert "Hong Kong dollars" not in reply.text
    # and they may top it up with a voucher
    fake.press("1")
    reply = fake.press(pin)
    assert "December 28, 2026" in reply.text
    assert "Hong Kong dollars" not in reply.text


def test_withheld_caller_keys_in_the_number(call: Any, line: Any) -> None:
    fake = call(caller="anonymous")
    fake.start()
    reply = fake.press("1")
    assert reply.gather is not None and reply.gather["finishOnKey"] == "#"
    assert CallSession.objects.get().step == "number"


def test_invalid_number_is_refused(call: Any, line: Any) -> None:
    fake = call(caller="+85261234567")
    fake.start()
    fake.press("3")
    reply = fake.press("123")
    assert reply.says[0] == "Sorry, that is not a valid phone number."
    assert reply.gather is not None
    reply = fake.press("61234568")
    assert reply.says[0] == (
        "Sorry, the number 6 1 2 3 4 5 6 8 is not one of our numbers. Please check it."
    )
    reply = fake.press(line.msisdn)
    assert "To top up with a voucher, press 1." in reply.says


# --- terminated numbers ------------------------------------------------------------------

# The line (30 days from 2026-06-01, 30 days' grace, 60 suspended) is terminated
# on 2026-09-29 and its number quarantined for 90 days, until 2026-12-28.
TERMINATED = {
    "cmn": ("2026年9月29日", "2026年12月28日", "销号", "冷冻期"),
    "yue": ("2026年9月29日", "2026年12月28日", "註銷", "冷凍期"),
    "en": ("September 29, 2026", "December 28, 2026", "was terminated on", "in quarantine"),
}


def site_host() -> str:
    from urllib.parse import urlparse

    from django.conf import settings

    return str(urlparse(settings.SITE_URL).hostname)


@pytest.fixture
def terminated(line: Any, frozen_clock: Any, now: Any) -> Any:
    """The line, terminated and swept: its number in quarantine."""
    from leb.lines.actions import sweep_lines

    later = now + timedelta(days=200)
    frozen_clock(later)
    sweep_lines(later)
    line.refresh_from_db()
    assert line.status == "terminated"
    return line


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_caller_from_a_terminated_number_hears_what_happened(
    call: Any, terminated: Any, language: str
) -> None:
    # given a call from the number whose line was terminated
    fake = call()
    # when the caller picks a language
    _menu(fake, language)
    # then they hear since when, that the number is in quarantine, and what to do
    since, until, gone, held = TERMINATED[language]
    text = fake.last.text
    assert since in text and until in text and gone in text and held in text
    assert site_host() in text  # the website, where support is
    assert "not one of our" not in text
    # and they may key in another number
    assert fake.last.gather is not None and fake.last.gather["finishOnKey"] == "#"
    assert CallSession.objects.get().step == "number"


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_terminated_number_keyed_in_is_explained(
    call: Any, terminated: Any, language: str
) -> None:
    # given an unknown caller
    fake = call(caller="+85261234567")
    _menu(fake, language)
    # when they key in the terminated line's number
    reply = fake.press(terminated.msisdn)
    # then they hear that it was terminated, not that it is unknown
    since, until, gone, _held = TERMINATED[language]
    assert since in reply.text and until in reply.text and gone in reply.text
    assert reply.gather is not None
    assert CallSession.objects.get().step == "number"


def test_a_released_number_is_said_to_be_released(
    call: Any, terminated: Any, frozen_clock: Any, now: Any
) -> None:
    # given the quarantine is over
    frozen_clock(now + timedelta(days=400))
    fake = call()
    _menu(fake, "en")
    # then the caller hears the number was released
    assert "The number has been released" in fake.last.text
    assert "September 29, 2026" in fake.last.text


def test_terminated_by_its_dates_before_the_sweep(
    call: Any, line: Any, frozen_clock: Any, now: Any
) -> None:
    # given a line past its termination date that the sweep has not seen yet
    frozen_clock(now + timedelta(days=200))
    fake = call()
    _menu(fake, "en")
    # then the caller hears the date it was lost and the quarantine by the dates
    assert "was terminated on September 29, 2026" in fake.last.text
    assert "in quarantine until December 28, 2026" in fake.last.text


# --- saved card ----------------------------------------------------------------------------


def test_saved_card_option_only_with_a_saved_card(call: Any, line: Any) -> None:
    fake = call()
    _menu(fake, "en")
    assert "To top up with your saved card, press 3." not in fake.last.says
    reply = fake.press("3")
    assert reply.says[0] == "Sorry, that is not a valid choice."


@pytest.mark.parametrize("language", LANGUAGES)
def test_saved_card_top_up(
    call: Any, line: Any, saved_card: Any, hkd_plan: Any, language: str, ledger_ok: Any
) -> None:
    # given a saved card and the HK$50 / 180 days plan sold on the hotline
    saved_card()
    fake = call()
    _menu(fake, language)
    # when the caller chooses 3, the plan, and confirms
    reply = fake.press("3")
    plan_words = {
        "cmn": "五十港元",
        "yue": "五十港元",
        "en": "50 Hong Kong dollars with 180 days of validity, press 1.",
    }[language]
    assert plan_words in reply.text
    reply = fake.press("1")
    card = {"cmn": "4 2 4 2", "yue": "4 2 4 2", "en": "ending in 4 2 4 2"}[language]
    assert card in reply.text
    confirm = reply
    reply = fake.press("1")
    # then the card is charged once and the new validity is read out
    order = TopUpOrder.objects.get(channel="ivr")
    assert order.status == OrderStatus.FULFILLED
    assert TOPPED_UP[language][0] in reply.text
    # and a Twilio retry of the same request charges nothing more
    again = fake.post(confirm.gather["action"], {"Digits": "1"})
    assert again.xml == reply.xml
    assert TopUpOrder.objects.count() == 1
    ledger_ok()


def test_saved_card_declined(call: Any, line: Any, saved_card: Any, hkd_plan: Any) -> None:
    saved_card("4000000000000002")
    fake = call()
    _menu(fake, "en")
    fake.press("3")
    fake.press("1")
    reply = fake.press("1")
    assert reply.says[0] == "Sorry, the payment did not go through. Nothing was charged."
    assert not TopUpOrder.objects.filter(status=OrderStatus.FULFILLED).exists()
    line.refresh_from_db()
    assert line.valid_until.date().isoformat() == "2026-07-01"


def test_saved_card_cancelled(call: Any, line: Any, saved_card: Any, hkd_plan: Any) -> None:
    saved_card()
    fake = call()
    _menu(fake, "en")
    fake.press("3")
    fake.press("1")
    reply = fake.press("2")
    assert reply.says[0] == "Cancelled. Nothing was charged."
    assert not TopUpOrder.objects.exists()


def test_saved_card_not_offered_to_a_caller_who_keyed_in_the_number(
    call: Any, line: Any, saved_card: Any, hkd_plan: Any
) -> None:
    saved_card()
    fake = call(caller="+85261234567")
    fake.start()
    fake.press("3")
    reply = fake.press(line.msisdn)
    assert "To top up with your saved card, press 3." not in reply.says
    assert fake.press("3").says[0] == "Sorry, that is not a valid choice."


def test_plans_not_sold_by_phone_are_not_offered(
    call: Any, line: Any, saved_card: Any, hkd_plan: Any
) -> None:
    saved_card()
    hkd_plan.channels = ["web"]
    hkd_plan.save()
    fake = call()
    _menu(fake, "en")
    reply = fake.press("3")
    assert reply.says[0] == "Sorry, no plans can be bought by phone right now."


# --- support -----------------------------------------------------------------------------


def test_transfer_to_support(call: Any, settings: Any) -> None:
    settings.IVR_SUPPORT_NUMBER = "+85230001234"
    fake = call()
    _menu(fake, "en")
    reply = fake.press("0")
    assert reply.dial == "+85230001234"
    assert reply.hangup


@pytest.mark.parametrize("language", LANGUAGES)
def test_support_without_a_number_reads_hours_and_website(
    call: Any, settings: Any, language: str
) -> None:
    settings.SITE_URL = "https://leb.example.com"
    settings.IVR_SUPPORT_HOURS = (
        '{"cmn": "周一至周五", "yue": "星期一至五", "en": "Monday to Friday"}'
    )
    fake = call()
    _menu(fake, language)
    reply = fake.press("0")
    assert not reply.dial
    assert "leb.example.com" in reply.text
    assert {"cmn": "周一至周五", "yue": "星期一至五", "en": "Monday to Friday"}[language] in (
        reply.text
    )
    assert reply.gather is not None


# --- call state --------------------------------------------------------------------------


def test_expired_session_restarts_cleanly(call: Any, frozen_clock: Any, now: Any) -> None:
    fake = call()
    _menu(fake, "en")
    fake.press("1")
    # when the caller comes back after the state expired
    frozen_clock(now + timedelta(minutes=31))
    reply = fake.press("1234567890123456")
    # then the call starts over at the language menu, nothing redeemed
    assert reply.says[-1] == "For English, press 3."
    session = CallSession.objects.get()
    assert session.step == "language"
    assert not TopUpOrder.objects.exists()


def test_answer_to_an_old_prompt_gets_the_current_one(call: Any) -> None:
    fake = call()
    first = fake.start()
    fake.press("3")
    reply = fake.post(first.gather["action"], {"Digits": "1"})
    assert reply.says[0] == "To top up with a voucher, press 1."
    assert CallSession.objects.get().language == "en"


def test_status_callback_forgets_the_call(call: Any) -> None:
    fake = call()
    fake.start()
    fake.post(f"{BASE}/phone/voice/status", {"CallStatus": "completed"})
    assert not CallSession.objects.exists()


def test_purge_deletes_only_expired_sessions(call: Any, now: Any) -> None:
    call().start()
    call().start()
    CallSession.objects.filter(pk=CallSession.objects.first().pk).update(  # type: ignore[union-attr]
        expires_at=now - timedelta(seconds=1)
    )
    assert purge_expired_call_sessions(now=now) == 1
    assert CallSession.objects.count() == 1


def test_purge_job_is_scheduled() -> None:
    from leb.jobs.schedule import scheduled_jobs

    names = {job.task_path for job in scheduled_jobs()}
    assert "leb.telephony.tasks.purge_call_sessions_task" in names


def test_confirmation_warns_when_the_cap_shortens_the_top_up(
    call: Any, line: Any, saved_card: Any
) -> None:
    # given a plan whose 400 days pass the policy's 365-day cap
    from leb.catalog.models import Plan

    Plan.objects.create(
        code="hk-400",
        name_en="x",
        name_zh_hans="x",
        name_zh_hant="x",
        currency="HKD",
        price=20000,
        credit=0,
        validity_days=400,
    )
    saved_card()
    fake = call()
    _menu(fake, "en")
    fake.press("3")
    reply = fake.press("1")
    assert (
        "This top-up adds only 335 days, not 400 days: "
        "your number will then be valid until June 1, 2027." in reply.says
    )
    assert "Validity on this line cannot go beyond 365 days from today." in reply.says
    # before the confirm key
    assert reply.says[-1] == "To confirm, press 1. To cancel, press 2."


# A 400-day plan on a line valid 30 more days: 335 days added (cap 365).
CAPPED = {
    "cmn": ("三百三十五天", "四百天", "2027年6月1日"),
    "yue": ("三百三十五日", "四百日", "2027年6月1日"),
    "en": ("335 days", "400 days", "June 1, 2027"),
}


def _plan(code: str, *, days: int, credit: int = 0) -> Any:
    from leb.catalog.models import Plan

    return Plan.objects.create(
        code=code,
        name_en="x",
        name_zh_hans="x",
        name_zh_hant="x",
        currency="HKD",
        price=20000,
        credit=credit,
        validity_days=days,
    )


@pytest.mark.parametrize("language", LANGUAGES)
def test_capped_confirm_prompt_in_each_language(
    call: Any, line: Any, saved_card: Any, language: str
) -> None:
    # given a plan that the cap shortens
    _plan("hk-400", days=400)
    saved_card()
    fake = call()
    _menu(fake, language)
    fake.press("3")
    # when it is chosen
    reply = fake.press("1")
    # then the days really added and the date are said before the confirm key
    added, days, date = CAPPED[language]
    sentence = next(text for text in reply.says if added in text)
    assert days in sentence and date in sentence
    assert reply.says.index(sentence) < len(reply.says) - 1
    assert reply.gather is not None


def test_a_plan_that_adds_no_days_but_credit_says_so(
    call: Any, line: Any, saved_card: Any, now: Any
) -> None:
    # given a line at its cap and a plan with credit
    line.valid_until = now + timedelta(days=365)
    line.save(update_fields=["valid_until"])
    _plan("hk-90", days=90, credit=5000)
    saved_card()
    fake = call()
    _menu(fake, "en")
    fake.press("3")
    reply = fake.press("1")
    assert (
        "This top-up adds no days, only credit: your number stays valid until June 1, 2027."
        in reply.says
    )


def test_a_plan_that_would_add_nothing_goes_back_to_the_plan_list(
    call: Any, line: Any, saved_card: Any, now: Any
) -> None:
    # given a line at its cap and a days-only plan
    line.valid_until = now + timedelta(days=365)
    line.save(update_fields=["valid_until"])
    _plan("hk-keep", days=180)
    saved_card()
    fake = call()
    _menu(fake, "en")
    fake.press("3")
    # when it is chosen
    reply = fake.press("1")
    # then the caller hears why and the plan list again, and nothing is charged
    assert reply.says[0].startswith("This top-up would add no days")
    assert "To go back to the main menu, press 0." in reply.says
    assert CallSession.objects.get().step == "plans"
    assert not TopUpOrder.objects.exists()


def test_a_voucher_that_would_add_nothing_is_not_used(
    call: Any, line: Any, make_batch_for_plan: Any, now: Any
) -> None:
    # given a days-only plan voucher and a line at its cap
    plan = _plan("hk-keep", days=180)
    pin = make_batch_for_plan(plan)
    line.valid_until = now + timedelta(days=365)
    line.save(update_fields=["valid_until"])
    fake = call()
    _menu(fake, "en")
    fake.press("1")
    # when the PIN is keyed in
    reply = fake.press(pin)
    # then the caller hears that the voucher was not used
    assert "Your voucher was not used" in reply.says[0]
    assert Voucher.objects.get().state == VoucherState.ACTIVE
    assert not TopUpOrder.objects.exists()


def test_a_voucher_that_adds_fewer_days_says_the_real_days(
    call: Any, line: Any, make_batch_for_plan: Any, now: Any
) -> None:
    # given a 180-day voucher on a line valid 300 more days
    pin = make_batch_for_plan(_plan("hk-keep", days=180))
    line.valid_until = now + timedelta(days=300)
    line.save(update_fields=["valid_until"])
    fake = call()
    _menu(fake, "en")
    fake.press("1")
    reply = fake.press(pin)
    assert "This top-up added only 65 days, not 180 days." in reply.says
    assert "Your number is valid until June 1, 2027." in reply.says


def test_withheld_callers_do_not_share_a_lockout(call: Any, line: Any, make_line: Any) -> None:
    # given an anonymous caller who got a line locked out with wrong PINs
    fake = call(caller="anonymous")
    fake.start()
    fake.press("3")
    fake.press(line.msisdn)
    fake.press("1")
    for _attempt in range(5):
        fake.press(UNKNOWN_PIN)
    # when another anonymous caller tops up a different line
    other = make_line()
    second = call(caller="anonymous")
    second.start()
    second.press("3")
    second.press(other.msisdn)
    second.press("1")
    reply = second.press(UNKNOWN_PIN)
    # then they are not locked out by the first caller's failures
    assert reply.says[0] == "Sorry, this PIN was not accepted. Please check it and try again."
