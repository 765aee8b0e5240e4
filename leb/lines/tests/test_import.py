from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from stdnum import luhn

from leb.lines import importer
from leb.lines.actions import do_create_line
from leb.lines.management.commands.lines import Command as LinesCommand
from leb.lines.models import (
    Line,
    LineEvent,
    LineEventKind,
    LineStatus,
    NumberPolicy,
    NumberStatus,
    PhoneNumber,
)

pytestmark = pytest.mark.django_db

NOW = datetime(2025, 3, 1, 4, 0, tzinfo=UTC)
HEADER = "iccid,msisdn,activation_code,eid"
EID = "89049032123451234512345678901235"  # VECTORS.md, GSMA SGP.29


def iccid(n: int) -> str:
    body = f"8985200000{n:08d}"
    return body + luhn.calc_check_digit(body)


def msisdn(n: int) -> str:
    return f"+8529123{n:04d}"


def ac(n: int) -> str:
    return f"1$SMDP.EXAMPLE.COM$MATCH-{n:04d}"


def row(n: int, *, eid: str = "") -> str:
    return f"{iccid(n)},{msisdn(n)},{ac(n)},{eid}"


@pytest.fixture
def policy() -> NumberPolicy:
    return NumberPolicy.objects.create(
        code="hk-180",
        name="HK 180 days",
        first_topup_days=180,
        grace_days=30,
        suspension_days=60,
        quarantine_days=90,
    )


@pytest.fixture
def write_csv(tmp_path: Path) -> Callable[..., str]:
    def write(*lines: str, name: str = "lines.csv", bom: bool = False, ending: str = "\n") -> str:
        path = tmp_path / name
        text = ending.join(lines) + ending
        path.write_bytes(("\ufeff" if bom else "").encode() + text.encode())
        return str(path)

    return write


def run_import(
    path: str, *extra: str, policy: str = "hk-180", currency: str = "HKD"
) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "lines",
        "import",
        path,
        "--policy",
        policy,
        "--currency",
        currency,
        *extra,
        stdout=out,
        stderr=err,
    )
    return out.getvalue(), err.getvalue()


def run_failing_import(path: str, *extra: str, **kwargs: str) -> tuple[str, str]:
    err = io.StringIO()
    with pytest.raises(CommandError) as info:
        call_command(
            "lines",
            "import",
            path,
            "--policy",
            kwargs.get("policy", "hk-180"),
            "--currency",
            kwargs.get("currency", "HKD"),
            *extra,
            stdout=io.StringIO(),
            stderr=err,
        )
    return str(info.value), err.getvalue()


# --- The command ---------------------------------------------------------------


def test_good_file_imports_every_row(policy, write_csv):
    # given
    path = write_csv(HEADER, row(1, eid=EID), row(2), row(3))

    # when
    out, _err = run_import(path)

    # then
    assert "Imported 3, skipped 0." in out
    lines = Line.objects.order_by("iccid")
    assert [line.iccid for line in lines] == [iccid(1), iccid(2), iccid(3)]
    assert {line.status for line in lines} == {LineStatus.INVENTORY}
    assert {line.currency for line in lines} == {"HKD"}
    assert {line.policy_id for line in lines} == {policy.pk}
    assert [line.msisdn for line in lines] == [msisdn(1), msisdn(2), msisdn(3)]
    assert lines[0].eid == EID
    assert lines[0].activation_code == ac(1)
    assert set(PhoneNumber.objects.values_list("status", flat=True)) == {NumberStatus.ASSIGNED}
    events = LineEvent.objects.filter(kind=LineEventKind.CREATED, actor="import")
    assert events.count() == 3
    assert {event.to_status for event in events} == {LineStatus.INVENTORY}


def test_every_kind_of_bad_row_is_reported_and_nothing_is_imported(policy, write_csv):
    # given
    do_create_line(iccid=iccid(9), policy=policy, currency="HKD", now=NOW)
    path = write_csv(
        HEADER,
        row(1),  # line 2: good
        f"8985200000000000003,{msisdn(2)},{ac(2)},",  # line 3: bad check digit
        f"{iccid(3)},+852 1234 5678,{ac(3)},",  # line 4: not a phone number
        f"{iccid(1)},{msisdn(4)},{ac(4)},",  # line 5: ICCID of line 2
        f"{iccid(9)},{msisdn(5)},{ac(5)},",  # line 6: ICCID already in the database
    )

    # when
    message, err = run_failing_import(path)

    # then
    assert "4 of 5 rows are invalid; nothing was imported" in message
    assert "line 3, iccid: This ICCID's check digit is wrong" in err
    assert "line 4, msisdn: +852 1234 5678 is not a valid phone number." in err
    assert f"line 5, iccid: ICCID {iccid(1)} is already on line 2 of this file." in err
    assert f"line 6, iccid: A line with ICCID {iccid(9)} already exists." in err
    assert [text.split(",")[0] for text in err.splitlines()] == [
        "line 3",
        "line 4",
        "line 5",
        "line 6",
    ]
    assert list(Line.objects.values_list("iccid", flat=True)) == [iccid(9)]
    assert not PhoneNumber.objects.exists()
    assert LineEvent.objects.filter(actor="import").count() == 0


def test_skip_invalid_imports_only_the_good_rows(policy, write_csv):
    # given
    do_create_line(iccid=iccid(9), policy=policy, currency="HKD", now=NOW)
    path = write_csv(
        HEADER,
        row(1),
        f"8985200000000000003,{msisdn(2)},{ac(2)},",
        f"{iccid(3)},+852 1234 5678,{ac(3)},",
        f"{iccid(1)},{msisdn(4)},{ac(4)},",
        f"{iccid(9)},{msisdn(5)},{ac(5)},",
        row(6),
    )

    # when
    out, err = run_import(path, "--skip-invalid")

    # then
    assert "Imported 2, skipped 4." in out
    assert "Skipped lines: 3, 4, 5, 6" in err
    assert "line 3, iccid:" in err
    imported = Line.objects.filter(events__actor="import").order_by("iccid")
    assert [line.iccid for line in imported] == [iccid(1), iccid(6)]
    assert sorted(PhoneNumber.objects.values_list("msisdn", flat=True)) == [msisdn(1), msisdn(6)]


def test_skip_invalid_with_no_good_row_fails(policy, write_csv):
    # given
    path = write_csv(HEADER, f"8985200000000000003,{msisdn(2)},{ac(2)},")

    # when
    message, _err = run_failing_import(path, "--skip-invalid")

    # then
    assert message == "All 1 rows are invalid; nothing was imported."
    assert not Line.objects.exists()


def test_duplicate_number_in_file_is_found_after_normalisation(policy, write_csv):
    # given
    path = write_csv(
        HEADER,
        f"{iccid(1)},9123 0001,{ac(1)},",
        f"{iccid(2)},+852-9123-0001,{ac(2)},",
    )

    # when
    _message, err = run_failing_import(path)

    # then
    assert "line 3, msisdn: Number +85291230001 is already on line 2 of this file." in err
    assert not Line.objects.exists()


def test_numbers_assigned_or_in_quarantine_are_refused(policy, write_csv):
    # given
    do_create_line(iccid=iccid(9), msisdn=msisdn(1), policy=policy, currency="HKD", now=NOW)
    PhoneNumber.objects.create(
        msisdn=msisdn(2),
        status=NumberStatus.QUARANTINED,
        quarantined_until=datetime(2099, 1, 1, tzinfo=UTC),
    )
    PhoneNumber.objects.create(
        msisdn=msisdn(3),
        status=NumberStatus.QUARANTINED,
        quarantined_until=datetime(2000, 1, 1, tzinfo=UTC),
    )
    path = write_csv(HEADER, row(1), row(2), row(3))

    # when
    _message, err = run_failing_import(path)

    # then
    assert f"line 2, msisdn: Number {msisdn(1)} is already assigned to a line." in err
    assert f"line 3, msisdn: Number {msisdn(2)} is in quarantine until" in err
    assert "line 4" not in err  # its quarantine has run out: the number is free
    assert Line.objects.count() == 1


def test_unknown_policy_is_refused(policy, write_csv):
    # given
    path = write_csv(HEADER, row(1))

    # when
    message, _err = run_failing_import(path, policy="no-such-policy")

    # then
    assert message == "Unknown number policy no-such-policy. Known policies: hk-180."
    assert not Line.objects.exists()


@pytest.mark.parametrize("currency", ["HK", "HKDD", "ZZZ", "12$", ""])
def test_bad_currency_is_refused(policy, write_csv, currency):
    # given
    path = write_csv(HEADER, row(1))

    # when
    message, _err = run_failing_import(path, currency=currency)

    # then
    assert "is not an ISO 4217 currency code" in message
    assert not Line.objects.exists()


def test_currency_is_upper_cased(policy, write_csv):
    # given
    path = write_csv(HEADER, row(1))

    # when
    run_import(path, currency="hkd")

    # then
    assert Line.objects.get().currency == "HKD"


def test_bom_crlf_and_blank_trailing_lines_are_accepted(policy, write_csv):
    # given
    path = write_csv(
        "ICCID, MSISDN ,Activation_Code",
        f"{iccid(1)},{msisdn(1)},{ac(1)}",
        f"{iccid(2)},{msisdn(2)},{ac(2)}",
        "",
        "   ",
        "",
        bom=True,
        ending="\r\n",
    )

    # when
    out, _err = run_import(path)

    # then
    assert "Imported 2, skipped 0." in out
    assert Line.objects.count() == 2


def test_line_numbers_count_blank_lines_in_the_middle(policy, write_csv):
    # given
    path = write_csv(HEADER, row(1), "", f"{iccid(2)},not a number,{ac(2)},")

    # when
    _message, err = run_failing_import(path)

    # then
    assert "line 4, msisdn:" in err


def test_record_spanning_lines_is_numbered_by_its_first_line(policy, write_csv):
    # given
    path = write_csv(
        HEADER,
        f'{iccid(1)},{msisdn(1)},"1$SMDP.EXAMPLE.COM$A\nB",',
        f"{iccid(2)},not a number,{ac(2)},",
    )

    # when
    _message, err = run_failing_import(path)

    # then
    assert "line 2, activation_code:" in err
    assert "line 4, msisdn:" in err


def test_dry_run_writes_nothing(policy, write_csv):
    # given
    path = write_csv(HEADER, row(1), row(2))

    # when
    out, _err = run_import(path, "--dry-run")

    # then
    assert "Dry run: would import 2, skip 0" in out
    assert not Line.objects.exists()
    assert not PhoneNumber.objects.exists()


def test_dry_run_with_bad_rows_fails(policy, write_csv):
    # given
    path = write_csv(HEADER, row(1), f"{iccid(2)},{msisdn(2)},,")

    # when
    message, err = run_failing_import(path, "--dry-run")

    # then
    assert "1 of 2 rows are invalid" in message
    assert "line 3, activation_code: Enter the activation code." in err


def test_missing_column_is_refused(policy, write_csv):
    # given
    path = write_csv("iccid,activation_code", f"{iccid(1)},{ac(1)}")

    # when
    message, _err = run_failing_import(path)

    # then
    assert "Missing column(s): msisdn" in message
    assert not Line.objects.exists()


def test_empty_file_is_refused(policy, write_csv):
    # given
    path = write_csv("")

    # when
    message, _err = run_failing_import(path)

    # then
    assert "The file is empty" in message


def test_missing_file_is_refused(policy, tmp_path):
    # given
    path = str(tmp_path / "missing.csv")

    # when
    message, _err = run_failing_import(path)

    # then
    assert "Cannot open" in message


def test_file_that_is_not_utf8_is_refused(policy, tmp_path):
    # given
    path = tmp_path / "latin1.csv"
    path.write_bytes(f"{HEADER}\n{row(1)}\n".encode() + "caf\xe9\n".encode("latin-1"))

    # when
    message, _err = run_failing_import(str(path))

    # then
    assert message == "line 3: the file is not UTF-8 text."
    assert not Line.objects.exists()


def test_unknown_columns_are_ignored_with_a_warning(policy, write_csv):
    # given
    path = write_csv(f"{HEADER},imsi", f"{row(1)},454001234567890")

    # when
    out, err = run_import(path)

    # then
    assert "Ignoring unknown column(s): imsi" in err
    assert "Imported 1, skipped 0." in out


def test_row_with_wrong_field_count_is_reported(policy, write_csv):
    # given
    path = write_csv(HEADER, f"{row(1)},extra")

    # when
    _message, err = run_failing_import(path)

    # then
    assert "line 2: This row has 5 fields; the header has 4." in err


# --- The importer without the command ------------------------------------------


def test_validate_rows_collects_every_error_of_a_row(policy):
    # given
    rows = [
        importer.RawRow(2, {"iccid": "123", "msisdn": "x", "activation_code": "LPA:2$a$b"}, 3),
    ]

    # when
    result = importer.validate_rows(rows, expected_fields=3, now=NOW)

    # then
    assert not result.ok
    assert [(e.line, e.column) for e in result.errors] == [
        (2, "iccid"),
        (2, "msisdn"),
        (2, "activation_code"),
    ]
    assert result.good == []


def test_validate_then_import_rows(policy):
    # given
    rows = [
        importer.RawRow(2, {"iccid": iccid(1), "msisdn": "9123 0001", "activation_code": ac(1)}, 3),
        importer.RawRow(3, {"iccid": iccid(2), "msisdn": msisdn(2), "activation_code": ac(2)}, 3),
    ]

    # when
    result = importer.validate_rows(rows, now=NOW)
    lines = importer.import_rows(result.good, policy=policy, currency="HKD", now=NOW)

    # then
    assert result.ok
    assert [g.msisdn for g in result.good] == ["+85291230001", msisdn(2)]
    assert [line.iccid for line in lines] == [iccid(1), iccid(2)]
    assert LineEvent.objects.filter(actor="import", recorded_at=NOW).count() == 2


def test_row_taken_between_validation_and_import_rolls_everything_back(policy):
    # given
    rows = [
        importer.RawRow(2, {"iccid": iccid(1), "msisdn": msisdn(1), "activation_code": ac(1)}, 3),
        importer.RawRow(3, {"iccid": iccid(2), "msisdn": msisdn(2), "activation_code": ac(2)}, 3),
    ]
    result = importer.validate_rows(rows, now=NOW)
    do_create_line(iccid=iccid(2), policy=policy, currency="HKD", now=NOW)

    # when
    with pytest.raises(importer.RowImportFailed) as info:
        importer.import_rows(result.good, policy=policy, currency="HKD", now=NOW)

    # then
    assert info.value.error.line == 3
    assert "already exists" in str(info.value)
    assert list(Line.objects.values_list("iccid", flat=True)) == [iccid(2)]
    assert not PhoneNumber.objects.exists()


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        (
            "LPA:1$SMDP.GSMA.COM$04386-AGYFT-A74Y8-3F815$1.3.6.1.4.1.31746$1",
            "1$SMDP.GSMA.COM$04386-AGYFT-A74Y8-3F815$1.3.6.1.4.1.31746$1",
        ),
        ("1$smdp.example.com$ABC-123", "1$smdp.example.com$ABC-123"),
        ("1$smdp.example.com$ABC$", "1$smdp.example.com$ABC"),
        ("1$smdp.example.com$ABC$$1", "1$smdp.example.com$ABC$$1"),
    ],
)
def test_activation_code_is_checked_and_canonical(typed, stored):
    # given / when
    result = importer.normalize_activation_code(typed)

    # then
    assert result == stored


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("", "ac_empty"),
        ("LPA:", "ac_empty"),
        ("2$smdp.example.com$ABC", "ac_format"),
        ("1$smdp.example.com", "ac_format"),
        ("1$smdp.example.com$ABC$1.2$1$x", "ac_format"),
        ("1$localhost$ABC", "ac_smdp"),
        ("1$smdp example.com$ABC", "ac_smdp"),
        ("1$smdp.example.com$", "ac_matching_id"),
        ("1$smdp.example.com$AB C", "ac_matching_id"),
        ("1$smdp.example.com$ABC$1.x.3", "ac_oid"),
        ("1$smdp.example.com$ABC$1.2$0", "ac_flag"),
        ("1$smdp.example.com$" + "A" * 300, "ac_length"),
    ],
)
def test_bad_activation_code_is_rejected(value, code):
    # given / when
    with pytest.raises(ValidationError) as info:
        importer.normalize_activation_code(value)

    # then
    assert info.value.code == code


def test_import_starts_no_clock_of_its_own(policy, write_csv):
    # given: imported lines sit in inventory until activation starts the first-top-up window
    path = write_csv(HEADER, row(1))

    # when
    run_import(path)

    # then
    line = Line.objects.get()
    assert line.valid_until is None
    assert line.next_transition_at is None
    assert line.activated_at is None


def test_help_renders():
    # given
    parser = LinesCommand().create_parser("leb", "lines")

    # when
    text = parser.format_help()

    # then
    assert "import" in text
    assert "Line tools." in text
