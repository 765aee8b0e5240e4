"""USSD sessions as Africa's Talking sends them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from leb.catalog.models import Plan
from leb.lines.models import Line
from leb.testing import topup
from leb.topups.models import TopUpOrder
from leb.vouchers.models import Voucher, VoucherState

from .caller import USSD_SECRET, Phone, basic_auth

pytestmark = pytest.mark.django_db


@pytest.fixture
def phone(line: Any) -> Phone:
    return Phone(line.msisdn)


def _nothing_written(line: Any) -> None:
    assert not TopUpOrder.objects.exists()
    line.refresh_from_db()
    assert line.valid_until.date().isoformat() == "2026-07-01"


# --- authentication -----------------------------------------------------------------


def test_missing_credentials_are_refused(phone: Phone) -> None:
    assert phone.send(auth="").status_code == 403


def test_wrong_secret_is_refused(phone: Phone) -> None:
    assert phone.send(auth=basic_auth("guess")).status_code == 403
    assert phone.send(auth="Bearer " + USSD_SECRET).status_code == 403
    assert phone.send(auth="Basic !!!").status_code == 403


def test_no_secret_configured_refuses_everything(phone: Phone, settings: Any) -> None:
    settings.USSD_SECRET = ""
    assert phone.send(auth=basic_auth("")).status_code == 403


def test_allowed_addresses(phone: Phone, settings: Any) -> None:
    settings.USSD_ALLOWED_IPS = ["10.0.0.7"]
    assert phone.send().status_code == 403
    settings.USSD_ALLOWED_IPS = ["127.0.0.1"]
    assert phone.send().status_code == 200


# --- menus ----------------------------------------------------------------------------


def test_main_menu(phone: Phone) -> None:
    assert phone.screen() == (
        "CON 1 Validity and balance\n2 Top up with a voucher\n4 Language / 语言 / 語言"
    )


def test_validity_and_balance(phone: Phone, line: Any) -> None:
    body = phone.screen("1")
    assert body.startswith("END ")
    assert "+852 9400" in body
    assert "Valid until: Jul 1, 2026" in body
    assert "Balance: HK$0.00" in body


def test_status_of_a_line_in_grace(phone: Phone, frozen_clock: Any, now: Any) -> None:
    frozen_clock(now + timedelta(days=40))
    assert "Status: Grace (receive-only)" in phone.screen("1")


def test_language_choice(phone: Phone) -> None:
    assert phone.screen("4") == "CON 1 简体中文\n2 繁體中文\n3 English"
    menu = phone.screen("4", "2")
    assert menu.startswith("CON ")
    assert "Jul 1, 2026" not in phone.screen("4", "2", "1")
    assert "2026年7月1日" in phone.screen("4", "2", "1")
    assert phone.screen("4", "7").startswith("END ")


def test_owner_language_is_the_default(phone: Phone, owner: Any) -> None:
    owner.profile.language = "zh-hans"
    owner.profile.save()
    assert "2026年7月1日" in phone.screen("1")


def test_wrong_choice_shows_the_menu_again(phone: Phone) -> None:
    body = phone.screen("8")
    assert body.startswith("CON That is not one of the choices.\n1 Validity")
    # the wrong input stays in `text`; the next choice still works
    assert phone.screen("8", "1").startswith("END ")


def test_unknown_number(db: Any, frozen_clock: Any) -> None:
    body = Phone("+85261234567").screen()
    assert body == "END This number is not one of our lines."
    assert Phone("not a number").screen() == "END This number is not one of our lines."


def site_host() -> str:
    from urllib.parse import urlparse

    from django.conf import settings

    return str(urlparse(settings.SITE_URL).hostname)


def test_terminated_line(phone: Phone, line: Any, frozen_clock: Any, now: Any) -> None:
    # terminated by its dates (2026-09-29), before the sweep ran
    frozen_clock(now + timedelta(days=200))
    body = phone.screen("2", "4111111111111111")
    assert body == (
        "END This line was terminated on Sep 29, 2026 and can no longer be topped up. "
        "Its number is in quarantine until Dec 28, 2026. "
        f"Buy a new leb card, or contact support: {site_host()}"
    )
    assert not TopUpOrder.objects.exists()
    # and once the sweep made it so, the session still says what happened
    from leb.lines.actions import sweep_lines

    sweep_lines(now + timedelta(days=200))
    assert phone.screen() == body
    assert Line.objects.get(pk=line.pk).status == "terminated"


# 2026-09-29 and 2026-12-28 in each language's medium date.
TERMINATED = {
    "zh-hans": ("2026年9月29日", "2026年12月28日", "销号"),
    "zh-hant": ("2026年9月29日", "2026年12月28日", "註銷"),
    "en": ("Sep 29, 2026", "Dec 28, 2026", "terminated"),
}


@pytest.mark.parametrize("language", TERMINATED)
def test_terminated_line_in_each_language(
    line: Any, owner: Any, frozen_clock: Any, now: Any, language: str
) -> None:
    from leb.accounts.models import Profile
    from leb.lines.actions import sweep_lines

    # given the owner reads in `language` and their line was terminated and swept
    Profile.objects.filter(user=owner).update(language=language)
    frozen_clock(now + timedelta(days=200))
    sweep_lines(now + timedelta(days=200))
    # when a session starts from its number
    body = Phone(line.msisdn).screen()
    # then it says since when, the quarantine, and what to do, in their language
    since, until, word = TERMINATED[language]
    assert body.startswith("END ")
    assert since in body and until in body and word in body and site_host() in body
    if language != "en":
        assert "terminated" not in body


def test_released_number(line: Any, frozen_clock: Any, now: Any) -> None:
    from leb.lines.actions import sweep_lines

    frozen_clock(now + timedelta(days=400))
    sweep_lines(now + timedelta(days=400))
    body = Phone(line.msisdn).screen()
    assert "Its number has been released." in body
    assert "Sep 29, 2026" in body


# --- vouchers ------------------------------------------------------------------------------


def test_voucher_top_up(phone: Phone, line: Any, make_pins: Any, ledger_ok: Any) -> None:
    pin = make_pins()[0]
    assert phone.screen("2") == "CON Enter the 16-digit voucher PIN:"
    body = phone.screen("2", pin)
    assert body.startswith("END Top-up complete.")
    assert "Valid until: Dec 28, 2026" in body
    assert "Balance: HK$100.00" in body
    assert Voucher.objects.get(state=VoucherState.REDEEMED).order.line == line  # type: ignore[union-attr]
    ledger_ok()


@pytest.mark.parametrize(
    ("pin", "message"),
    [
        ("1234", "END A voucher PIN has 16 digits; you entered 4."),
        ("12345678901234567", "END A voucher PIN has 16 digits; you entered 17."),
        ("41111111abcd1111", "END A PIN contains digits only. Nothing was charged."),
        ("", "END No PIN was entered. Nothing was charged."),
    ],
)
def test_bad_pins(phone: Phone, line: Any, pin: str, message: str) -> None:
    assert phone.screen("2", pin) == message
    _nothing_written(line)


def test_star_inside_a_pin_is_refused(phone: Phone, line: Any, make_pins: Any) -> None:
    # given a real PIN typed with a * in the middle: the gateway splits it
    pin = make_pins()[0]
    body = phone.screen("2", pin[:8], pin[8:])
    assert body == "END A PIN contains digits only. Do not type * in it. Nothing was charged."
    _nothing_written(line)


def test_unknown_pin(phone: Phone, line: Any) -> None:
    body = phone.screen("2", "4111111111111111")
    assert body.startswith("END This PIN is not valid.")
    _nothing_written(line)


def test_voucher_of_another_currency(phone: Phone, line: Any, make_pins: Any) -> None:
    pin = make_pins(currency="GBP", value=1000)[0]
    body = phone.screen("2", pin)
    assert body.startswith("END ")
    assert "GBP" in body or "currency" in body.lower()
    _nothing_written(line)


@pytest.mark.parametrize("state", [VoucherState.EXPIRED, VoucherState.BLOCKED])
def test_expired_or_blocked_voucher(phone: Phone, line: Any, make_pins: Any, state: str) -> None:
    pin = make_pins()[0]
    Voucher.objects.update(state=state)
    body = phone.screen("2", pin)
    assert body.startswith("END ")
    assert str(state) in body.lower()
    _nothing_written(line)


def test_locked_after_five_wrong_pins(phone: Phone, line: Any, make_pins: Any) -> None:
    pin = make_pins()[0]
    for _attempt in range(5):
        phone.screen("2", "4111111111111111")
    body = phone.screen("2", pin)
    assert "locked" in body
    _nothing_written(line)


# --- plans from balance -------------------------------------------------------------------


@pytest.fixture
def funded(line: Any, now: Any) -> Any:
    """Plans may be bought from balance; the wallet holds HK$100."""
    line.policy.plans_from_balance = True
    line.policy.save()
    credit = Plan.objects.create(
        code="hk-credit-100",
        name_en="HK$100 credit",
        name_zh_hans="100港元话费",
        name_zh_hant="100港元話費",
        currency="HKD",
        price=10000,
        credit=10000,
        validity_days=30,
        channels=["web"],
    )
    topup(line, credit, now=now)
    line.refresh_from_db()
    return line


@pytest.fixture
def keep_plan(db: Any) -> Plan:
    return Plan.objects.create(
        code="hk-keep-180",
        name_en="Keep 180 days",
        name_zh_hans="保号180天",
        name_zh_hant="保號180日",
        currency="HKD",
        price=5000,
        credit=0,
        validity_days=180,
    )


def test_plans_from_balance_hidden_when_policy_forbids(phone: Phone, keep_plan: Plan) -> None:
    assert "3 " not in phone.screen()
    assert phone.screen("3").startswith("CON That is not one of the choices.")


def test_buy_plan_from_balance(phone: Phone, funded: Any, keep_plan: Plan, ledger_ok: Any) -> None:
    assert "3 Buy a plan with balance" in phone.screen()
    assert phone.screen("3") == "CON Balance: HK$100.00\n1 HK$50.00, 180 days\n0 Back"
    confirm = phone.screen("3", "1")
    assert confirm == (
        "CON Pay HK$50.00 from your balance (HK$100.00) for 180 days?\n"
        "Valid until: Jan 27, 2027\n1 Confirm\n2 Cancel"
    )
    body = phone.screen("3", "1", "1")
    assert body.startswith("END Done. Receipt ")
    assert "Valid until: Jan 27, 2027" in body
    assert "Balance: HK$50.00" in body
    # the gateway repeating the same request buys nothing more
    assert phone.screen("3", "1", "1") == body
    assert TopUpOrder.objects.filter(payment_provider="balance").count() == 1
    ledger_ok()


def test_back_and_cancel(phone: Phone, funded: Any, keep_plan: Plan) -> None:
    assert phone.screen("3", "0").startswith("CON 1 Validity")
    assert phone.screen("3", "1", "2") == "END Cancelled. Nothing was charged."
    assert phone.screen("3", "5").startswith("END That is not one of the choices.")
    assert phone.screen("3", "1", "7").startswith("END That is not one of the choices.")
    assert not TopUpOrder.objects.filter(payment_provider="balance").exists()


def test_balance_too_low(phone: Phone, funded: Any) -> None:
    Plan.objects.create(
        code="hk-365",
        name_en="HK$200",
        name_zh_hans="200港元",
        name_zh_hant="200港元",
        currency="HKD",
        price=20000,
        credit=0,
        validity_days=365,
    )
    assert phone.screen("3", "1", "1") == "END The balance is too low for this plan."
    assert not TopUpOrder.objects.filter(payment_provider="balance").exists()


# --- length ---------------------------------------------------------------------------------


@pytest.mark.parametrize("language", ["en", "zh-hans", "zh-hant"])
def test_every_screen_fits(
    line: Any, funded: Any, make_pins: Any, language: str, frozen_clock: Any, now: Any
) -> None:
    # given many plans with long prices
    for n in range(12):
        Plan.objects.create(
            code=f"hk-many-{n}",
            name_en="x",
            name_zh_hans="x",
            name_zh_hant="x",
            currency="HKD",
            price=1234500 + n,
            credit=0,
            validity_days=365 + n,
        )
    pin = make_pins()[0]
    phone = Phone(line.msisdn, language=language)
    # when every screen is visited (Phone.screen checks the 182 characters)
    for inputs in [
        (),
        ("1",),
        ("2",),
        ("2", "1234"),
        ("2", "12ab"),
        ("2", "1", "2"),
        ("2", "4111111111111111"),
        ("3",),
        ("3", "1"),
        ("3", "1", "2"),
        ("3", "1", "1"),
        ("3", "9"),
        ("8",),
        ("2", pin),
    ]:
        phone.screen(*inputs)
    Phone(line.msisdn).screen("4")
    # the plan list keeps only what fits
    assert phone.screen("3").count("\n") < 14


def test_fit_cuts_what_is_too_long(settings: Any) -> None:
    from leb.telephony.ussd import end

    settings.USSD_MAX_CHARS = 20
    text = end("x" * 50)
    assert len(text) == 20
    assert text.endswith("…")


def test_confirmation_shows_the_cap(phone: Phone, funded: Any) -> None:
    Plan.objects.create(
        code="hk-400",
        name_en="x",
        name_zh_hans="x",
        name_zh_hant="x",
        currency="HKD",
        price=5000,
        credit=0,
        validity_days=400,
    )
    body = phone.screen("3", "1")
    assert "Valid until: Jun 1, 2027\nAdds 305 days, not 400 (cap: 365 days).\n1 Confirm" in body


# A 400-day plan on a line valid 60 more days (after HK$100 credit): 305 added.
CAPPED = {
    "zh-hans": ("305", "400", "2027年6月1日"),
    "zh-hant": ("305", "400", "2027年6月1日"),
    "en": ("305 days, not 400", "cap: 365", "Jun 1, 2027"),
}


@pytest.mark.parametrize("language", CAPPED)
def test_capped_confirmation_in_each_language(funded: Any, language: str) -> None:
    Plan.objects.create(
        code="hk-400",
        name_en="x",
        name_zh_hans="x",
        name_zh_hant="x",
        currency="HKD",
        price=5000,
        credit=0,
        validity_days=400,
    )
    body = Phone(funded.msisdn, language=language).screen("3", "1")
    added, days, date = CAPPED[language]
    line = next(text for text in body.split("\n") if added in text and days in text)
    assert body.index(line) < body.index("1 ")
    assert date in body
    if language != "en":
        assert "Adds" not in body


def test_a_plan_that_would_add_nothing_ends_with_the_reason(
    phone: Phone, funded: Any, now: Any
) -> None:
    # given a days-only plan and the line already at its cap
    Plan.objects.create(
        code="hk-keep",
        name_en="x",
        name_zh_hans="x",
        name_zh_hant="x",
        currency="HKD",
        price=5000,
        credit=0,
        validity_days=180,
    )
    Line.objects.filter(pk=funded.pk).update(valid_until=now + timedelta(days=365))
    # when it is chosen, or bought straight away
    chosen = phone.screen("3", "1")
    bought = phone.screen("3", "1", "1")
    # then both end with why, and nothing is bought
    for body in (chosen, bought):
        assert body.startswith("END This top-up would add no days")
    assert not TopUpOrder.objects.filter(payment_provider="balance").exists()


def test_a_voucher_that_would_add_nothing_is_not_used(
    phone: Phone, line: Any, make_batch_for_plan: Any, now: Any
) -> None:
    plan = Plan.objects.create(
        code="hk-keep",
        name_en="x",
        name_zh_hans="x",
        name_zh_hant="x",
        currency="HKD",
        price=5000,
        credit=0,
        validity_days=180,
    )
    pin = make_batch_for_plan(plan)
    Line.objects.filter(pk=line.pk).update(valid_until=now + timedelta(days=365))
    body = phone.screen("2", pin)
    assert body.startswith("END This voucher would add no days")
    assert "Your voucher was not used" in body
    assert Voucher.objects.get().state == VoucherState.ACTIVE
    assert not TopUpOrder.objects.exists()


def test_a_voucher_that_adds_fewer_days_says_so(
    phone: Phone, line: Any, make_batch_for_plan: Any, now: Any
) -> None:
    plan = Plan.objects.create(
        code="hk-keep",
        name_en="x",
        name_zh_hans="x",
        name_zh_hant="x",
        currency="HKD",
        price=5000,
        credit=0,
        validity_days=180,
    )
    pin = make_batch_for_plan(plan)
    Line.objects.filter(pk=line.pk).update(valid_until=now + timedelta(days=300))
    body = phone.screen("2", pin)
    assert body.startswith("END Top-up complete.")
    assert "Adds 65 days, not 180 (cap: 365 days)." in body
