# ruff: noqa: RUF001
"""The shared bad-input corpus (leb/common/tests/bad_input.py) through the web
top-up: the number, the line picker, the plan choice, the free amount, the
promo code, the links' tokens, the pay form and the payment return page's
query. Every input gets a clear answer (never a 500), writes nothing, and is
escaped wherever the page shows it; the amounts typed the way people type
them (full-width digits, "5 0", "50.5") are read as such."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from leb.common.tests.bad_input import IMG, SCRIPT, cases, unescaped
from leb.ledger.models import TransferGroup
from leb.payments.models import PaymentAttempt
from leb.topups.models import TopUpOrder

from .helpers import confirm_url, plans_url
from .test_flow import pay_url, press_pay, ticket_of

pytestmark = pytest.mark.django_db

NUMBER_INPUTS = cases("text", "msisdns", "numbers")
AMOUNT_INPUTS = cases("numbers", "text")
# Amounts people type that are read on purpose: NFKC digits, inner spaces, a
# decimal point; within HK$10 to HK$500 they go on to the confirm page.
READ_AMOUNTS = {"fullwidth": 1200, "spaces": 5000, "decimal": 5050}


def counts() -> tuple[int, int, int]:
    return TopUpOrder.objects.count(), PaymentAttempt.objects.count(), TransferGroup.objects.count()


def page_of(response: Any, case: str = "") -> str:
    assert response.status_code < 500, (case, response.status_code)
    text = response.content.decode()
    assert not unescaped(text), (case, unescaped(text))
    return text


def test_the_number_refuses_every_bad_input(client: Client, make_line: Any) -> None:
    make_line()
    before = counts()
    for case, value in NUMBER_INPUTS:
        cache.clear()  # one visitor per case: the rate limit has its own tests
        response = client.post(reverse("webtopup:start"), {"number": value})
        assert response.status_code in (400, 404, 409), (case, response.status_code)
        page_of(response, case)
    assert counts() == before


def test_the_line_picker_refuses_every_bad_line_id(owner_client: Client, make_line: Any) -> None:
    make_line()
    before = counts()
    for case, value in NUMBER_INPUTS:
        response = owner_client.post(reverse("webtopup:start"), {"line": value})
        assert response.status_code == 404, (case, response.status_code)
    assert counts() == before


def test_the_choice_amount_and_promo_code_refuse_every_bad_input(
    client: Client, make_line: Any, hkd_plan: Any, hkd_rule: Any
) -> None:
    line = make_line()
    plans = plans_url(client, line.msisdn)
    before = counts()
    for case, value in NUMBER_INPUTS:
        response = client.post(plans, {"choice": value})
        assert response.status_code == 400, case
        page_of(response, case)
        response = client.post(plans, {"choice": hkd_plan.code, "promo_code": value})
        if value.strip():
            assert response.status_code == 400, case
            page_of(response, case)
        else:
            assert response.status_code == 302, case  # no promo code: none asked for
    for case, value in AMOUNT_INPUTS:
        response = client.post(plans, {"choice": "amount", "amount": value})
        if case in READ_AMOUNTS:
            assert response.status_code == 302, case
            confirm = client.get(response["Location"])
            assert confirm.context["quote"].price == READ_AMOUNTS[case], case
            continue
        assert response.status_code == 400, (case, response.status_code)
        page_of(response, case)
    assert counts() == before


def test_the_links_and_the_pay_form_refuse_every_bad_input(
    client: Client, make_line: Any, hkd_plan: Any
) -> None:
    line = make_line()
    plans = plans_url(client, line.msisdn)
    confirm = confirm_url(client, plans, choice=hkd_plan.code)
    token = plans.rstrip("/").split("/")[-2]
    before = counts()
    for case, value in cases("text"):
        response = client.post(pay_url(confirm), {"ticket": value, "provider": "sandbox"})
        assert response.status_code == 400, case
        page_of(response, case)
        if not value.strip() or "/" in value:
            continue
        bad = quote(value, safe="")
        for url in (f"/topup/{bad}/plans/", f"/topup/{token}/confirm/{bad}/"):
            response = client.get(url)
            assert response.status_code in (400, 404, 410), (case, url, response.status_code)
            page_of(response, case)
    assert counts() == before


def test_an_unknown_provider_is_never_echoed(client: Client, make_line: Any, hkd_plan: Any) -> None:
    line = make_line()
    confirm = confirm_url(client, plans_url(client, line.msisdn), choice=hkd_plan.code)
    ticket = ticket_of(client.get(confirm))
    for case, value in cases("text"):
        response = client.post(pay_url(confirm), {"ticket": ticket, "provider": value})
        # the default provider, on the one order this confirm page stands for
        assert response.status_code == 307, case
        assert response["Location"].endswith("?provider=sandbox"), case
    assert TopUpOrder.objects.count() == 1


def test_the_return_page_shows_the_attempt_whatever_the_query(
    client: Client, make_line: Any, hkd_plan: Any
) -> None:
    line = make_line()
    confirm = confirm_url(client, plans_url(client, line.msisdn), choice=hkd_plan.code)
    _page, paying = press_pay(client, confirm)
    client.post(paying["Location"], {"provider": "sandbox"})
    attempt = PaymentAttempt.objects.get()
    status, before = attempt.status, counts()
    url = reverse("payments:return", args=[attempt.public_id])
    for case, value in NUMBER_INPUTS:
        response = client.get(url, {"cancelled": value, "next": value, value[:50] or "x": value})
        assert response.status_code == 200, (case, response.status_code)
        page_of(response, case)
    attempt.refresh_from_db()
    assert attempt.status == status
    assert counts() == before
    for case, value in cases("text"):
        if value.strip() and "/" not in value:
            response = client.get(f"/pay/return/{quote(value, safe='')}/")
            assert response.status_code == 404, case


def test_web_top_up_errors_are_translated(
    client: Client, make_line: Any, hkd_plan: Any, hkd_rule: Any
) -> None:
    line = make_line()
    number = client.post(
        reverse("webtopup:start"), {"number": "+852ABCDEFGH"}, HTTP_ACCEPT_LANGUAGE="zh-hant"
    )
    assert "電話號碼只可包含數字，開頭可加 +。" in page_of(number)
    plans = plans_url(client, line.msisdn)
    amount = client.post(
        plans, {"choice": "amount", "amount": "0x10"}, HTTP_ACCEPT_LANGUAGE="zh-hans"
    )
    assert "请以数字输入金额，例如 50 或 50.50。" in page_of(amount)
    choice = client.post(plans, {"choice": SCRIPT}, HTTP_ACCEPT_LANGUAGE="zh-hant")
    assert "請從列出的增值方案中選擇。" in page_of(choice)
    promo = client.post(
        plans, {"choice": hkd_plan.code, "promo_code": IMG}, HTTP_ACCEPT_LANGUAGE="zh-hans"
    )
    assert promo.status_code == 400
    text = page_of(promo)
    assert any("\u4e00" <= c <= "\u9fff" for c in text)
    assert "&quot;&gt;&lt;img" in text or IMG not in text
