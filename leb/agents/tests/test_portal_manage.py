"""The float, its statement, the API keys, the callback URL and the public
card in the agent portal, and staff adding members in the back office."""

from __future__ import annotations

import csv
import io
import re
import socket
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from leb.agents import signing
from leb.agents.actions import do_create_agent_topup, do_create_api_key
from leb.agents.models import Agent, AgentApiKey, AgentMember
from leb.agents.queries import statement
from leb.audit.models import AuditEntry
from leb.common import clock

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords")]


def sell(agent: Agent, line: Any, plan: Any, external_id: str, now: datetime) -> None:
    do_create_agent_topup(
        agent, external_id=external_id, msisdn=line.msisdn, plan_code=plan.code, now=now
    )


# --- The float ----------------------------------------------------------------------


def test_the_float_page_shows_the_balance_and_the_movements_newest_first(
    agent: Agent, seller_portal: Client, make_line: Callable[..., Any], hkd_plan: Any, now: datetime
) -> None:
    # given a deposit (the fixture) and a sale
    sell(agent, make_line(), hkd_plan, "INV-7", now)

    # when
    page = seller_portal.get(reverse("agent-portal:float"))

    # then
    body = page.content.decode()
    assert page.status_code == 200
    assert 'data-testid="float-available">HK$955.00<' in body
    assert body.index("agent:" + agent.code + ":INV-7") < body.index("agent-deposit:")


def test_the_movements_are_filtered_by_date_and_paged(
    agent: Agent,
    seller_portal: Client,
    make_line: Callable[..., Any],
    hkd_plan: Any,
    now: datetime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given sales on two days, and pages of one movement
    from leb.agents import member_views

    monkeypatch.setattr(member_views, "MOVEMENTS_PAGE_SIZE", 1)
    later = now + timedelta(days=3)
    with clock.frozen(later):
        sell(agent, make_line(), hkd_plan, "INV-LATER", later)
        sell(agent, make_line(), hkd_plan, "INV-LATER-2", later)
    day = timezone.localdate(later).isoformat()

    # when
    first = seller_portal.get(reverse("agent-portal:float"), {"date_from": day, "date_to": day})
    second = seller_portal.get(
        reverse("agent-portal:float"), {"date_from": day, "date_to": day, "page": "2"}
    )

    # then only that day's sales, one a page, newest first
    assert first.status_code == 200
    assert "INV-LATER-2" in first.content.decode()
    assert "agent-deposit:" not in first.content.decode()
    assert "INV-LATER<" in second.content.decode() or ":INV-LATER</span>" in second.content.decode()
    assert 'rel="next"' in first.content.decode()


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"date_from": "2026-13-01", "date_to": "2026-06-01"}, "Enter a date like 2026-06-01."),
        ({"date_from": "2026-06-02", "date_to": "2026-06-01"}, "The last day must be on or after"),
        ({"date_from": "2025-01-01", "date_to": "2026-06-01"}, "at most 365 days later"),
        ({"date_from": "2026-06-01"}, "Enter the last day."),
    ],
)
def test_bad_dates_are_a_form_error(
    agent: Agent, seller_portal: Client, query: dict[str, str], message: str
) -> None:
    # when
    page = seller_portal.get(reverse("agent-portal:float"), query)
    download = seller_portal.get(reverse("agent-portal:statement_csv"), query)

    # then
    for answer in (page, download):
        assert answer.status_code == 400
        assert message in answer.content.decode()
        assert answer["Content-Type"].startswith("text/html")


def test_the_statement_downloads_as_the_apis_csv(
    agent: Agent, seller_portal: Client, make_line: Callable[..., Any], hkd_plan: Any, now: datetime
) -> None:
    # given
    sell(agent, make_line(), hkd_plan, "=HYPERLINK(1)", now)
    day = timezone.localdate(now)

    # when
    answer = seller_portal.get(
        reverse("agent-portal:statement_csv"),
        {"date_from": day.isoformat(), "date_to": day.isoformat()},
    )

    # then the statement's rows, with text a spreadsheet would run made inert
    assert answer.status_code == 200
    assert answer["Content-Type"] == "text/csv; charset=utf-8"
    assert f"statement-{agent.code}-{day}-{day}.csv" in answer["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(answer.content.decode())))
    expected = statement(agent, day, day)
    assert [int(r["amount"]) for r in rows] == [r.amount for r in expected.rows]
    assert [int(r["balance"]) for r in rows] == [r.balance for r in expected.rows]
    assert rows[-1]["reference"] == f"agent:{agent.code}:=HYPERLINK(1)"
    assert all(not r["description"].startswith("=") for r in rows)


# --- API keys -------------------------------------------------------------------------


def test_an_owner_creates_a_key_and_sees_its_secret_once(
    agent: Agent, owner_portal: Client, agent_owner: Any
) -> None:
    # when
    made = owner_portal.post(reverse("agent-portal:keys"), {"label": "till 2"})

    # then the secret is on that page, derived, and never again
    key = AgentApiKey.objects.get(agent=agent)
    secret = signing.derive_secret(key.key_id, key.salt)
    assert made.status_code == 200
    assert made["Cache-Control"] == "private, no-store"
    assert secret in made.content.decode()
    listing = owner_portal.get(reverse("agent-portal:keys")).content.decode()
    assert key.key_id in listing and secret not in listing and key.salt not in listing
    assert 'data-state="active"' in listing
    entry = AuditEntry.objects.get(action="agent.key.create")
    assert entry.actor == f"agent:{agent.code}:member:{agent_owner.username}"
    assert secret not in str(entry.data)


def test_a_key_label_too_long_is_a_form_error(agent: Agent, owner_portal: Client) -> None:
    # when
    answer = owner_portal.post(reverse("agent-portal:keys"), {"label": "x" * 101})

    # then
    assert answer.status_code == 400
    assert not AgentApiKey.objects.exists()


def test_an_owner_rotates_a_key_and_the_old_one_works_for_the_overlap(
    agent: Agent, owner_portal: Client, now: datetime
) -> None:
    # given
    old = do_create_api_key(agent, actor="staff:test", now=now).key

    # when
    answer = owner_portal.post(reverse("agent-portal:key_rotate", args=[old.key_id]))

    # then
    old.refresh_from_db()
    new = AgentApiKey.objects.exclude(pk=old.pk).get()
    assert answer.status_code == 200
    assert signing.derive_secret(new.key_id, new.salt) in answer.content.decode()
    assert old.valid_until is not None and old.valid_until > now
    listing = owner_portal.get(reverse("agent-portal:keys")).content.decode()
    assert f'data-key="{old.key_id}" data-state="rotating"' in listing
    assert AuditEntry.objects.filter(action="agent.key.rotate").count() == 1


def test_an_owner_revokes_a_key_after_confirming(
    agent: Agent, owner_portal: Client, now: datetime
) -> None:
    # given
    key = do_create_api_key(agent, actor="staff:test", now=now).key

    # when
    asked = owner_portal.get(reverse("agent-portal:key_revoke", args=[key.key_id]))
    key.refresh_from_db()
    revoked_before = key.revoked_at
    done = owner_portal.post(reverse("agent-portal:key_revoke", args=[key.key_id]))

    # then
    key.refresh_from_db()
    assert asked.status_code == 200 and revoked_before is None
    assert done.status_code == 302
    assert key.revoked_at is not None
    listing = owner_portal.get(reverse("agent-portal:keys")).content.decode()
    assert f'data-key="{key.key_id}" data-state="revoked"' in listing
    assert "no longer works" in listing


def test_a_revoked_key_cannot_be_rotated(agent: Agent, owner_portal: Client, now: datetime) -> None:
    # given
    key = do_create_api_key(agent, actor="staff:test", now=now).key
    owner_portal.post(reverse("agent-portal:key_revoke", args=[key.key_id]))

    # when
    answer = owner_portal.post(reverse("agent-portal:key_rotate", args=[key.key_id]), follow=True)

    # then
    assert "A revoked key cannot be rotated." in answer.content.decode()
    assert AgentApiKey.objects.count() == 1


# --- The callback URL -------------------------------------------------------------------


@pytest.fixture
def public_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    def resolve(host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        if host == "hooks.example.com":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port))]
        if host == "intranet.example.com":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", port))]
        if host == "127.0.0.1":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (host, port))]
        raise socket.gaierror("unknown host")

    monkeypatch.setattr(socket, "getaddrinfo", resolve)


def test_an_owner_sets_and_clears_the_callback_url(
    agent: Agent, owner_portal: Client, public_dns: None, settings: Any
) -> None:
    # given
    settings.NOTIFICATIONS_WEBHOOK_ALLOW_PRIVATE = False

    # when
    saved = owner_portal.post(
        reverse("agent-portal:callback"), {"callback_url": "https://hooks.example.com/leb"}
    )
    agent.refresh_from_db()
    url_after_save = agent.callback_url
    cleared = owner_portal.post(reverse("agent-portal:callback"), {"callback_url": ""})

    # then
    agent.refresh_from_db()
    assert saved.status_code == 302 and cleared.status_code == 302
    assert url_after_save == "https://hooks.example.com/leb"
    assert agent.callback_url == ""
    changes = AuditEntry.objects.filter(action="agent.callback_url").order_by("pk")
    assert [c.data["to"] for c in changes] == ["https://hooks.example.com/leb", ""]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://hooks.example.com/leb", "must start with https://"),
        ("https://intranet.example.com/leb", "must point to a public internet address"),
        ("https://127.0.0.1/leb", "must point to a public internet address"),
        ("https://nowhere.invalid/leb", "could not be found"),
        ("not a url", "Enter a valid URL."),
        ("https://user:pw@hooks.example.com/", "must not contain a user name or password"),
        ("https://hooks.example.com/" + "x" * 300, "too long"),
    ],
)
def test_a_callback_url_leb_may_not_call_is_refused_and_nothing_changes(
    agent: Agent, owner_portal: Client, public_dns: None, settings: Any, url: str, message: str
) -> None:
    # given
    settings.NOTIFICATIONS_WEBHOOK_ALLOW_PRIVATE = False
    settings.DEBUG = False

    # when
    answer = owner_portal.post(reverse("agent-portal:callback"), {"callback_url": url})

    # then
    agent.refresh_from_db()
    assert answer.status_code == 400
    assert message in answer.content.decode()
    assert agent.callback_url == ""
    assert not AuditEntry.objects.filter(action="agent.callback_url").exists()


def test_the_back_office_applies_the_same_callback_rule(
    agent: Agent, recorder: Any, public_dns: None, settings: Any
) -> None:
    # given
    settings.NOTIFICATIONS_WEBHOOK_ALLOW_PRIVATE = False
    from leb.agents.admin import AgentForm

    # when
    refused = AgentForm(
        data={**_agent_form_data(agent), "callback_url": "https://intranet.example.com/x"},
        instance=agent,
    )
    accepted = AgentForm(
        data={**_agent_form_data(agent), "callback_url": "https://hooks.example.com/x"},
        instance=agent,
    )

    # then
    assert not refused.is_valid()
    assert "callback_url" in refused.errors
    assert accepted.is_valid(), accepted.errors


def _agent_form_data(agent: Agent) -> dict[str, Any]:
    return {
        "legal_name": agent.legal_name,
        "display_name": agent.display_name,
        "region": agent.region,
        "currency": agent.currency,
        "allowed_plan_codes": "[]",
        "discount_percent": str(agent.discount_percent),
    }


# --- The public card -----------------------------------------------------------------


def test_the_card_shows_what_the_public_check_shows_and_its_link(
    make_agent: Callable[..., Agent], fast_passwords: None, anonymous: Client
) -> None:
    # given an agent with contact details the public must not see
    from leb.agents.models import AgentChannel
    from leb.agents.tests.conftest import add_member, verified_client

    shop = make_agent(contact_email="private@example.com", contact_phone="+85221234567")
    AgentChannel.objects.create(agent=shop, kind="handle", value="kowloonphones", label="Instagram")
    client = verified_client(add_member(shop, "card-seller"))

    # when
    card = client.get(reverse("agent-portal:card"))
    public = anonymous.get(reverse("agents:verify"), {"q": shop.code})

    # then
    body = card.content.decode()
    assert card.status_code == 200
    link = re.search(r'href="([^"]+)" data-testid="agent-card-link"', body)
    assert link and link.group(1).endswith(f"/agents/verify/?q={shop.code}")
    facts = re.search(r'<dl class="ag-facts".*?</dl>', body, re.S)
    public_facts = re.search(r'<dl class="ag-facts".*?</dl>', public.content.decode(), re.S)
    assert facts and public_facts and facts.group(0) == public_facts.group(0)
    assert "@kowloonphones" in body
    assert "private@example.com" not in body and "2123 4567" not in body


# --- Members in the back office ---------------------------------------------------


def _members_post(agent: Agent, rows: list[tuple[int, str]]) -> dict[str, Any]:
    data: dict[str, Any] = {
        **_agent_form_data(agent),
        "plan_discounts-TOTAL_FORMS": "0",
        "plan_discounts-INITIAL_FORMS": "0",
        "api_keys-TOTAL_FORMS": "0",
        "api_keys-INITIAL_FORMS": "0",
        "channels-TOTAL_FORMS": "0",
        "channels-INITIAL_FORMS": "0",
        "members-TOTAL_FORMS": str(len(rows)),
        "members-INITIAL_FORMS": "0",
    }
    for i, (user_id, role) in enumerate(rows):
        data[f"members-{i}-user"] = str(user_id)
        data[f"members-{i}-role"] = role
    return data


def test_staff_add_a_member_on_the_agent_page_and_it_is_audited(
    agent: Agent, recorder: Any, outsider: Any
) -> None:
    # given
    client = Client()
    client.force_login(recorder)

    # when
    answer = client.post(
        f"/ops/agents/agent/{agent.pk}/change/", _members_post(agent, [(outsider.pk, "owner")])
    )

    # then
    assert answer.status_code == 302, answer.content
    member = AgentMember.objects.get(user=outsider)
    assert (member.agent, member.role) == (agent, "owner")
    entry = AuditEntry.objects.get(action="agent.members")
    assert entry.actor == f"staff:{recorder.username}"
    assert entry.data["members"] == [f"{outsider.username}:owner"]


def test_a_user_belongs_to_at_most_one_agent(
    agent: Agent, other_agent: Agent, recorder: Any, other_member: Any
) -> None:
    # given a user who is already a member of another agent
    client = Client()
    client.force_login(recorder)

    # when staff try to add them here too
    answer = client.post(
        f"/ops/agents/agent/{agent.pk}/change/", _members_post(agent, [(other_member.pk, "seller")])
    )

    # then the form says so and nothing changes
    assert answer.status_code == 200
    assert "already exists" in answer.content.decode()
    assert AgentMember.objects.get(user=other_member).agent == other_agent
    assert not AuditEntry.objects.filter(action="agent.members").exists()


# --- Query budgets --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["agent-portal:home", "agent-portal:float", "agent-portal:keys"])
def test_list_pages_make_as_many_queries_for_many_rows_as_for_one(
    agent: Agent,
    owner_portal: Client,
    make_line: Callable[..., Any],
    hkd_plan: Any,
    now: datetime,
    name: str,
) -> None:
    from django.core.cache import cache
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries_with(rows: int) -> int:
        for i in range(rows):
            sell(agent, make_line(), hkd_plan, f"Q-{rows}-{i}", now)
            do_create_api_key(agent, actor="staff:test", now=now)
        cache.clear()  # the site banner is cached for a while: count it every time
        with CaptureQueriesContext(connection) as captured:
            assert owner_portal.get(reverse(name)).status_code == 200
        return len(captured.captured_queries)

    # given a first request made (once-per-process work is not the page's)
    owner_portal.get(reverse(name))

    # when
    few = queries_with(1)
    many = queries_with(6)

    # then
    assert many == few
    assert few <= 20
