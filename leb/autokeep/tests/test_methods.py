from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from django.urls import reverse

from leb.audit.models import AuditEntry
from leb.autokeep.actions import AutoKeepError, do_remove_method, do_save_sandbox_method
from leb.autokeep.models import MethodSetup, MethodStatus, SavedPaymentMethod, SetupStatus
from leb.payments.models import SandboxVaultedCard

from .helpers import OK_CARD, SECURE_CARD

pytestmark = pytest.mark.django_db


def test_saving_a_sandbox_card_keeps_only_brand_last4_and_expiry(owner: Any, now: datetime) -> None:
    # when
    method = do_save_sandbox_method(owner, "4242 4242 4242 4242", 12, 2030, now=now)
    # then
    assert (method.provider, method.brand, method.last4) == ("sandbox", "visa", "4242")
    assert (method.exp_month, method.exp_year, method.status) == (12, 2030, MethodStatus.ACTIVE)
    assert method.method_reference.startswith("sbxpm_")
    stored = " ".join(
        str(v) for row in SavedPaymentMethod.objects.values() for v in row.values()
    ) + " ".join(str(v) for row in SandboxVaultedCard.objects.values() for v in row.values())
    assert OK_CARD not in stored
    entry = AuditEntry.objects.get(action="payment_method.save")
    assert entry.target == f"payment_method:{method.pk}"
    assert entry.data["last4"] == "4242"


@pytest.mark.parametrize(
    ("number", "month", "year", "code"),
    [
        ("4242424242424241", 12, 2030, "invalid_number"),
        ("abcd", 12, 2030, "invalid_number"),
        (OK_CARD, 5, 2026, "expired_card"),
        (OK_CARD, 13, 2030, "invalid_expiry"),
        ("5555555555554444", 12, 2030, "card_not_supported"),
    ],
)
def test_bad_cards_are_refused_and_nothing_is_saved(
    owner: Any, now: datetime, number: str, month: int, year: int, code: str
) -> None:
    # when / then
    with pytest.raises(AutoKeepError) as info:
        do_save_sandbox_method(owner, number, month, year, now=now)
    assert info.value.code == code
    assert not SavedPaymentMethod.objects.exists()
    assert not AuditEntry.objects.filter(action="payment_method.save").exists()


def test_removing_a_card_pauses_its_rules_and_is_audited(
    owner: Any, line: Any, card: Any, make_rule: Any, now: datetime
) -> None:
    # given
    rule = make_rule(line, card)
    # when
    do_remove_method(user=owner, method=card, now=now)
    # then
    card.refresh_from_db()
    rule.refresh_from_db()
    assert card.status == MethodStatus.REMOVED
    assert (rule.paused, rule.paused_reason) == (True, "method_removed")
    assert AuditEntry.objects.filter(action="payment_method.remove").count() == 1


def test_someone_elses_card_cannot_be_removed(outsider: Any, card: Any, now: datetime) -> None:
    with pytest.raises(AutoKeepError) as info:
        do_remove_method(user=outsider, method=card, now=now)
    assert info.value.code == "not_found"


def test_hosted_sandbox_page_saves_a_card(owner_client: Any, owner: Any) -> None:
    # given the subscriber chose the sandbox on the add-a-card page
    response = owner_client.post(
        reverse("autokeep:add_method"), {"provider": "sandbox", "next": "/autokeep/lines/1/"}
    )
    assert response.status_code == 302
    gateway_page = response["Location"]
    assert gateway_page.startswith("/pay/sandbox/setup/")
    assert owner_client.get(gateway_page).status_code == 200
    # when they enter the 3-D Secure test card on the gateway's page
    response = owner_client.post(
        gateway_page, {"number": SECURE_CARD, "expiry": "11/31", "cvc": "123", "name": "A Owner"}
    )
    # then the gateway sends them back and the card is saved
    assert response.status_code == 302
    back = response["Location"].removeprefix("http://127.0.0.1:8000")
    response = owner_client.get(back)
    assert response.status_code == 302
    assert response["Location"] == "/autokeep/lines/1/"
    method = SavedPaymentMethod.objects.get(user=owner)
    assert (method.last4, method.exp_month, method.exp_year) == ("3155", 11, 2031)
    assert MethodSetup.objects.get().status == SetupStatus.COMPLETED
    # and returning again changes nothing
    owner_client.get(back)
    assert SavedPaymentMethod.objects.count() == 1


def test_sandbox_page_refuses_a_bad_card(owner_client: Any) -> None:
    response = owner_client.post(reverse("autokeep:add_method"), {"provider": "sandbox"})
    gateway_page = response["Location"]
    response = owner_client.post(
        gateway_page, {"number": "4242424242424241", "expiry": "01/20", "cvc": "1", "name": "X"}
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert "Enter a valid card number." in body
    assert not SavedPaymentMethod.objects.exists()


def test_cancelled_setup_saves_nothing(owner_client: Any) -> None:
    response = owner_client.post(reverse("autokeep:add_method"), {"provider": "sandbox"})
    setup = MethodSetup.objects.get()
    response = owner_client.get(
        reverse("autokeep:setup_return", args=[setup.public_id]) + "?cancelled=1"
    )
    assert response.status_code == 302
    setup.refresh_from_db()
    assert setup.status == SetupStatus.FAILED
    assert not SavedPaymentMethod.objects.exists()


def test_paypal_is_not_offered_for_saving(owner_client: Any, settings: Any) -> None:
    # given PayPal is enabled for checkout
    settings.PAYMENT_PROVIDERS = ["sandbox", "paypal"]
    # when
    response = owner_client.get(reverse("autokeep:add_method"))
    # then only providers that can save cards are offered
    body = response.content.decode()
    assert 'value="sandbox"' in body
    assert 'value="paypal"' not in body
    response = owner_client.post(reverse("autokeep:add_method"), {"provider": "paypal"})
    assert response.status_code == 400


def test_someone_elses_setup_is_not_found(owner_client: Any, outsider_client: Any) -> None:
    owner_client.post(reverse("autokeep:add_method"), {"provider": "sandbox"})
    setup = MethodSetup.objects.get()
    url = reverse("autokeep:setup_return", args=[setup.public_id])
    assert outsider_client.get(url).status_code == 404


def test_overview_lists_cards_and_remove_needs_post(
    owner_client: Any, outsider_client: Any, card: Any, line: Any
) -> None:
    response = owner_client.get(reverse("autokeep:overview"))
    assert response.status_code == 200
    assert "•••• 4242" in response.content.decode()
    url = reverse("autokeep:remove_method", args=[card.pk])
    assert owner_client.get(url).status_code == 405
    assert outsider_client.post(url).status_code == 404
    assert owner_client.post(url).status_code == 302
    card.refresh_from_db()
    assert card.status == MethodStatus.REMOVED


def test_pages_need_sign_in(anonymous: Any) -> None:
    response = anonymous.get(reverse("autokeep:overview"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


def test_card_of_another_user_is_never_listed(
    owner_client: Any, save_card: Any, outsider: Any
) -> None:
    save_card(user=outsider)
    response = owner_client.get(reverse("autokeep:overview"))
    assert "•••• 4242" not in response.content.decode()


def test_unknown_sandbox_setup_page_is_not_found(anonymous: Any) -> None:
    import uuid

    response = anonymous.get(reverse("payments:sandbox_setup", args=[uuid.uuid4()]))
    assert response.status_code == 404


def test_completed_sandbox_setup_page_sends_back(owner_client: Any) -> None:
    response = owner_client.post(reverse("autokeep:add_method"), {"provider": "sandbox"})
    gateway_page = response["Location"]
    owner_client.post(
        gateway_page, {"number": OK_CARD, "expiry": "12/30", "cvc": "123", "name": "A Owner"}
    )
    # a second visit cannot vault another card into the same session
    response = owner_client.post(
        gateway_page, {"number": SECURE_CARD, "expiry": "12/30", "cvc": "123", "name": "A Owner"}
    )
    assert response.status_code == 302
    assert SandboxVaultedCard.objects.get().last4 == "4242"
