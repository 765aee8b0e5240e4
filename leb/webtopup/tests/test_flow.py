"""The online top-up from the subscriber's side: number, plans, confirm, pay."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from leb.catalog.models import Plan
from leb.common import clock
from leb.lines.models import LineStatus
from leb.payments.models import PaymentAttempt
from leb.testing import topup
from leb.topups.models import OrderStatus, TopUpOrder

from .helpers import confirm_url, plans_url

pytestmark = pytest.mark.django_db


def ticket_of(page: Any) -> str:
    found = re.search(r'name="ticket" value="([^"]+)"', page.content.decode())
    assert found, page.content.decode()
    return found.group(1)


def pay_url(page_url: str) -> str:
    return re.sub(r"/(plans|confirm/[^/]+)/$", "/pay/", page_url)


def press_pay(client: Client, confirm: str) -> tuple[Any, Any]:
    page = client.get(confirm)
    assert page.status_code == 200, page.content.decode()
    response = client.post(pay_url(confirm), {"ticket": ticket_of(page), "provider": "sandbox"})
    return page, response


# --- The whole way through --------------------------------------------------


def test_guest_tops_up_by_number_and_is_sent_to_the_payment_page(
    client: Client, make_line: Any, hkd_plan: Any, make_promotion: Any
) -> None:
    # given a line, a HK$50 plan and an automatic 10% discount for web top-ups
    line = make_line()
    make_promotion(discount_percent=10, channels=["web"])
    # when a guest enters the number in its national form and picks the plan
    plans = plans_url(client, "9400 " + line.phone_number.msisdn[-4:].rjust(4, "0"))
    plans_page = client.get(plans)
    confirm = confirm_url(client, plans, choice="hk-50")
    page, response = press_pay(client, confirm)
    # then the plans and confirm pages show the discounted price
    assert "HK$45.00" in plans_page.content.decode()
    assert "HK$45.00" in page.content.decode() and "HK$5.00" in page.content.decode()
    # and one order awaits payment at that price, for no customer
    order = TopUpOrder.objects.get()
    assert (order.status, order.price, order.currency) == (OrderStatus.PENDING_PAYMENT, 4500, "HKD")
    assert (order.line_id, order.channel, order.customer_id) == (line.pk, "web", None)
    assert order.quote["discount"] == 500
    # and the browser is sent on, still posting, to the payments start page
    assert response.status_code == 307
    start = reverse("payments:start", args=[order.public_id]) + "?provider=sandbox"
    assert response["Location"] == start
    checkout = client.post(start, {"provider": "sandbox"})
    attempt = PaymentAttempt.objects.get(order=order)
    assert checkout.status_code == 302
    assert checkout["Location"] == reverse("payments:sandbox_checkout", args=[attempt.public_id])
    assert attempt.amount == 4500


def test_the_order_keeps_exactly_the_quote_the_confirm_page_showed(
    client: Client, make_line: Any, hkd_plan: Any, make_promotion: Any
) -> None:
    # given a bonus-credit promotion and a code-only promotion
    line = make_line()
    make_promotion(bonus_credit_percent=20, bonus_days=7)
    make_promotion(promo_code="SUMMER", bonus_credit_fixed=1500)
    # when the guest chooses the plan with the code and pays
    plans = plans_url(client, line.phone_number.msisdn)
    confirm = confirm_url(client, plans, choice="hk-50", promo_code=" summer ")
    page, response = press_pay(client, confirm)
    # then the code's promotion replaced the automatic one
    shown = page.context["quote"]
    assert (shown.bonus_credit, shown.bonus_days) == (1500, 0)
    assert "+HK$15.00" in page.content.decode()
    # and the order froze the very quote that was shown
    order = TopUpOrder.objects.get()
    assert response.status_code == 307
    assert order.quote == shown.to_dict()


def test_signed_in_user_picks_one_of_their_lines(
    client: Client, django_user_model: Any, make_line: Any, hkd_plan: Any, now: datetime
) -> None:
    # given a user with a funded line, and someone else's line
    user = django_user_model.objects.create_user("owner", "owner@example.com", None)
    mine = make_line(owner=user)
    topup(mine, hkd_plan, now=now)
    make_line()
    client.force_login(user)
    # when they open the start page and pick their line
    start = client.get(reverse("webtopup:start"))
    response = client.post(reverse("webtopup:start"), {"line": str(mine.pk)})
    page = client.get(response["Location"])
    # then only their own line was offered, and its owner sees the balance
    assert start.context["own_lines"] == [mine]
    assert response.status_code == 302
    assert "Balance" in page.content.decode() and "HK$50.00" in page.content.decode()
    # and the order they pay for is theirs
    confirm = confirm_url(client, response["Location"], choice="hk-50")
    _page, paid = press_pay(client, confirm)
    assert paid.status_code == 307
    assert TopUpOrder.objects.get(line=mine, status=OrderStatus.PENDING_PAYMENT).customer == user


def test_someone_elses_line_cannot_be_picked(
    client: Client, django_user_model: Any, make_line: Any
) -> None:
    # given two users, each with a line
    user = django_user_model.objects.create_user("owner", "owner@example.com", None)
    other = django_user_model.objects.create_user("other", "other@example.com", None)
    make_line(owner=user)
    theirs = make_line(owner=other)
    # when the user (and then a guest) posts the other line's id
    client.force_login(user)
    as_user = client.post(reverse("webtopup:start"), {"line": str(theirs.pk)})
    junk = client.post(reverse("webtopup:start"), {"line": "x"})
    client.logout()
    as_guest = client.post(reverse("webtopup:start"), {"line": str(theirs.pk)})
    # then it is not found
    assert (as_user.status_code, junk.status_code, as_guest.status_code) == (404, 404, 404)


# --- Finding the line ---------------------------------------------------------


def test_unknown_number_gets_a_clear_message(client: Client, make_line: Any) -> None:
    # given no line with this number
    make_line()
    # when a guest enters it
    response = client.post(reverse("webtopup:start"), {"number": "+852 9876 5432"})
    # then they are told, and nothing else happens
    assert response.status_code == 404
    assert "We could not find a leb line with this number." in response.content.decode()


def test_invalid_number_is_a_form_error(client: Client) -> None:
    # when a guest types something that is not a phone number
    response = client.post(reverse("webtopup:start"), {"number": "12ab"})
    # then the number field says why
    assert response.status_code == 400
    assert "A phone number contains digits only" in response.content.decode()


@pytest.mark.parametrize("stored", [True, False])
def test_terminated_line_cannot_be_topped_up(
    client: Client, make_line: Any, now: datetime, stored: bool
) -> None:
    # given a line terminated by the sweep, or one whose validity ran out long ago
    if stored:
        line = make_line()
        line.status = LineStatus.TERMINATED
        line.save(update_fields=["status"])
    else:
        line = make_line(at=now - timedelta(days=400))
    # when a guest enters its number
    response = client.post(reverse("webtopup:start"), {"number": line.phone_number.msisdn})
    # then they learn it can no longer be topped up
    assert response.status_code in (404, 409)
    assert "has been terminated and can no longer be topped up" in response.content.decode()


def test_number_lookups_are_rate_limited(client: Client, make_line: Any, settings: Any) -> None:
    # given a limit of two lookups a minute
    settings.PORTAL_QUICK_CHECK_RATE = "2/60"
    line = make_line()
    # when a third number is tried within the minute
    for _ in range(2):
        client.post(reverse("webtopup:start"), {"number": "+852 9876 5432"})
    response = client.post(reverse("webtopup:start"), {"number": line.phone_number.msisdn})
    # then it is refused
    assert response.status_code == 429


# --- Links ------------------------------------------------------------------------


def test_tampered_token_gets_a_clear_message(client: Client, make_line: Any) -> None:
    # given a genuine plans link
    line = make_line()
    plans = plans_url(client, line.phone_number.msisdn)
    token = plans.split("/")[2]
    forged = token[:-3] + ("aaa" if not token.endswith("aaa") else "bbb")
    # when the token is altered, or is not a token at all
    responses = [
        client.get(reverse("webtopup:plans", args=[forged])),
        client.get(reverse("webtopup:plans", args=["nonsense"])),
        client.post(pay_url(plans), {"ticket": "nonsense"}),
    ]
    # then each says the link is not valid
    for response in responses:
        assert response.status_code == 400
        assert "This top-up link is not valid." in response.content.decode()


def test_expired_token_gets_a_clear_message(client: Client, make_line: Any, hkd_plan: Any) -> None:
    # given a confirm page shown to a guest
    line = make_line()
    plans = plans_url(client, line.phone_number.msisdn)
    confirm = confirm_url(client, plans, choice="hk-50")
    page = client.get(confirm)
    # when they come back after 31 minutes
    clock.advance(timedelta(minutes=31))
    responses = [
        client.get(plans),
        client.get(confirm),
        client.post(pay_url(confirm), {"ticket": ticket_of(page)}),
    ]
    # then they are asked to start again, and no order exists
    for response in responses:
        assert response.status_code == 410
        assert "This top-up page has expired." in response.content.decode()
    assert not TopUpOrder.objects.exists()


def test_a_choice_made_for_one_line_cannot_be_used_on_another(
    client: Client, make_line: Any, hkd_plan: Any
) -> None:
    # given a confirm link for one line and a plans link for another
    first, second = make_line(), make_line()
    confirm = confirm_url(client, plans_url(client, first.phone_number.msisdn), choice="hk-50")
    other_token = plans_url(client, second.phone_number.msisdn).split("/")[2]
    # when the choice is replayed under the other line's token
    choice = confirm.split("/")[4]
    response = client.get(reverse("webtopup:confirm", args=[other_token, choice]))
    # then it is refused
    assert response.status_code == 400


# --- Plans page ----------------------------------------------------------------------


def test_plans_in_another_currency_or_channel_are_not_offered(
    client: Client, make_line: Any, hkd_plan: Any, gbp_plan: Any
) -> None:
    # given a GBP plan and an HKD plan sold only by agents
    Plan.objects.create(
        code="hk-agent",
        name_en="Agent only",
        name_zh_hans="代理",
        name_zh_hant="代理",
        currency="HKD",
        price=3000,
        credit=3000,
        validity_days=90,
        channels=["agent"],
    )
    line = make_line()
    plans = plans_url(client, line.phone_number.msisdn)
    # when the guest looks at the plans, and then posts the GBP plan anyway
    page = client.get(plans)
    forced = client.post(plans, {"choice": "uk-10"})
    # then only the HKD web plan is offered and the GBP one is refused
    assert [offer.plan.code for offer in page.context["offers"]] == ["hk-50"]
    assert "uk-10" not in page.content.decode() and "hk-agent" not in page.content.decode()
    assert forced.status_code == 400
    assert "Choose one of the top-ups shown." in forced.content.decode()


def test_plans_page_is_translated(client: Client, make_line: Any, hkd_plan: Any) -> None:
    # given a guest reading in Traditional Chinese
    line = make_line()
    plans = plans_url(client, line.phone_number.msisdn)
    # when they open the plans page
    page = client.get(plans, headers={"accept-language": "zh-hant"})
    # then the plan's name is the Traditional Chinese one
    assert "50港元 / 180日" in page.content.decode()


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("0", "Enter an amount greater than zero."),
        ("-20", "Enter an amount greater than zero."),
        ("abc", "Enter the amount as a number"),
        ("1e3", "Enter the amount as a number"),
        ("50.125", "Enter at most 2 decimal places."),
        ("5", "Enter an amount between HK$10.00 and HK$500.00."),
        ("500.01", "Enter an amount between HK$10.00 and HK$500.00."),
        ("", "Enter the amount you want to top up."),
    ],
)
def test_bad_amounts_are_form_errors(
    client: Client, make_line: Any, hkd_rule: Any, typed: str, message: str
) -> None:
    # given a line whose currency allows HK$10 to HK$500
    line = make_line()
    plans = plans_url(client, line.phone_number.msisdn)
    # when the guest types a bad amount
    response = client.post(plans, {"choice": "amount", "amount": typed})
    # then the form says why and nothing is written
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not TopUpOrder.objects.exists()


def test_free_amount_in_major_units_becomes_minor_units(
    client: Client, make_line: Any, hkd_rule: Any
) -> None:
    # given a line whose currency allows free amounts
    line = make_line()
    plans = plans_url(client, line.phone_number.msisdn)
    # when the guest types HK$120.5 with full-width digits and no radio chosen
    confirm = confirm_url(client, plans, amount="\uff11\uff12\uff10\uff0e\uff15")
    page, response = press_pay(client, confirm)
    # then HK$120.50 is quoted and ordered, with the tier's validity
    assert page.context["quote"].price == 12050
    assert page.context["quote"].plan_days == 180
    assert TopUpOrder.objects.get().price == 12050
    assert response.status_code == 307


def test_free_amount_is_not_offered_without_a_rule(
    client: Client, make_line: Any, hkd_plan: Any
) -> None:
    # given no free-amount rule for HKD
    line = make_line()
    plans = plans_url(client, line.phone_number.msisdn)
    # when a guest posts an amount anyway
    page = client.get(plans)
    response = client.post(plans, {"choice": "amount", "amount": "50"})
    # then no amount field is shown and the amount is refused
    assert 'name="amount"' not in page.content.decode()
    assert response.status_code == 400


def test_nothing_chosen_is_a_form_error(client: Client, make_line: Any, hkd_plan: Any) -> None:
    line = make_line()
    plans = plans_url(client, line.phone_number.msisdn)
    # when the guest presses continue without choosing
    response = client.post(plans, {})
    # then they are asked to choose
    assert response.status_code == 400
    assert "Choose a plan or enter an amount." in response.content.decode()


def test_bad_promo_code_is_a_form_error(
    client: Client, make_line: Any, hkd_plan: Any, make_promotion: Any
) -> None:
    # given a GBP-only code
    line = make_line()
    make_promotion(promo_code="LONDON", currency="GBP", bonus_credit_fixed=100)
    plans = plans_url(client, line.phone_number.msisdn)
    # when the guest types an unknown code, then the GBP one
    unknown = client.post(plans, {"choice": "hk-50", "promo_code": "NOPE"})
    wrong = client.post(plans, {"choice": "hk-50", "promo_code": "london"})
    # then each is explained next to the code field and nothing is written
    assert unknown.status_code == wrong.status_code == 400
    assert "This promo code is not valid." in unknown.content.decode()
    assert "not available for this line&#x27;s currency" in wrong.content.decode()
    assert 'value="NOPE"' in unknown.content.decode()
    assert not TopUpOrder.objects.exists()


def test_guests_never_see_the_balance(
    client: Client, make_line: Any, hkd_plan: Any, django_user_model: Any, now: datetime
) -> None:
    # given a funded line that belongs to someone
    owner = django_user_model.objects.create_user("owner", "owner@example.com", None)
    line = make_line(owner=owner)
    topup(line, hkd_plan, now=now)
    # when a guest goes through the pages for its number
    plans = plans_url(client, line.phone_number.msisdn)
    pages = [client.get(plans)]
    confirm = confirm_url(client, plans, choice="hk-50")
    pages.append(client.get(confirm))
    # then neither the balance nor the owner appear
    for page in pages:
        text = page.content.decode()
        assert "Balance" not in text
        assert "owner" not in text.lower()
        assert "balance" not in page.context


def test_plans_page_query_budget(
    client: Client,
    make_line: Any,
    hkd_rule: Any,
    make_promotion: Any,
    now: datetime,
    django_assert_max_num_queries: Any,
) -> None:
    # given three plans and two automatic promotions, one limited per line
    # (each plan is priced by the same quote the confirm page uses: at most
    # three queries a plan, plus the line, plans, free-amount rule and banner)
    for n in range(3):
        Plan.objects.create(
            code=f"hk-{n}",
            name_en=f"Plan {n}",
            name_zh_hans=f"套餐 {n}",
            name_zh_hant=f"套餐 {n}",
            currency="HKD",
            price=1000 * (n + 1),
            credit=1000 * (n + 1),
            validity_days=30,
        )
    make_promotion(bonus_days=3)
    make_promotion(bonus_credit_percent=10, per_line_limit=1)
    line = make_line()
    plans = plans_url(client, line.phone_number.msisdn)
    # when the guest opens the plans page
    with django_assert_max_num_queries(4 + 3 * 3):
        page = client.get(plans)
    # then every plan is shown with the bonus it would get
    assert page.status_code == 200
    assert [o.quote.bonus_credit for o in page.context["offers"]] == [100, 200, 300]
    assert "+HK$3.00 bonus credit" in page.content.decode()


# --- Confirm page ----------------------------------------------------------------------


def test_confirm_page_explains_days_lost_to_the_validity_cap(
    client: Client, make_line: Any
) -> None:
    # given a 360-day plan on a line valid 30 more days, with a 365-day cap
    Plan.objects.create(
        code="hk-year",
        name_en="HK$200 / 360 days",
        name_zh_hans="200港元 / 360天",
        name_zh_hant="200港元 / 360日",
        currency="HKD",
        price=20000,
        credit=20000,
        validity_days=360,
    )
    line = make_line()
    # when the guest chooses it
    confirm = confirm_url(client, plans_url(client, line.phone_number.msisdn), choice="hk-year")
    page = client.get(confirm)
    # then the page says, beside "Pay", the days really added and the new date
    assert page.context["quote"].days_lost_to_cap == 25
    assert page.context["quote"].days_added == 335
    html = page.content.decode()
    assert (
        "This top-up adds 335 days, not 360: your number will be valid until June 1, 2027 "
        "(the most this line allows is 365 days from today)." in html
    )
    assert html.index('id="wt-days-added"') < html.index('name="provider"')


def test_confirm_page_shows_restore_fee_for_a_suspended_line(
    client: Client, make_line: Any, hkd_plan: Any, now: datetime
) -> None:
    # given a line whose validity ended 40 days ago (past 30 days' grace)
    line = make_line(at=now - timedelta(days=70))
    # when the guest confirms a plan
    confirm = confirm_url(client, plans_url(client, line.phone_number.msisdn), choice="hk-50")
    page = client.get(confirm)
    # then the restore fee is shown
    assert page.context["quote"].restore_fee == 1000
    assert "Restore fee" in page.content.decode()


def test_double_submit_creates_one_order(
    client: Client, make_line: Any, hkd_plan: Any, make_promotion: Any
) -> None:
    # given a once-per-line promotion and a confirm page
    line = make_line()
    make_promotion(bonus_credit_fixed=500, per_line_limit=1)
    confirm = confirm_url(client, plans_url(client, line.phone_number.msisdn), choice="hk-50")
    page = client.get(confirm)
    data = {"ticket": ticket_of(page), "provider": "sandbox"}
    # when "Pay" is pressed twice
    first = client.post(pay_url(confirm), data)
    second = client.post(pay_url(confirm), data)
    # then both go on to paying the same single order
    order = TopUpOrder.objects.get()
    assert first.status_code == second.status_code == 307
    assert first["Location"] == second["Location"]
    assert str(order.public_id) in first["Location"]
    assert order.quote["bonus_credit"] == 500


def test_a_changed_price_shows_the_new_terms_instead_of_ordering(
    client: Client, make_line: Any, hkd_plan: Any
) -> None:
    # given a confirm page showing HK$50
    line = make_line()
    confirm = confirm_url(client, plans_url(client, line.phone_number.msisdn), choice="hk-50")
    page = client.get(confirm)
    # when the price goes up before "Pay" is pressed
    Plan.objects.filter(pk=hkd_plan.pk).update(price=6000)
    response = client.post(pay_url(confirm), {"ticket": ticket_of(page)})
    # then the new price is shown for confirmation and no order exists
    assert response.status_code == 409
    assert "The terms of this top-up changed" in response.content.decode()
    assert "HK$60.00" in response.content.decode()
    assert not TopUpOrder.objects.exists()
    # and paying from the new page orders at the new price
    again = client.post(pay_url(confirm), {"ticket": ticket_of(response)})
    assert again.status_code == 307
    assert TopUpOrder.objects.get().price == 6000


def test_a_plan_withdrawn_after_choosing_is_explained_on_the_plans_page(
    client: Client, make_line: Any, hkd_plan: Any
) -> None:
    # given a chosen plan
    line = make_line()
    confirm = confirm_url(client, plans_url(client, line.phone_number.msisdn), choice="hk-50")
    # when it is withdrawn before the confirm page loads
    Plan.objects.filter(pk=hkd_plan.pk).update(is_active=False)
    response = client.get(confirm)
    # then the plans page says so and nothing is written
    assert response.status_code == 409
    assert "This plan is not on sale." in response.content.decode()
    assert not TopUpOrder.objects.exists()


def test_a_signed_in_customers_order_cannot_be_continued_by_a_guest(
    client: Client, django_user_model: Any, make_line: Any, hkd_plan: Any
) -> None:
    # given an order made by a signed-in customer
    user = django_user_model.objects.create_user("owner", "owner@example.com", None)
    line = make_line(owner=user)
    client.force_login(user)
    confirm = confirm_url(client, plans_url(client, line.phone_number.msisdn), choice="hk-50")
    page, _response = press_pay(client, confirm)
    # when the same ticket is replayed after signing out
    client.logout()
    response = client.post(pay_url(confirm), {"ticket": ticket_of(page)})
    # then it is not found
    assert response.status_code == 404
    assert TopUpOrder.objects.count() == 1


# --- The validity cap and the reset rule -------------------------------------------


def _plan(code: str, *, days: int, credit: int = 5000, price: int = 5000) -> Plan:
    return Plan.objects.create(
        code=code,
        name_en=f"{code} / {days} days",
        name_zh_hans=f"{code} / {days}天",
        name_zh_hant=f"{code} / {days}日",
        currency="HKD",
        price=price,
        credit=credit,
        validity_days=days,
    )


@pytest.fixture
def full_line(make_line: Any, now: datetime) -> Any:
    """A line already valid until its 365-day cap."""
    line = make_line()
    line.valid_until = now + timedelta(days=365)
    line.save(update_fields=["valid_until"])
    return line


def test_confirm_page_says_a_top_up_adds_all_its_days(
    client: Client, make_line: Any, hkd_plan: Any
) -> None:
    # given a line valid 30 more days and a 180-day plan
    line = make_line()
    # when the guest confirms it
    page = client.get(
        confirm_url(client, plans_url(client, line.phone_number.msisdn), choice="hk-50")
    )
    # then the sentence beside "Pay" gives the days and the date, without a warning
    html = page.content.decode()
    assert "This top-up adds 180 days: your number will be valid until December 28, 2026." in html
    assert 'data-days-added="180"' in html
    assert "notice-warn" not in html.split('id="wt-days-added"')[1].split(">")[0]


def test_confirm_page_says_a_top_up_adds_no_days_only_credit(
    client: Client, full_line: Any
) -> None:
    # given a line at its cap and a 90-day plan with credit
    _plan("hk-90", days=90)
    # when the guest confirms it
    page = client.get(
        confirm_url(client, plans_url(client, full_line.phone_number.msisdn), choice="hk-90")
    )
    # then it says it adds no days, only credit, and the date stays
    assert page.status_code == 200
    assert page.context["quote"].days_added == 0
    assert (
        "This top-up adds no days, only credit: your number stays valid until June 1, 2027 "
        "(the most this line allows is 365 days from today)." in page.content.decode()
    )


def test_confirm_page_explains_the_reset_rule(
    client: Client, make_line: Any, uk_policy: Any, now: datetime
) -> None:
    # given a reset-rule line with 100 days left and a 180-day plan
    Plan.objects.create(
        code="uk-180",
        name_en="£10 / 180 days",
        name_zh_hans="10英镑 / 180天",
        name_zh_hant="10英鎊 / 180日",
        currency="GBP",
        price=1000,
        credit=1000,
        validity_days=180,
    )
    line = make_line(policy=uk_policy, currency="GBP", at=now - timedelta(days=80))
    # when the guest confirms it
    page = client.get(
        confirm_url(client, plans_url(client, line.phone_number.msisdn), choice="uk-180")
    )
    # then the days counted from today are said
    assert page.context["quote"].days_added == 80
    assert (
        "This top-up adds 80 days, not 180: your number will be valid until November 28, 2026 "
        "(on this line the days count from today, not from the end of its validity)."
        in page.content.decode()
    )


@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("zh-hans", "天"),
        ("zh-hant", "日"),
        ("en", "days, not 360"),
    ],
)
def test_cap_sentence_is_translated(
    client: Client, make_line: Any, language: str, words: str
) -> None:
    _plan("hk-year", days=360)
    line = make_line()
    client.cookies["django_language"] = language
    page = client.get(
        confirm_url(client, plans_url(client, line.phone_number.msisdn), choice="hk-year"),
        HTTP_ACCEPT_LANGUAGE=language,
    )
    sentence = page.content.decode().split('id="wt-days-added"')[1].split("</p>")[0]
    assert "335" in sentence and words in sentence
    if language != "en":
        assert "This top-up" not in sentence


def test_plans_page_marks_plans_that_add_fewer_days_or_nothing(
    client: Client, full_line: Any, make_line: Any, django_assert_max_num_queries: Any
) -> None:
    # given, on a line at its cap, a plan with credit and one with days only
    _plan("hk-90", days=90)
    _plan("hk-keep", days=180, credit=0)
    plans = plans_url(client, full_line.phone_number.msisdn)
    # when the plans page is shown
    with django_assert_max_num_queries(4 + 3 * 2):
        page = client.get(plans)
    # then the first says it adds no days, the second why it cannot be bought
    html = page.content.decode()
    assert "Adds no days on this line, only credit: valid until June 1, 2027." in html
    assert "Not possible on this line now: This top-up would add no days" in html
    refused = next(o for o in page.context["offers"] if o.plan.code == "hk-keep")
    assert refused.quote is None and refused.refusal
    # and on a line with room, the same plans are not marked
    other = make_line()
    html = client.get(plans_url(client, other.phone_number.msisdn)).content.decode()
    assert "Adds no days" not in html and "Not possible" not in html


def test_a_plan_that_adds_nothing_is_refused_on_the_plans_step(
    client: Client, full_line: Any
) -> None:
    # given a days-only plan on a line at its cap
    _plan("hk-keep", days=180, credit=0)
    plans = plans_url(client, full_line.phone_number.msisdn)
    # when the guest chooses it
    response = client.post(plans, {"choice": "hk-keep"})
    # then the plans page says why and nothing is written
    assert response.status_code == 400
    assert "This top-up would add no days" in response.content.decode()
    assert not TopUpOrder.objects.exists()


def test_a_plan_that_comes_to_add_nothing_is_refused_on_the_confirm_step(
    client: Client, make_line: Any, now: datetime
) -> None:
    # given a days-only plan chosen while the line had room
    _plan("hk-keep", days=180, credit=0)
    line = make_line()
    confirm = confirm_url(client, plans_url(client, line.phone_number.msisdn), choice="hk-keep")
    page = client.get(confirm)
    assert page.status_code == 200
    # when the line reaches its cap before the confirm page is opened again
    line.valid_until = now + timedelta(days=365)
    line.save(update_fields=["valid_until"])
    again = client.get(confirm)
    # then the plans page explains it, and "Pay" from the old page orders nothing
    assert again.status_code == 409
    assert "This top-up would add no days" in again.content.decode()
    paid = client.post(pay_url(confirm), {"ticket": ticket_of(page), "provider": "sandbox"})
    assert paid.status_code == 409
    assert "This top-up would add no days" in paid.content.decode()
    assert not TopUpOrder.objects.exists()


def test_a_credit_only_plan_is_never_refused_by_the_cap(client: Client, full_line: Any) -> None:
    # given a credit-only plan on a line at its cap
    _plan("hk-credit", days=0, credit=5000)
    # when the guest confirms it
    page = client.get(
        confirm_url(client, plans_url(client, full_line.phone_number.msisdn), choice="hk-credit")
    )
    # then it is sold, and says it adds credit only
    assert page.status_code == 200
    assert (
        "This top-up adds credit only: your number stays valid until June 1, 2027."
        in page.content.decode()
    )
