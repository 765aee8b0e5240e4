"""Every URL that takes an object's id is tried by an outsider (another
signed-in subscriber) and by an anonymous visitor: they get a 404, a 405 or
the sign-in page, never the owner's data. A new URL with a parameter must be
added here (or to PUBLIC with the reason it is public), or this test fails.
The operations of both APIs, by their OpenAPI documents, with tokens and
agents' signatures: test_api_outsiders.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

pytestmark = pytest.mark.django_db

# Routes meant to be opened without owning anything, and why.
PUBLIC = {
    "accounts:password_reset_confirm": "its uid/token pair is the secret",
    "announcements:detail": "announcements are public",
    "receipts:verify": "the public verification page shows no personal facts",
    "payments:webhook": "providers call it; signatures are checked",
    "payments:sandbox_checkout": "the gateway's hosted page: its URL is the bearer secret, it shows only the amount",
    "payments:sandbox_challenge": "as above",
    "payments:sandbox_paypal": "as above",
    "webtopup:plans": "a signed, expiring link the visitor made; guests may top up any number",
    "webtopup:confirm": "as above",
    "webtopup:pay": "as above",
    "support:guest_thread": "a signed link given only to the guest who wrote",
    "reminders:calendar_feed": "calendar apps fetch it without a session: the HMAC token in the URL is the secret",
    "payments:sandbox_setup": "the gateway's hosted save-a-card page: its URL is the bearer secret, it shows no personal facts",
    "accounts:verify_email": "a signed, expiring, single-use link mailed to the address it proves",
    "receipts:guest": "a signed, expiring link given to whoever paid; it hides the balance and the full number",
    "receipts:guest_pdf": "as above",
    "agent-v1:get_topup": "signed by the agent's key; another agent's signature gets a 404 (test_api_outsiders.py)",
    "agent-v1:confirm_topup": "as above",
    "provisioning:simulator_es2": "the built-in SM-DP+ simulator (404 unless enabled, never in production); it holds no subscriber's data",
}
CHECKED = [
    "payments:start",
    "payments:return",
    "payments:status",
    "payments:retry",
    "api-v1:get_order",
    "api-v1:get_receipt",
    "api-v1:start_payment",
    "api-v1:get_payment",
    "mylines:bind_confirm",
    "mylines:line",
    "mylines:unbind",
    "mylines:redownload",
    "receipts:detail",
    "receipts:pdf",
    "support:report_topup",
    "support:ticket",
    "autokeep:setup_return",
    "autokeep:remove_method",
    "autokeep:rule",
    "autokeep:pause",
    "autokeep:resume",
    "autokeep:from_plan",
    "api-v1:get_line_autokeep",
    "api-v1:put_line_autokeep",
    "api-v1:get_keep_plan",
    "reminders:calendar_rotate",
    "agent-portal:sale",
    "agent-portal:sell_plans",
    "agent-portal:sell_quote",
    "agent-portal:key_rotate",
    "agent-portal:key_revoke",
]


def routes() -> Iterator[tuple[str, str]]:
    def walk(patterns: Any, prefix: str = "", namespace: str = "") -> Iterator[tuple[str, str]]:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                ns = namespace + (f"{pattern.namespace}:" if pattern.namespace else "")
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern), ns)
            elif isinstance(pattern, URLPattern):
                yield prefix + str(pattern.pattern), namespace + (pattern.name or "")

    for route, name in walk(get_resolver().url_patterns):
        if "<" in route and not route.startswith(("ops/", "^", "static/")):
            yield route, name


def agent_objects(objects: dict[str, Any]) -> dict[str, str]:
    """An agent's sale to the owner's line, its key and a number token of its
    portal: what a member of that agent sees, and nobody else."""
    from leb.agents.actions import do_create_agent, do_create_agent_topup, do_create_api_key
    from leb.agents.members import line_token
    from leb.agents.models import AgentMember

    if "agent" not in objects:
        line = objects["line"]
        agent = do_create_agent(
            actor="staff:test",
            legal_name="Outsider Test Agent Ltd",
            display_name="OTA",
            region="HK",
            currency="HKD",
        )
        # No float: the API keeps the refused sale, with the owner's number on it.
        sale = do_create_agent_topup(
            agent, external_id="outsider-1", msisdn=line.msisdn, plan_code="hk-50"
        ).topup
        key = do_create_api_key(agent, actor="staff:test").key
        member = AgentMember.objects.create(user=objects["owner"], agent=agent, role="owner")
        objects["agent"] = {
            "sale": sale.public_id,
            "key": key.key_id,
            "token": line_token(member, line.pk),
        }
    agent_ids: dict[str, str] = objects["agent"]
    return agent_ids


def url_for(name: str, objects: dict[str, Any]) -> str:
    line, order, attempt = objects["line"], objects["order"], objects["attempt"]
    if name.startswith("agent-portal:"):
        ids = agent_objects(objects)
        return {
            "agent-portal:sale": f"/agent/portal/sales/{ids['sale']}/",
            "agent-portal:sell_plans": f"/agent/portal/sell/{ids['token']}/",
            "agent-portal:sell_quote": f"/agent/portal/sell/{ids['token']}/hk-50/",
            "agent-portal:key_rotate": f"/agent/portal/keys/{ids['key']}/rotate/",
            "agent-portal:key_revoke": f"/agent/portal/keys/{ids['key']}/revoke/",
        }[name]
    return {
        "payments:start": f"/pay/{order.public_id}/start",
        "payments:return": f"/pay/return/{attempt.public_id}/",
        "payments:status": f"/pay/status/{attempt.public_id}",
        "payments:retry": f"/pay/retry/{attempt.public_id}/",
        "api-v1:get_order": f"/api/v1/orders/{order.public_id}",
        "api-v1:get_receipt": f"/api/v1/receipts/{order.receipt_number}",
        "api-v1:start_payment": f"/api/v1/orders/{order.public_id}/payments",
        "api-v1:get_payment": f"/api/v1/payments/{attempt.public_id}",
        "mylines:bind_confirm": f"/my/lines/bind/{objects['challenge'].pk}/",
        "mylines:line": f"/my/lines/{line.pk}/",
        "mylines:unbind": f"/my/lines/{line.pk}/unbind/",
        "mylines:redownload": f"/my/lines/{line.pk}/esim/redownload/",
        "receipts:detail": f"/receipts/{order.receipt_number}/",
        "receipts:pdf": f"/receipts/{order.receipt_number}.pdf",
        "support:report_topup": f"/support/topup/{order.public_id}/report/",
        "support:ticket": f"/support/tickets/{objects['ticket'].public_id}/",
        "autokeep:setup_return": f"/autokeep/cards/setup/{objects['setup'].public_id}/",
        "autokeep:remove_method": f"/autokeep/cards/{objects['method'].pk}/remove/",
        "autokeep:rule": f"/autokeep/lines/{line.pk}/",
        "autokeep:pause": f"/autokeep/lines/{line.pk}/pause/",
        "autokeep:resume": f"/autokeep/lines/{line.pk}/resume/",
        "autokeep:from_plan": f"/autokeep/lines/{line.pk}/from-plan/",
        "api-v1:get_line_autokeep": f"/api/v1/me/lines/{line.pk}/autokeep",
        "api-v1:put_line_autokeep": f"/api/v1/me/lines/{line.pk}/autokeep",
        "api-v1:get_keep_plan": f"/api/v1/me/lines/{line.pk}/keep-plan",
        "reminders:calendar_rotate": f"/my/lines/{line.pk}/calendar/new-link/",
    }[name]


def test_every_parameterised_route_is_classified() -> None:
    names = {name for _route, name in routes()}
    unclassified = names - set(CHECKED) - set(PUBLIC)
    assert not unclassified, f"add an outsider check for: {sorted(unclassified)}"


@pytest.mark.parametrize("name", CHECKED)
@pytest.mark.parametrize("who", ["outsider", "anonymous"])
def test_outsiders_never_see_an_owners_objects(owned: dict[str, Any], name: str, who: str) -> None:
    # given someone who does not own the line, the order or the payment
    client = Client()
    if who == "outsider":
        outsider = get_user_model().objects.create_user("outsider", password="x-long-pass-2")
        client.force_login(outsider)
    url = url_for(name, owned)
    secrets = [owned["line"].msisdn, owned["line"].msisdn[-8:], owned["order"].receipt_number]
    # when they try the URL with each method
    for method in ("get", "post"):
        if method == "post" and url.startswith("/api/"):
            # a well-formed request, so the answer is about who asks
            response = client.post(url, {}, content_type="application/json")
        else:
            response = getattr(client, method)(url)
        # then they are refused without learning anything
        assert response.status_code in (302, 401, 403, 404, 405), (
            name,
            method,
            response.status_code,
        )
        if response.status_code == 302:
            assert "/account/login/" in response["Location"], (name, method)
        body = response.content.decode(errors="replace")
        assert not any(secret in body for secret in secrets), (name, method)
    owned["line"].refresh_from_db()
    assert owned["line"].owner == owned["owner"]


@pytest.mark.parametrize(
    "name",
    [
        "payments:return",
        "payments:status",
        "api-v1:get_order",
        "api-v1:get_receipt",
        "api-v1:get_payment",
        "mylines:line",
        "receipts:detail",
        "receipts:pdf",
        "autokeep:rule",
        "api-v1:get_line_autokeep",
        "api-v1:get_keep_plan",
    ],
)
def test_the_owner_gets_the_same_urls(owned: dict[str, Any], name: str) -> None:
    # the control: these URLs are right, so the outsiders' 404s mean something
    client = Client()
    client.force_login(owned["owner"])
    response = client.get(url_for(name, owned))
    assert response.status_code == 200, (name, response.status_code)
