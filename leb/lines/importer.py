"""Bulk import of eSIM profiles from a supplier's CSV file.

Every row is checked before anything is written: identifiers, activation code,
duplicates inside the file and clashes with the database. Rows become lines
through `do_create_line`, the same action every other channel uses.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, TypeVar

from babel.numbers import is_currency
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.formats import date_format
from django.utils.timezone import localtime
from django.utils.translation import gettext as _

from leb.common import clock

from . import identifiers
from .actions import do_create_line
from .models import Line, NumberPolicy, NumberStatus, PhoneNumber

REQUIRED_COLUMNS = ("iccid", "msisdn", "activation_code")
OPTIONAL_COLUMNS = ("eid",)
ACTOR = "import"
# Keeps every IN (...) lookup far below SQLite's bound-parameter limit.
_LOOKUP_CHUNK = 500

# SGP.22 §4.1: the SM-DP+ address is a fully qualified domain name.
_FQDN = re.compile(
    r"(?=.{1,253}\Z)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+\Z"
)
# SGP.22 names upper-case letters, digits and '-'; lower case is tolerated
# because suppliers' tools are not consistent about it.
_MATCHING_ID = re.compile(r"[A-Za-z0-9-]+\Z")
_OID = re.compile(r"[0-9]+(?:\.[0-9]+)*\Z")
_ACTIVATION_CODE_MAX: int = getattr(Line._meta.get_field("activation_code"), "max_length", 255)


class ImportRefused(Exception):
    """The whole import is refused (bad policy, currency or file); nothing was written."""


@dataclass(frozen=True)
class RawRow:
    """One CSV record as read: `line` is its line number in the file (header = 1)."""

    line: int
    values: dict[str, str]
    field_count: int


@dataclass(frozen=True)
class RowError:
    line: int
    column: str
    message: str

    def __str__(self) -> str:
        if self.column:
            return _("line %(line)d, %(column)s: %(message)s") % {
                "line": self.line,
                "column": self.column,
                "message": self.message,
            }
        return _("line %(line)d: %(message)s") % {"line": self.line, "message": self.message}


@dataclass(frozen=True)
class GoodRow:
    line: int
    iccid: str
    msisdn: str
    activation_code: str
    eid: str = ""


@dataclass
class ParsedFile:
    rows: list[RawRow] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    expected_fields: int = 0


@dataclass
class Validation:
    good: list[GoodRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def bad_lines(self) -> list[int]:
        return sorted({error.line for error in self.errors})


# --- Import settings -----------------------------------------------------------


def resolve_policy(code: str) -> NumberPolicy:
    try:
        return NumberPolicy.objects.get(code=code)
    except NumberPolicy.DoesNotExist:
        known = ", ".join(NumberPolicy.objects.order_by("code").values_list("code", flat=True))
        raise ImportRefused(
            _("Unknown number policy %(code)s. Known policies: %(known)s.")
            % {"code": code, "known": known or "-"}
        ) from None


def normalize_currency(code: str) -> str:
    currency = (code or "").strip().upper()
    if len(currency) != 3 or not currency.isalpha() or not is_currency(currency):
        raise ImportRefused(
            _("%(currency)s is not an ISO 4217 currency code.") % {"currency": code}
        )
    return currency


# --- Reading -------------------------------------------------------------------


def open_csv(path: str) -> IO[str]:
    """Text of the file at `path`. Decoded up front so a bad byte is reported
    with its line; utf-8-sig drops a byte-order mark if there is one."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise ImportRefused(
            _("Cannot open %(path)s: %(reason)s") % {"path": path, "reason": exc.strerror}
        ) from exc
    return decode_csv(data)


def decode_csv(data: bytes) -> IO[str]:
    """Text of a CSV file's bytes (an upload, or what `open_csv` read)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportRefused(
            _("line %(line)d: the file is not UTF-8 text.")
            % {"line": data.count(b"\n", 0, exc.start) + 1}
        ) from exc
    return io.StringIO(text, newline="")


def parse_csv(stream: IO[str]) -> ParsedFile:
    """Header and records of a CSV file. Rows with nothing in them (blank
    lines, a trailing row of commas) are skipped; their line numbers still count."""
    parsed = ParsedFile()
    reader = csv.reader(stream)
    try:
        header = next(reader, None)
        if header is None or not any(cell.strip() for cell in header):
            raise ImportRefused(_("The file is empty: it needs a header row."))
        # A BOM is dropped by the codec; a stray one inside a copied header is not.
        columns = [cell.strip().lstrip("\ufeff").lower() for cell in header]
        missing = [name for name in REQUIRED_COLUMNS if name not in columns]
        if missing:
            raise ImportRefused(
                _("Missing column(s): %(columns)s. The header needs %(required)s.")
                % {"columns": ", ".join(missing), "required": ", ".join(REQUIRED_COLUMNS)}
            )
        duplicated = sorted({name for name in columns if name and columns.count(name) > 1})
        if duplicated:
            raise ImportRefused(
                _("Column(s) named more than once: %(columns)s.")
                % {"columns": ", ".join(duplicated)}
            )
        known = set(REQUIRED_COLUMNS) | set(OPTIONAL_COLUMNS)
        parsed.ignored_columns = [name for name in columns if name and name not in known]
        parsed.expected_fields = len(columns)
        # A quoted field may span lines: a record is numbered by its first line.
        start = reader.line_num + 1
        for record in reader:
            if any(cell.strip() for cell in record):
                values = {
                    name: cell.strip() for name, cell in zip(columns, record, strict=False) if name
                }
                parsed.rows.append(RawRow(start, values, len(record)))
            start = reader.line_num + 1
    except UnicodeDecodeError as exc:
        raise ImportRefused(_("The file is not UTF-8 text.")) from exc
    except csv.Error as exc:
        raise ImportRefused(
            _("line %(line)d: this is not valid CSV (%(reason)s).")
            % {"line": reader.line_num, "reason": exc}
        ) from exc
    return parsed


# --- Validation ----------------------------------------------------------------


def normalize_activation_code(value: str) -> str:
    """An SGP.22 activation code `1$SM-DP+ address$matching ID[$OID[$1]]`,
    canonicalised by `identifiers.activation_code`. A leading `LPA:` (the QR
    code payload) is accepted and dropped: lines store the code without it."""
    code = (value or "").strip()
    if code[:4].upper() == "LPA:":
        code = code[4:]
    if not code:
        raise ValidationError(_("Enter the activation code."), code="ac_empty")
    parts = code.split("$")
    if len(parts) < 3 or len(parts) > 5 or parts[0] != "1":
        raise ValidationError(
            _("An activation code looks like 1$SM-DP+ address$matching ID."),
            code="ac_format",
        )
    smdp, matching_id = parts[1], parts[2]
    oid = parts[3] if len(parts) > 3 else ""
    flag = parts[4] if len(parts) > 4 else ""
    if not _FQDN.match(smdp):
        raise ValidationError(
            _("%(address)s is not a valid SM-DP+ address."),
            code="ac_smdp",
            params={"address": smdp},
        )
    if not _MATCHING_ID.match(matching_id):
        raise ValidationError(
            _("The matching ID may contain only letters, digits and dashes."),
            code="ac_matching_id",
        )
    if oid and not _OID.match(oid):
        raise ValidationError(
            _("%(oid)s is not a valid SM-DP+ OID."), code="ac_oid", params={"oid": oid}
        )
    if len(parts) == 5 and flag != "1":
        raise ValidationError(
            _("The last field of an activation code may only be 1 (confirmation code required)."),
            code="ac_flag",
        )
    canonical = identifiers.activation_code(
        smdp, matching_id, oid=oid, confirmation_required=flag == "1"
    )
    if len(canonical) > _ACTIVATION_CODE_MAX:
        raise ValidationError(
            _("An activation code has at most %(max)d characters."),
            code="ac_length",
            params={"max": _ACTIVATION_CODE_MAX},
        )
    return canonical


def _messages(exc: ValidationError) -> str:
    # Rendering here fills in the params in the active language.
    return " ".join(str(message) for message in exc.messages)


_T = TypeVar("_T")


def _chunks(items: Sequence[_T]) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), _LOOKUP_CHUNK):
        yield items[start : start + _LOOKUP_CHUNK]


def validate_rows(
    rows: Iterable[RawRow], *, expected_fields: int = 0, now: datetime | None = None
) -> Validation:
    """Check every row, collecting every problem rather than stopping at the
    first, so one run shows the supplier everything to fix."""
    now = now or clock.now()
    result = Validation()
    checked: list[tuple[RawRow, dict[str, str]]] = []
    for row in rows:
        clean: dict[str, str] = {}
        if expected_fields and row.field_count != expected_fields:
            result.errors.append(
                RowError(
                    row.line,
                    "",
                    _("This row has %(found)d fields; the header has %(expected)d.")
                    % {"found": row.field_count, "expected": expected_fields},
                )
            )
        checks: list[tuple[str, Callable[[str], str]]] = [
            ("iccid", identifiers.normalize_iccid),
            ("msisdn", identifiers.normalize_msisdn),
            ("activation_code", normalize_activation_code),
        ]
        if row.values.get("eid"):
            checks.append(("eid", identifiers.normalize_eid))
        for column, normalize in checks:
            try:
                clean[column] = normalize(row.values.get(column, ""))
            except ValidationError as exc:
                result.errors.append(RowError(row.line, column, _messages(exc)))
        checked.append((row, clean))

    # Rows with a bad field still take part, so a duplicate is reported at
    # once rather than after the first problem is fixed.
    _check_duplicates_in_file(checked, result)
    _check_database(checked, result, now)

    bad = {error.line for error in result.errors}
    result.good = [
        GoodRow(
            line=row.line,
            iccid=clean["iccid"],
            msisdn=clean["msisdn"],
            activation_code=clean["activation_code"],
            eid=clean.get("eid", ""),
        )
        for row, clean in checked
        if row.line not in bad
    ]
    # Stable: a row's own problems keep their column order.
    result.errors.sort(key=lambda error: error.line)
    return result


def _check_duplicates_in_file(
    candidates: list[tuple[RawRow, dict[str, str]]], result: Validation
) -> None:
    # Compared after normalisation: "9123 4567" and "+85291234567" are one number.
    first_iccid: dict[str, int] = {}
    first_msisdn: dict[str, int] = {}
    for row, clean in candidates:
        iccid, msisdn = clean.get("iccid"), clean.get("msisdn")
        if iccid is None:
            pass
        elif iccid in first_iccid:
            result.errors.append(
                RowError(
                    row.line,
                    "iccid",
                    _("ICCID %(iccid)s is already on line %(first)d of this file.")
                    % {"iccid": iccid, "first": first_iccid[iccid]},
                )
            )
        else:
            first_iccid[iccid] = row.line
        if msisdn is None:
            pass
        elif msisdn in first_msisdn:
            result.errors.append(
                RowError(
                    row.line,
                    "msisdn",
                    _("Number %(msisdn)s is already on line %(first)d of this file.")
                    % {"msisdn": msisdn, "first": first_msisdn[msisdn]},
                )
            )
        else:
            first_msisdn[msisdn] = row.line


def _check_database(
    candidates: list[tuple[RawRow, dict[str, str]]], result: Validation, now: datetime
) -> None:
    iccids = sorted({clean["iccid"] for _row, clean in candidates if "iccid" in clean})
    msisdns = sorted({clean["msisdn"] for _row, clean in candidates if "msisdn" in clean})
    existing: set[str] = set()
    for chunk in _chunks(iccids):
        existing.update(Line.objects.filter(iccid__in=chunk).values_list("iccid", flat=True))
    taken: dict[str, tuple[str, datetime | None]] = {}
    for chunk in _chunks(msisdns):
        for msisdn, status, until in PhoneNumber.objects.filter(msisdn__in=chunk).values_list(
            "msisdn", "status", "quarantined_until"
        ):
            # The same rule as do_create_line: a quarantine that has run out is free.
            if status == NumberStatus.ASSIGNED or (
                status == NumberStatus.QUARANTINED and (until is None or until > now)
            ):
                taken[msisdn] = (status, until)
    for row, clean in candidates:
        if clean.get("iccid") in existing:
            result.errors.append(
                RowError(
                    row.line,
                    "iccid",
                    _("A line with ICCID %(iccid)s already exists.") % {"iccid": clean["iccid"]},
                )
            )
        if clean.get("msisdn") in taken:
            status, until = taken[clean["msisdn"]]
            if status == NumberStatus.ASSIGNED:
                message = _("Number %(msisdn)s is already assigned to a line.") % {
                    "msisdn": clean["msisdn"]
                }
            elif until is None:
                message = _("Number %(msisdn)s is in quarantine.") % {"msisdn": clean["msisdn"]}
            else:
                message = _("Number %(msisdn)s is in quarantine until %(date)s.") % {
                    "msisdn": clean["msisdn"],
                    "date": date_format(localtime(until), "DATE_FORMAT"),
                }
            result.errors.append(RowError(row.line, "msisdn", message))


# --- Import --------------------------------------------------------------------


class RowImportFailed(Exception):
    """A row that passed validation was refused at import time (someone else
    took its ICCID or number meanwhile); the whole import was rolled back."""

    def __init__(self, error: RowError) -> None:
        super().__init__(str(error))
        self.error = error


def import_rows(
    rows: Iterable[GoodRow],
    *,
    policy: NumberPolicy,
    currency: str,
    actor: str = ACTOR,
    now: datetime | None = None,
) -> list[Line]:
    """Create a line in inventory for each row, all in one transaction: either
    every row is imported or none is. Pass `rows` wrapped in a progress bar if
    you want one; it is consumed once."""
    now = now or clock.now()
    currency = normalize_currency(currency)
    lines: list[Line] = []
    with transaction.atomic():
        for row in rows:
            try:
                lines.append(
                    do_create_line(
                        iccid=row.iccid,
                        msisdn=row.msisdn,
                        eid=row.eid,
                        activation_code=row.activation_code,
                        policy=policy,
                        currency=currency,
                        actor=actor,
                        now=now,
                    )
                )
            except ValidationError as exc:
                raise RowImportFailed(RowError(row.line, "", _messages(exc))) from exc
            except IntegrityError as exc:
                # A concurrent writer won the unique ICCID or number after validation.
                raise RowImportFailed(
                    RowError(
                        row.line,
                        "",
                        _("The ICCID or number was taken while importing; run the import again."),
                    )
                ) from exc
    return lines
