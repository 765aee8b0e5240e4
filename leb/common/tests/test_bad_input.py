# ruff: noqa: RUF001
"""The shared bad-input corpus (leb/common/tests/bad_input.py) through the
web forms, /api/v1, the support desk with its back office, and the CSV line
import: every input gets a clear answer (never a 500), writes nothing, and is
escaped wherever it is shown. Free text that is legitimately accepted (a
ticket may talk about "<script>") is stored verbatim and shown escaped."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from leb.lines.models import Line, NumberPolicy
from leb.support.models import Ticket, TicketMessage
from leb.testing import next_serial
from leb.topups.models import TopUpOrder

from .bad_input import RAW_JSON, SCRIPT, cases, unescaped

pytestmark = pytest.mark.django_db

NUMBER_INPUTS = cases("text", "msisdns", "numbers")
PIN_INPUTS = cases("text", "pins", "numbers")


@pytest.fixture(autouse=True)
def _frozen(frozen_now: None) -> None:
    """The clock stands still at `now` (leb/conftest.py)."""


@pytest.fixture
def line(make_line: Any) -> Any:
    return make_line()


def counts() -> tuple[int, int, int, int]:
    from leb.ledger.models import TransferGroup

    return (
        Line.objects.count(),
        TopUpOrder.objects.count(),
        TransferGroup.objects.count(),
        Ticket.objects.count(),
    )


def page_of(response: Any, case: str = "") -> str:
    assert response.status_code < 500, (case, response.status_code)
    text = response.content.decode()
    assert not unescaped(text), (case, unescaped(text))
    return text


# --- Web forms ------------------------------------------------------------------------


def test_quick_check_refuses_clearly_and_escapes(line: Any) -> None:
    before = counts()
    for case, value in NUMBER_INPUTS:
        from django.core.cache import cache

        cache.clear()  # one visitor per case: the rate limit has its own tests
        page_of(Client().post("/", {"number": value}), case)
    assert counts() == before


def test_quick_check_error_is_translated(line: Any) -> None:
    for language, text in [
        ("en", "A phone number contains digits only, optionally starting with +."),
        ("zh-hans", "电话号码只能包含数字，可以 + 开头。"),
        ("zh-hant", "電話號碼只可包含數字，開頭可加 +。"),
    ]:
        page = page_of(
            Client().post("/", {"number": "+852ABCDEFGH"}, HTTP_ACCEPT_LANGUAGE=language)
        )
        assert text in page, language


def test_voucher_page_refuses_a_bad_number_or_pin(line: Any) -> None:
    from django.core.cache import cache

    before = counts()
    forms = [(c, {"number": v, "pin": "1234567890123456"}) for c, v in NUMBER_INPUTS]
    forms += [(c, {"number": line.msisdn, "pin": v}) for c, v in PIN_INPUTS]
    for case, form in forms:
        cache.clear()
        response = Client().post("/vouchers/redeem/", form)
        # a form error, an unknown number, or a PIN refused: never a 500
        assert response.status_code in (400, 404, 422), case
        page_of(response, case)
    assert counts() == before


def test_voucher_page_error_is_translated(line: Any) -> None:
    response = Client().post(
        "/vouchers/redeem/", {"number": line.msisdn, "pin": "1234"}, HTTP_ACCEPT_LANGUAGE="zh-hant"
    )
    assert response.status_code == 422
    assert "增值卡密碼為 16 位數字。請核對卡上的密碼後重新輸入。" in page_of(response)


# --- /api/v1 ----------------------------------------------------------------------------


def problem(response: Any, case: str = "") -> dict[str, Any]:
    assert response.status_code in (400, 404, 409, 422), (case, response.status_code)
    assert response["Content-Type"] == "application/problem+json", case
    body = response.json()
    assert body["detail"], case
    assert not unescaped(response.content.decode()), case
    return body


def test_api_number_check_answers_a_problem(line: Any) -> None:
    from django.core.cache import cache

    for case, value in NUMBER_INPUTS:
        cache.clear()
        body = problem(Client().get("/api/v1/lines/check", {"number": value}), case)
        assert line.msisdn not in json.dumps(body), case


def test_api_voucher_redeem_answers_a_problem_and_writes_nothing(line: Any) -> None:
    from django.core.cache import cache

    before = counts()
    bodies = [(c, json.dumps({"number": line.msisdn, "pin": v})) for c, v in PIN_INPUTS]
    bodies += [(c, json.dumps({"number": v, "pin": "1234567890123456"})) for c, v in NUMBER_INPUTS]
    bodies += [
        (f"{c}-as-json", json.dumps({"number": line.msisdn, "pin": _as_json_number(v)}))
        for c, v in cases("numbers")
    ]
    raw = [
        (c, b'{"number": "' + line.msisdn.encode() + b'", "pin": ' + v + b"}") for c, v in RAW_JSON
    ]
    for case, body in [*bodies, *raw]:
        cache.clear()
        response = Client().post("/api/v1/vouchers/redeem", body, content_type="application/json")
        problem(response, case)
    assert counts() == before


def _as_json_number(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


def test_api_problem_is_translated(line: Any) -> None:
    body = json.dumps({"number": "+852ABCDEFGH", "pin": "1234567890123456"})
    response = Client().post(
        "/api/v1/vouchers/redeem",
        body,
        content_type="application/json",
        HTTP_ACCEPT_LANGUAGE="zh-hans",
    )
    detail = problem(response)["detail"]
    assert detail != "Enter a valid phone number" and any("\u4e00" <= c <= "\u9fff" for c in detail)


# --- Support desk and the back office -------------------------------------------------


@pytest.fixture
def staff_client(db: Any) -> Client:
    from django.contrib.auth import get_user_model

    admin = get_user_model().objects.create_superuser(
        username="root", email="root@example.com", password="correct horse battery 42"
    )
    client = Client()
    client.force_login(admin)
    return client


def test_a_ticket_is_refused_or_kept_verbatim_and_shown_escaped(
    owner_client: Client, staff_client: Client, settings: Any
) -> None:
    from django.core.cache import cache

    settings.SUPPORT_TICKET_RATE = "1000/60"
    for case, value in cases("text"):
        cache.clear()
        before = counts()
        response = owner_client.post(
            "/support/", {"subject": value[:200] or "x", "category": "validity", "message": value}
        )
        page_of(response, case)
        if response.status_code != 302:
            # refused as a form error: nothing written
            assert response.status_code == 400, case
            assert counts() == before, case
            continue
        # accepted: stored exactly as typed, and escaped on every page that shows it
        ticket = Ticket.objects.latest("pk")
        assert TicketMessage.objects.get(ticket=ticket).body == value, case
        page_of(owner_client.get(response["Location"]), case)
        page_of(staff_client.get(f"/ops/support/ticket/{ticket.pk}/change/"), case)
    page_of(owner_client.get("/support/tickets/"))
    page_of(staff_client.get("/ops/support/ticket/"))


def test_a_script_in_a_ticket_is_text_everywhere(
    owner_client: Client, staff_client: Client
) -> None:
    owner_client.post("/support/", {"subject": SCRIPT, "category": "validity", "message": SCRIPT})
    ticket = Ticket.objects.get()
    assert ticket.subject == SCRIPT
    for page in (
        owner_client.get(f"/support/tickets/{ticket.public_id}/"),
        staff_client.get("/ops/support/ticket/"),
        staff_client.get(f"/ops/support/ticket/{ticket.pk}/change/"),
    ):
        text = page_of(page)
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text


def test_a_ticket_error_is_translated(owner_client: Client) -> None:
    response = owner_client.post(
        "/support/",
        {"subject": "a" * 201, "category": "validity", "message": "x"},
        HTTP_ACCEPT_LANGUAGE="zh-hans",
    )
    assert response.status_code == 400
    assert "确保该变量包含不超过 200 字符 (目前字符数 201)。" in page_of(response)


# --- CSV line import -------------------------------------------------------------------


@pytest.fixture
def policy(db: Any) -> NumberPolicy:
    return NumberPolicy.objects.create(
        code="hk-180",
        name="HK 180 days",
        first_topup_days=180,
        grace_days=30,
        suspension_days=60,
        quarantine_days=90,
    )


def import_row(
    tmp_path: Path, iccid: str, msisdn: str, code: str = "1$SMDP.EXAMPLE.COM$M-1"
) -> str:
    path = tmp_path / f"lines-{next_serial()}.csv"
    # csv-escape the row the way a spreadsheet would
    import csv

    with path.open("w", newline="", encoding="utf-8", errors="surrogatepass") as out:
        writer = csv.writer(out)
        writer.writerow(["iccid", "msisdn", "activation_code", "eid"])
        writer.writerow([iccid, msisdn, code, ""])
    return str(path)


def run_import(path: str) -> str:
    with pytest.raises(CommandError) as info:
        call_command(
            "lines",
            "import",
            path,
            "--policy",
            "hk-180",
            "--currency",
            "HKD",
            stdout=io.StringIO(),
            stderr=io.StringIO(),
        )
    return str(info.value)


def test_csv_import_refuses_bad_iccids_and_numbers(policy: Any, tmp_path: Path) -> None:
    from leb.testing import make_iccid

    rows = [(c, v, "+85291230001") for c, v in cases("iccids", "text")]
    rows += [(c, make_iccid(1), v) for c, v in cases("msisdns", "text")]
    for case, iccid, msisdn in rows:
        message = run_import(import_row(tmp_path, iccid, msisdn))
        assert "nothing was imported" in message.lower() or message, case
        assert not Line.objects.exists(), case
