"""`leb phone` against a live leb server."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from leb.lines.models import Line
from leb.topups.models import TopUpOrder

from .caller import TOKEN, USSD_SECRET

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def served(live_server: Any, settings: Any, frozen_clock: Any) -> str:
    settings.PHONE_PUBLIC_URL = live_server.url
    return str(live_server.url)


def test_ivr_call_with_a_voucher(served: str, make_line: Any, make_pins: Any) -> None:
    # given a line and a HK$100 voucher
    line = make_line()
    pin = make_pins()[0]
    out = StringIO()
    # when the subscriber calls from the line, chooses English, tops up, then hangs up
    call_command(
        "phone",
        "ivr",
        "--url",
        served,
        "--from",
        line.msisdn,
        "--auth-token",
        TOKEN,
        "--script",
        f"3,,1,{pin}#,2",
        stdout=out,
    )
    transcript = out.getvalue()
    # then the transcript shows the menus and the new validity
    assert "[en-US] For English, press 3." in transcript
    assert "[no input: timeout]" in transcript
    assert "Sorry, I did not hear you." in transcript
    assert "Please key in the 16-digit PIN of your voucher" in transcript
    assert "Your number is valid until December 28, 2026." in transcript
    assert "Your balance is 100 Hong Kong dollars." in transcript
    assert "[you hung up]" in transcript
    line.refresh_from_db()
    assert line.valid_until.date().isoformat() == "2026-12-28"


def test_ivr_call_with_a_wrong_token_is_refused(served: str, make_line: Any) -> None:
    line = make_line()
    out = StringIO()
    call_command(
        "phone",
        "ivr",
        "--url",
        served,
        "--from",
        line.msisdn,
        "--auth-token",
        "wrong",
        "--script",
        "3",
        stdout=out,
    )
    assert "[HTTP 403" in out.getvalue()


def test_ussd_session(served: str, make_line: Any, make_pins: Any) -> None:
    line = make_line()
    pin = make_pins()[0]
    out = StringIO()
    call_command(
        "phone",
        "ussd",
        "--url",
        served,
        "--from",
        line.msisdn,
        "--secret",
        USSD_SECRET,
        "--script",
        f"2,{pin}",
        stdout=out,
    )
    transcript = out.getvalue()
    assert "| 1 Validity and balance" in transcript
    assert "| Enter the 16-digit voucher PIN:" in transcript
    assert "| Top-up complete." in transcript
    assert "| Valid until: Dec 28, 2026" in transcript
    assert "[session ended]" in transcript
    assert TopUpOrder.objects.filter(line=line).count() == 1


def test_missing_token_is_an_error(settings: Any) -> None:
    settings.TWILIO_AUTH_TOKEN = ""
    with pytest.raises(CommandError):
        call_command("phone", "ivr", "--from", "+85294000001", "--script", "")
    assert not Line.objects.exists()
