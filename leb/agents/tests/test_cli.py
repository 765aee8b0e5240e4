"""`leb agent` against a live leb server: signed like a real integration."""

from __future__ import annotations

import json
from collections.abc import Callable
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from leb.agents.actions import NewKey
from leb.agents.models import Agent, AgentTopUp
from leb.testing import free_port, make_hk_msisdn

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def run(live_server: Any, key: NewKey) -> Callable[..., Any]:
    """`leb agent --url <live server> --key-id … --secret … <args>`: stdout as
    JSON (or text), CommandError on an error answer."""

    def invoke(*args: str, as_text: bool = False, secret: str | None = None) -> Any:
        out, err = StringIO(), StringIO()
        try:
            call_command(
                "agent",
                "--url",
                live_server.url,
                "--key-id",
                key.key.key_id,
                "--secret",
                key.secret if secret is None else secret,
                *args,
                stdout=out,
                stderr=err,
            )
        except CommandError as exc:
            exc.stderr = err.getvalue()  # type: ignore[attr-defined]
            raise
        return out.getvalue() if as_text else json.loads(out.getvalue())

    return invoke


def test_quote_topup_status_balance_and_statement(
    run: Callable[..., Any], agent: Agent, make_line: Callable[..., Any], hkd_plan: Any
) -> None:
    # given a line and an agent with HK$1,000 of float
    line = make_line()

    # when the agent quotes, sells, looks the sale up and checks its float
    quote = run("quote", "--msisdn", line.msisdn, "--plan", hkd_plan.code)
    sold = run("topup", "--external-id", "INV-1", "--msisdn", line.msisdn, "--plan", hkd_plan.code)
    by_id = run("status", sold["id"])
    by_external_id = run("status", "--external-id", "INV-1")
    balance = run("balance")
    statement = run("statement", "--from", "2026-06-01", "--to", "2026-06-01")
    csv = run("statement", "--from", "2026-06-01", "--to", "2026-06-01", "--csv", as_text=True)

    # then every answer is leb's, signed requests accepted
    assert quote["wholesale_price"]["amount"] == 4500
    assert (sold["status"], sold["external_id"]) == ("completed", "INV-1")
    assert by_id == by_external_id == sold
    assert balance["available"]["amount"] == 100_000 - 4500
    assert [row["code"] for row in statement["rows"]] == ["agent.deposit", "agent.sale"]
    assert csv.splitlines()[0].startswith("posted_at,code,reference")
    assert AgentTopUp.objects.get().external_id == "INV-1"


def test_a_two_step_top_up_is_confirmed(
    run: Callable[..., Any], agent: Agent, make_line: Callable[..., Any], hkd_plan: Any
) -> None:
    # given a reserved top-up
    line = make_line()
    held = run(
        "topup",
        "--external-id",
        "INV-2",
        "--msisdn",
        line.msisdn,
        "--plan",
        hkd_plan.code,
        "--two-step",
    )

    # when it is confirmed
    done = run("confirm", held["id"])

    # then
    assert (held["status"], done["status"]) == ("created", "completed")


def test_the_key_can_come_from_the_environment(
    live_server: Any, key: NewKey, agent: Agent, monkeypatch: Any
) -> None:
    # given the key in the environment only
    monkeypatch.setenv("LEB_AGENT_KEY_ID", key.key.key_id)
    monkeypatch.setenv("LEB_AGENT_SECRET", key.secret)
    out = StringIO()

    # when
    call_command("agent", "--url", live_server.url, "balance", stdout=out)

    # then
    assert json.loads(out.getvalue())["currency"] == "HKD"


def test_an_error_answer_prints_the_problem_and_fails(
    run: Callable[..., Any], agent: Agent, make_line: Callable[..., Any], hkd_plan: Any
) -> None:
    # when the secret is wrong, and when the number is not a line
    with pytest.raises(CommandError) as wrong_secret:
        run("balance", secret="las_not-the-secret")
    with pytest.raises(CommandError) as unknown_line:
        run("quote", "--msisdn", make_hk_msisdn(9999), "--plan", hkd_plan.code)

    # then the problem document is shown and the exit status is not 0
    assert wrong_secret.value.returncode == 1
    assert json.loads(wrong_secret.value.stderr)["code"] == "signature_invalid"  # type: ignore[attr-defined]
    assert "HTTP 401" in str(wrong_secret.value)
    assert json.loads(unknown_line.value.stderr)["code"] == "line_unknown"  # type: ignore[attr-defined]
    assert AgentTopUp.objects.count() == 0


def test_a_server_that_cannot_be_reached_is_a_clear_error(db: Any) -> None:
    # given nothing listening on a port
    url = f"http://127.0.0.1:{free_port()}"

    # when / then
    with pytest.raises(CommandError, match="Could not reach leb at"):
        call_command("agent", "--url", url, "--key-id", "lak_x", "--secret", "las_x", "balance")


def test_without_a_key_it_says_how_to_give_one(db: Any, monkeypatch: Any) -> None:
    monkeypatch.delenv("LEB_AGENT_KEY_ID", raising=False)
    monkeypatch.delenv("LEB_AGENT_SECRET", raising=False)
    with pytest.raises(CommandError, match="LEB_AGENT_KEY_ID"):
        call_command("agent", "--url", "http://127.0.0.1:1", "balance")
