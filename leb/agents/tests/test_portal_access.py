"""Who may open the agent portal: signed in, a member, with an authenticator
app and a verified session, of an active agent; owners only for keys and the
callback URL; never another agent's things."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from leb.agents.actions import do_create_agent_topup, do_create_api_key, do_set_agent_status
from leb.agents.members import line_token
from leb.agents.models import Agent, AgentMember, AgentTopUp
from leb.agents.tests.helpers import PORTAL_PASSWORD, add_member, verified_client

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords")]

PAGES = [
    ("agent-portal:home", []),
    ("agent-portal:sell", []),
    ("agent-portal:sell_plans", ["token"]),
    ("agent-portal:sell_quote", ["token", "hk-50"]),
    ("agent-portal:sale", ["0" * 32]),
    ("agent-portal:float", []),
    ("agent-portal:statement_csv", []),
    ("agent-portal:keys", []),
    ("agent-portal:key_revoke", ["lak_x"]),
    ("agent-portal:callback", []),
    ("agent-portal:card", []),
]
OWNER_PAGES = ["agent-portal:keys", "agent-portal:key_revoke", "agent-portal:callback"]


def urls() -> list[str]:
    return [reverse(name, args=args) for name, args in PAGES]


def test_a_visitor_who_is_not_signed_in_is_sent_to_sign_in(anonymous: Client) -> None:
    # when
    answers = [anonymous.get(url) for url in urls()]

    # then
    for url, answer in zip(urls(), answers, strict=True):
        assert answer.status_code == 302, url
        assert answer["Location"].startswith(reverse("accounts:login") + "?next=")


def test_a_signed_in_non_member_is_refused_everywhere(outsider: Any, agent: Agent) -> None:
    # given a subscriber with a verified session, who is nobody's agent
    TOTPDevice.objects.create(user=outsider, name="app", confirmed=True)
    client = verified_client(outsider)

    # when
    answers = [client.get(url) for url in urls()]
    posted = client.post(reverse("agent-portal:sell"), {"msisdn": "+85294000001"})

    # then every page is the same refusal, naming no agent
    for url, answer in zip(urls(), answers, strict=True):
        assert answer.status_code == 403, url
        assert b"portal-not-member" in answer.content
        assert agent.code.encode() not in answer.content
    assert posted.status_code == 403
    assert answers[0]["Cache-Control"] == "private, no-store"


def test_a_member_without_an_authenticator_app_is_sent_to_set_one_up_then_comes_back(
    agent: Agent, settings: Any
) -> None:
    # given a member who never turned on two-step sign-in
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    user = add_member(agent, "new-seller", device=False)
    client = Client()
    client.force_login(user, backend="leb.accounts.backends.EmailOrPhoneBackend")

    # when
    answer = client.get(reverse("agent-portal:float"))

    # then no portal page, but the setup of the app, coming back to the page after
    setup = reverse("accounts:totp_setup") + "?next=%2Fagent%2Fportal%2Ffloat%2F"
    assert answer.status_code == 302
    assert answer["Location"] == setup
    assert client.get(setup).status_code == 200
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    done = client.post(setup, {"code": f"{totp(device.bin_key):06d}"})
    assert done.status_code == 302
    assert done["Location"] == "/agent/portal/float/"
    assert client.get("/agent/portal/float/").status_code == 200


def test_a_member_whose_session_gave_no_code_must_give_it_first(
    agent: Agent, agent_seller: Any, settings: Any
) -> None:
    # given a session signed in with the password only
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    client = Client()
    client.force_login(agent_seller, backend="leb.accounts.backends.EmailOrPhoneBackend")
    device = TOTPDevice.objects.get(user=agent_seller)

    # when
    answer = client.get(reverse("agent-portal:home"))

    # then the code is asked for; a wrong one is refused, the right one opens the portal
    verify = reverse("accounts:verify") + "?next=%2Fagent%2Fportal%2F"
    assert answer["Location"] == verify
    wrong = client.post(verify, {"code": "000000" if totp(device.bin_key) else "111111"})
    assert wrong.status_code == 200
    assert client.get(reverse("agent-portal:home")).status_code == 302
    right = client.post(verify, {"code": f"{totp(device.bin_key):06d}"})
    assert right["Location"] == "/agent/portal/"
    assert client.get(reverse("agent-portal:home")).status_code == 200


def test_an_unverified_session_cannot_replace_the_authenticator_app(
    agent: Agent, agent_seller: Any
) -> None:
    # given a session with the password only (say, a stolen one)
    client = Client()
    client.force_login(agent_seller, backend="leb.accounts.backends.EmailOrPhoneBackend")

    # when it opens the setup of a new app
    answer = client.get(reverse("accounts:totp_setup"))

    # then it must give the current app's code first; nothing was made
    assert answer.status_code == 302
    assert answer["Location"].startswith(reverse("accounts:verify"))
    assert TOTPDevice.objects.filter(user=agent_seller).count() == 1


def test_repeated_wrong_codes_lock_the_code_entry(agent: Agent, agent_seller: Any) -> None:
    # given
    client = Client()
    client.force_login(agent_seller, backend="leb.accounts.backends.EmailOrPhoneBackend")
    verify = reverse("accounts:verify")
    device = TOTPDevice.objects.get(user=agent_seller)
    wrong = "000000" if totp(device.bin_key) else "111111"

    # when
    answers = [client.post(verify, {"code": wrong}).status_code for _ in range(12)]

    # then
    assert answers[-1] == 429


@pytest.mark.parametrize("status", ["suspended", "terminated"])
def test_a_stopped_agents_members_see_why_and_can_do_nothing(
    agent: Agent, agent_owner: Any, make_line: Callable[..., Any], hkd_plan: Any, status: str
) -> None:
    # given the owner was on the portal when staff stopped the agent
    client = verified_client(agent_owner)
    line = make_line()
    member = AgentMember.objects.get(user=agent_owner)
    token = line_token(member, line.pk)
    do_set_agent_status(agent, status, actor="staff:test", reason="test")

    # when
    answers = [client.get(url) for url in urls()]
    sale = client.post(reverse("agent-portal:sell_quote", args=[token, hkd_plan.code]), {})
    key = client.post(reverse("agent-portal:keys"), {"label": "x"})

    # then every page says so, and nothing is sold or made
    for url, answer in zip(urls(), answers, strict=True):
        assert answer.status_code == 403, url
        assert f'data-status="{status}"'.encode() in answer.content
    assert sale.status_code == 403
    assert key.status_code == 403
    assert not AgentTopUp.objects.exists()
    assert not agent.api_keys.exists()


def test_a_seller_may_sell_and_read_but_not_manage_keys_or_the_callback(
    agent: Agent, seller_portal: Client, now: datetime
) -> None:
    # given
    key = do_create_api_key(agent, actor="staff:test", now=now).key

    # when
    readable = [
        seller_portal.get(reverse(name)).status_code
        for name in ("agent-portal:home", "agent-portal:sell", "agent-portal:float")
    ]
    refused = [
        seller_portal.get(reverse("agent-portal:keys")),
        seller_portal.post(reverse("agent-portal:keys"), {"label": "mine"}),
        seller_portal.post(reverse("agent-portal:key_rotate", args=[key.key_id])),
        seller_portal.post(reverse("agent-portal:key_revoke", args=[key.key_id])),
        seller_portal.post(reverse("agent-portal:callback"), {"callback_url": ""}),
    ]

    # then
    assert readable == [200, 200, 200]
    assert [r.status_code for r in refused] == [403] * len(refused)
    assert b"portal-owner-only" in refused[0].content
    key.refresh_from_db()
    assert key.revoked_at is None and key.valid_until is None
    assert agent.api_keys.count() == 1
    assert b"agent-portal:keys" not in seller_portal.get(reverse("agent-portal:home")).content


def test_a_member_of_another_agent_never_sees_this_agents_things(
    agent: Agent,
    other_member: Any,
    make_line: Callable[..., Any],
    hkd_plan: Any,
    now: datetime,
    agent_owner: Any,
) -> None:
    # given a sale and a key of the first agent, and a number token made for it
    line = make_line()
    sold = do_create_agent_topup(
        agent, external_id="INV-1", msisdn=line.msisdn, plan_code=hkd_plan.code, now=now
    ).topup
    key = do_create_api_key(agent, actor="staff:test", now=now).key
    token = line_token(AgentMember.objects.get(user=agent_owner), line.pk)
    client = verified_client(other_member)

    # when
    sale = client.get(reverse("agent-portal:sale", args=[sold.public_id]))
    rotate = client.post(reverse("agent-portal:key_rotate", args=[key.key_id]))
    revoke = client.post(reverse("agent-portal:key_revoke", args=[key.key_id]))
    revoke_page = client.get(reverse("agent-portal:key_revoke", args=[key.key_id]))
    plans = client.get(reverse("agent-portal:sell_plans", args=[token]))
    confirm = client.post(reverse("agent-portal:sell_quote", args=[token, hkd_plan.code]))
    pages = [client.get(reverse(name)) for name in ("agent-portal:home", "agent-portal:float")]
    keys = client.get(reverse("agent-portal:keys"))

    # then
    assert [sale.status_code, rotate.status_code, revoke.status_code] == [404, 404, 404]
    assert revoke_page.status_code == 404
    assert plans.status_code == 400 and confirm.status_code == 400
    key.refresh_from_db()
    assert key.revoked_at is None and key.valid_until is None
    for page in [*pages, keys]:
        assert page.status_code == 200
        body = page.content.decode()
        assert agent.code not in body and key.key_id not in body
        assert "INV-1" not in body and line.msisdn not in body


def test_the_demo_style_login_with_password_and_code_reaches_the_portal(
    agent: Agent, settings: Any
) -> None:
    # given a member with an app, signing in through the ordinary sign-in page
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    user = add_member(agent, "till-1", "seller")
    device = TOTPDevice.objects.get(user=user)
    client = Client()

    # when
    first = client.get("/agent/portal/")
    login = client.post(
        first["Location"],
        {"identifier": "till-1@example.com", "password": PORTAL_PASSWORD, "next": "/agent/portal/"},
    )
    code = client.post(login["Location"], {"code": f"{totp(device.bin_key):06d}"})

    # then
    assert login["Location"].startswith(reverse("accounts:verify"))
    assert code["Location"] == "/agent/portal/"
    assert client.get("/agent/portal/").status_code == 200
