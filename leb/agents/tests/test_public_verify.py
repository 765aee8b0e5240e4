"""The public agent check (/agents/verify/) and list (/agents/): by code, shop
address, phone number and handle; suspended and terminated agents shown as
not authorised; unknown sellers; bad input; the per-address limit."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from leb.agents.actions import do_set_agent_status
from leb.agents.models import Agent, AgentChannel, AgentStatus, ChannelKind
from leb.agents.queries import parse_search

pytestmark = pytest.mark.django_db
URL = "/agents/verify/"
LANGUAGES = ["en", "zh-hans", "zh-hant"]


@pytest.fixture
def shop(make_agent: Callable[..., Agent]) -> Agent:
    agent = make_agent(contact_email="owner@kowloon.example", contact_phone="+85291230000")
    for kind, value, label in [
        (ChannelKind.SHOP_URL, "https://WWW.Shop.Example.com/Kowloon/", "HKTVmall"),
        (ChannelKind.HANDLE, "@KowloonPhones", "Instagram"),
        (ChannelKind.PHONE, "9123 4567", "WhatsApp"),
    ]:
        channel = AgentChannel(agent=agent, kind=kind, value=value, label=label)
        channel.full_clean()
        channel.save()
    return agent


def state(response: Any) -> str:
    html = response.content.decode()
    marker = 'data-testid="agent-result" data-state="'
    assert marker in html, html
    return html.split(marker, 1)[1].split('"', 1)[0]


def test_channels_are_stored_normalised(shop: Agent) -> None:
    # given / when: the fixture typed them as people do
    values = dict(shop.channels.values_list("kind", "value"))

    # then
    assert values == {
        "shop_url": "shop.example.com/Kowloon",
        "handle": "kowloonphones",
        "phone": "+85291234567",
    }


def test_a_bad_phone_channel_is_refused_by_the_admin_form(make_agent: Callable[..., Agent]) -> None:
    # given
    channel = AgentChannel(agent=make_agent(), kind=ChannelKind.PHONE, value="12")

    # when / then
    with pytest.raises(ValidationError) as caught:
        channel.full_clean()
    assert "value" in caught.value.message_dict


@pytest.mark.parametrize(
    "typed",
    ["{code}", "{lower}", " {spaced} ", "{nodash}"],
)
def test_an_active_agent_is_found_by_its_code_in_any_case_and_spacing(
    anonymous: Client, shop: Agent, typed: str
) -> None:
    # given
    query = typed.format(
        code=shop.code,
        lower=shop.code.lower(),
        spaced=shop.code.replace("-", " - ").lower(),
        nodash=shop.code.replace("-", ""),
    )

    # when
    response = anonymous.get(URL, {"q": query})

    # then
    assert response.status_code == 200
    assert state(response) == "authorised"
    html = response.content.decode()
    assert "Authorised leb agent" in html
    assert "Kowloon Phones Ltd" in html and "Kowloon Phones" in html
    assert "Hong Kong" in html
    assert "June 1, 2026" in html  # authorised since
    assert "shop.example.com/Kowloon" in html and "@kowloonphones" in html
    assert "+852 9123 4567" in html and "HKTVmall" in html


@pytest.mark.parametrize(
    "query",
    [
        "https://shop.example.com/Kowloon",
        "http://www.SHOP.example.com/Kowloon/",
        "shop.example.com/Kowloon#top",
        "@KowloonPhones",
        "kowloonphones",
        "+852 9123 4567",
        "91234567",
        "00852-9123-4567",
    ],
)
def test_an_agent_is_found_by_a_registered_channel(
    anonymous: Client, shop: Agent, query: str
) -> None:
    # when
    response = anonymous.get(URL, {"q": query})

    # then
    assert response.status_code == 200
    assert state(response) == "authorised"
    assert f'data-code="{shop.code}"' in response.content.decode()


def test_a_dotted_handle_is_found_even_though_it_looks_like_an_address(
    anonymous: Client, make_agent: Callable[..., Agent]
) -> None:
    # given
    agent = make_agent(display_name="Sun Mobile")
    AgentChannel.objects.create(agent=agent, kind=ChannelKind.HANDLE, value="sun.mobile.hk")

    # when
    response = anonymous.get(URL, {"q": "Sun.Mobile.HK"})

    # then
    assert state(response) == "authorised"


@pytest.mark.parametrize(
    ("status", "headline", "since"),
    [
        (AgentStatus.SUSPENDED, "leb suspended this agent's authorisation on", "June 11, 2026"),
        (AgentStatus.TERMINATED, "leb ended this agent's authorisation on", "June 11, 2026"),
    ],
)
def test_suspended_and_terminated_agents_are_clearly_not_authorised(
    anonymous: Client, shop: Agent, now: datetime, status: str, headline: str, since: str
) -> None:
    # given
    do_set_agent_status(shop, status, actor="staff:test", now=now + timedelta(days=10))

    # when
    response = anonymous.get(URL, {"q": "@kowloonphones"})

    # then
    assert response.status_code == 200
    assert state(response) == status
    html = response.content.decode()
    assert "Not authorised: do not pay this seller" in html
    assert f"{headline} {since}." in html
    assert "Authorised leb agent" not in html
    assert 'data-testid="agent-report"' in html


def test_an_unknown_seller_is_not_an_authorised_agent_with_what_to_do(anonymous: Client) -> None:
    # when
    response = anonymous.get(URL, {"q": "HK-ZZZZZZ"})

    # then
    assert response.status_code == 200
    assert state(response) == "unknown"
    html = response.content.decode()
    assert "Not an authorised leb agent" in html
    assert "HK-ZZZZZZ" in html
    assert "/support/fraud/?q=HK-ZZZZZZ" in html


def test_only_public_fields_are_shown(anonymous: Client, shop: Agent) -> None:
    # when
    html = anonymous.get(URL, {"q": shop.code}).content.decode()

    # then: no contact details, float, terms or keys
    for private in ("owner@kowloon.example", "+852 9123 0000", "HKD", "10.00", "lak_"):
        assert private not in html


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "Enter an agent code, a shop address, a phone number or a social media handle."),
        ("   ", "Enter an agent code, a shop address, a phone number or a social media handle."),
        ("x" * 201, "This is too long"),
        ("bad\x07code", "This is too long or contains characters"),
        ("bad\x00code", "Null characters are not allowed."),
        ("who is this?!", "Enter an agent code such as HK-7KQ2MX"),
        ("+852 1234", "is not a valid phone number"),
    ],
)
def test_bad_input_is_a_clear_error_and_no_500(anonymous: Client, query: str, message: str) -> None:
    # when
    response = anonymous.get(URL, {"q": query})

    # then
    assert response.status_code == 400
    html = response.content.decode()
    assert message in html
    assert 'data-testid="agent-result"' not in html


def test_the_empty_page_has_the_form_and_the_safety_warning(anonymous: Client) -> None:
    # when
    response = anonymous.get(URL)

    # then
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="agent-verify-form"' in html
    assert 'data-testid="agent-safety"' in html
    assert (
        "never ask for your password, a voucher PIN, a texted code or your card security code"
        in html
    )
    assert response["Cache-Control"] == "private, no-store"


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_check_answers_in_the_visitors_language(
    anonymous: Client, shop: Agent, language: str
) -> None:
    # when
    response = anonymous.get(URL, {"q": shop.code}, HTTP_ACCEPT_LANGUAGE=language)

    # then
    assert response.status_code == 200
    assert f'<html lang="{language}">' in response.content.decode()
    assert response["Content-Language"] == language
    assert state(response) == "authorised"


@pytest.mark.parametrize("language", LANGUAGES)
def test_too_many_searches_from_one_address_get_a_429_page(
    anonymous: Client, settings: Any, language: str
) -> None:
    # given
    settings.AGENTS_VERIFY_RATE = "3/60"
    for n in range(3):
        assert anonymous.get(URL, {"q": f"HK-AAAAA{n}"}).status_code == 200

    # when
    response = anonymous.get(URL, {"q": "HK-AAAAA9"}, HTTP_ACCEPT_LANGUAGE=language)

    # then
    assert response.status_code == 429
    assert response["Retry-After"] == "60"
    html = response.content.decode()
    assert 'data-testid="agent-rate-limited"' in html
    assert 'data-testid="agent-result"' not in html
    if language == "en":
        assert "You have made many searches in a short time." in html


def test_parse_search_reads_each_kind() -> None:
    # given / when / then
    assert parse_search("hk-7kq2mx").kind == "code"
    assert parse_search("hk-7kq2mx").value == "HK-7KQ2MX"
    assert parse_search("shop.example.com/x/").value == "shop.example.com/x"
    assert parse_search("@Kowloon_Phones").kind == "handle"
    assert parse_search("+85291234567").kind == "phone"


# --- /agents/: the public list ------------------------------------------------------


def test_the_list_shows_active_agents_by_region_only(
    anonymous: Client, make_agent: Callable[..., Agent], now: datetime
) -> None:
    # given
    hk = make_agent(display_name="Kowloon Phones")
    make_agent(display_name="Soho Sims", legal_name="Soho Sims Ltd", region="GB", currency="GBP")
    gone = make_agent(display_name="Gone Mobile")
    do_set_agent_status(gone, AgentStatus.TERMINATED, actor="staff:test", now=now)
    paused = make_agent(display_name="Paused Phones")
    do_set_agent_status(paused, AgentStatus.SUSPENDED, actor="staff:test", now=now)

    # when
    response = anonymous.get("/agents/")

    # then
    assert response.status_code == 200
    html = response.content.decode()
    assert "Kowloon Phones" in html and "Soho Sims" in html
    assert "Gone Mobile" not in html and "Paused Phones" not in html
    assert 'data-region="GB"' in html and 'data-region="HK"' in html
    assert f"/agents/verify/?q={hk.code}" in html


def test_the_list_filters_by_region_and_ignores_an_unknown_one(
    anonymous: Client, make_agent: Callable[..., Agent]
) -> None:
    # given
    make_agent(display_name="Kowloon Phones")
    make_agent(display_name="Soho Sims", legal_name="Soho Sims Ltd", region="GB", currency="GBP")

    # when
    only_gb = anonymous.get("/agents/", {"region": "gb"}).content.decode()
    unknown = anonymous.get("/agents/", {"region": "<script>"})

    # then
    assert "Soho Sims" in only_gb and "Kowloon Phones" not in only_gb
    assert unknown.status_code == 200
    assert "Soho Sims" in unknown.content.decode() and "<script>" not in unknown.content.decode()


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_list_is_in_the_visitors_language_and_says_when_empty(
    anonymous: Client, language: str
) -> None:
    # when
    response = anonymous.get("/agents/", HTTP_ACCEPT_LANGUAGE=language)

    # then
    assert response.status_code == 200
    html = response.content.decode()
    assert f'<html lang="{language}">' in html
    assert 'data-testid="agent-list-empty"' in html


def test_staff_register_a_channel_inline_and_it_is_normalised_and_audited(
    recorder: Any, make_agent: Callable[..., Agent], anonymous: Client
) -> None:
    # given
    from leb.audit.models import AuditEntry

    agent = make_agent()
    staff = Client()
    staff.force_login(recorder)
    page = staff.get(f"/ops/agents/agent/{agent.pk}/change/")
    form = page.context["adminform"].form
    data = {
        name: ("" if form[name].value() is None else form[name].value()) for name in form.fields
    }
    data.update(
        {
            "plan_discounts-TOTAL_FORMS": "0",
            "plan_discounts-INITIAL_FORMS": "0",
            "api_keys-TOTAL_FORMS": "0",
            "api_keys-INITIAL_FORMS": "0",
            "channels-TOTAL_FORMS": "1",
            "channels-INITIAL_FORMS": "0",
            "members-TOTAL_FORMS": "0",
            "members-INITIAL_FORMS": "0",
            "channels-0-kind": "shop_url",
            "channels-0-value": "HTTPS://Shop.Example.com/mk/",
            "channels-0-label": "Shopline",
        }
    )

    # when
    response = staff.post(f"/ops/agents/agent/{agent.pk}/change/", data)

    # then
    assert response.status_code == 302, response.content.decode()[:2000]
    assert agent.channels.get().value == "shop.example.com/mk"
    entry = AuditEntry.objects.get(action="agent.channels")
    assert entry.data == {"channels": ["shop_url:shop.example.com/mk"]}
    assert state(anonymous.get(URL, {"q": "shop.example.com/mk"})) == "authorised"


def test_a_channel_registered_for_two_agents_is_refused_inline(
    recorder: Any, make_agent: Callable[..., Agent]
) -> None:
    # given
    first, second = make_agent(), make_agent(display_name="Other")
    AgentChannel.objects.create(agent=first, kind=ChannelKind.HANDLE, value="kowloon")
    channel = AgentChannel(agent=second, kind=ChannelKind.HANDLE, value="@Kowloon")

    # when / then
    with pytest.raises(ValidationError):
        channel.full_clean()
