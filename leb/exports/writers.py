"""The two file formats. Both write money as a decimal amount (the currency is
a column of its own), times in the operator's time zone, and text that a
spreadsheet would run as a formula (starting with = + - @, a tab or a
carriage return) as text: in CSV after a leading apostrophe, in XLSX as a
text cell with Excel's apostrophe (quote prefix) set."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

from babel.numbers import get_currency_precision, is_currency
from django.conf import settings
from django.utils import timezone

from leb.common.exporting import Column, Kind, Money

# What Excel, LibreOffice and Google Sheets read as the start of a formula.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def guard(text: str) -> str:
    """Text as text: a leading apostrophe stops a spreadsheet running it."""
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def operator_zone() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def digits(currency: str) -> int:
    return get_currency_precision(currency) if is_currency(currency) else 2


def decimal_amount(money: Money) -> Decimal:
    return Decimal(money.amount).scaleb(-digits(money.currency))


def local_naive(value: datetime) -> datetime:
    """An aware time as the operator's wall clock (spreadsheets know no zones)."""
    if timezone.is_naive(value):
        return value
    return timezone.localtime(value, operator_zone()).replace(tzinfo=None)


def heading(column: Column) -> str:
    text = str(column.heading)
    if column.kind == Kind.DATETIME:
        return f"{text} ({settings.TIME_ZONE})"
    return text


class CsvWriter:
    """UTF-8 with a byte-order mark, so Excel opens Chinese text correctly."""

    extension = "csv"
    content_type = "text/csv; charset=utf-8"

    def __init__(self, path: Path, columns: Sequence[Column]) -> None:
        self.columns = columns
        self._file: IO[str] = path.open("w", encoding="utf-8-sig", newline="")
        self._csv = csv.writer(self._file)
        self._csv.writerow([guard(heading(column)) for column in columns])

    def cell(self, column: Column, value: Any) -> Any:
        if value is None:
            return ""
        if isinstance(value, Money):
            return f"{decimal_amount(value):f}"
        if isinstance(value, datetime):
            return local_naive(value).isoformat(sep=" ", timespec="seconds")
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, int | Decimal):
            return value
        return guard(str(value))

    def write(self, row: Sequence[Any]) -> None:
        self._csv.writerow(
            [self.cell(column, value) for column, value in zip(self.columns, row, strict=True)]
        )

    def close(self) -> None:
        self._file.close()


class XlsxWriter:
    """openpyxl in write-only mode: rows go to disk as they come, so a large
    export does not build the whole workbook in memory."""

    extension = "xlsx"
    content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

    def __init__(self, path: Path, columns: Sequence[Column], title: str = "export") -> None:
        from openpyxl import Workbook

        self.path = path
        self.columns = columns
        self._book = Workbook(write_only=True)
        # A sheet title may not hold []:*?/\ and at most 31 characters.
        safe = "".join(ch for ch in title if ch not in "[]:*?/\\")[:31] or "export"
        self._sheet = self._book.create_sheet(safe)
        self._sheet.freeze_panes = "A2"
        self._sheet.append([self.cell(column, heading(column)) for column in columns])

    def cell(self, column: Column, value: Any) -> Any:
        from openpyxl.cell import WriteOnlyCell

        if value is None:
            return None
        if isinstance(value, Money):
            places = digits(value.currency)
            cell = WriteOnlyCell(self._sheet, value=decimal_amount(value))
            cell.number_format = "#,##0." + "0" * places if places else "#,##0"
            return cell
        if isinstance(value, datetime):
            cell = WriteOnlyCell(self._sheet, value=local_naive(value))
            cell.number_format = "yyyy-mm-dd hh:mm:ss"
            return cell
        if isinstance(value, date):
            cell = WriteOnlyCell(self._sheet, value=value)
            cell.number_format = "yyyy-mm-dd"
            return cell
        if isinstance(value, bool | int | Decimal):
            return value
        text = str(value)
        if not text.startswith(FORMULA_PREFIXES):
            return text
        # Excel's own apostrophe: the cell is text, shown without the mark
        # ("+852…" stays a phone number), and stays text when edited. The
        # type is set after the value, since openpyxl reads "=…" as a formula.
        cell = WriteOnlyCell(self._sheet, value=text)
        cell.data_type = "s"
        cell.quotePrefix = True
        return cell

    def write(self, row: Sequence[Any]) -> None:
        self._sheet.append(
            [self.cell(column, value) for column, value in zip(self.columns, row, strict=True)]
        )

    def close(self) -> None:
        self._book.save(str(self.path))


def open_writer(file_format: str, path: Path, columns: Sequence[Column], title: str) -> Any:
    if file_format == "xlsx":
        return XlsxWriter(path, columns, title)
    return CsvWriter(path, columns)


EXTENSIONS = {"csv": "csv", "xlsx": "xlsx"}
CONTENT_TYPES = {"csv": CsvWriter.content_type, "xlsx": XlsxWriter.content_type}
