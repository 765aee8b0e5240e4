# ruff: noqa: RUF001
"""The shared corpus of hostile input, for every channel's tests: web forms,
the APIs, IVR digits, USSD text, CSV import, the agent API.

Each entry is (id, value): the id names the case in a parametrised test, the
value is what a hostile or confused user sends. Groups:

- TEXT: anything typed where free text goes (over-long, confusables, control
  characters, markup, SQL-ish, emoji and lone surrogates).
- NUMBERS: wrong shapes for an amount or a count.
- MSISDNS / ICCIDS / PINS: wrong shapes for a phone number, an eSIM ICCID, a
  voucher PIN (too many digits, Luhn-invalid, fullwidth and Arabic-Indic
  digits, spaces, signs).
- MARKUP: what must never come back unescaped wherever it is shown.

`cases(*groups)` joins groups for `pytest.mark.parametrize`."""

from __future__ import annotations

from collections.abc import Iterable

Case = tuple[str, str]

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'

TEXT: list[Case] = [
    ("empty", ""),
    ("blank", "   "),
    ("long-10k", "9" * 10_000),
    ("long-10k-text", "a" * 10_000),
    ("fullwidth-digits", "０１２３４５６７８９"),
    ("arabic-indic-digits", "٠١٢٣٤٥٦٧٨٩"),
    ("cyrillic-lookalike", "+852 9Ο00 ОООО"),  # Greek Omicron, Cyrillic O
    ("zero-width-joiner", "+852\u200d9400\u200b0001"),
    ("rtl-override", "+852\u202e10004946"),
    ("nul", "+85294\x000001"),
    ("crlf-injection", "+85294000001\r\nSet-Cookie: x=1"),
    ("escape", "\x1b[31m+85294000001"),
    ("script", SCRIPT),
    ("img-onerror", IMG),
    ("javascript-url", "javascript:alert(1)"),
    ("sql", "' OR 1=1 --"),
    ("sql-drop", "1; DROP TABLE lines_line;"),
    ("emoji", "📱📱📱"),
    ("astral-emoji-zwj", "👩\u200d👩\u200d👧"),
]

# Raw JSON bodies no str can hold: a lone surrogate escape, invalid UTF-8.
RAW_JSON: list[tuple[str, bytes]] = [
    ("lone-surrogate", b'"\\ud800"'),
    ("invalid-utf8", b'"\xff\xfe"'),
]

NUMBERS: list[Case] = [
    ("negative", "-5000"),
    ("zero", "0"),
    ("huge", "1e9"),
    ("past-64-bits", "99999999999999999999999"),
    ("thousands-comma", "1,000"),
    ("fullwidth", "１２"),
    ("hex", "0x10"),
    ("nan", "NaN"),
    ("infinity", "Infinity"),
    ("leading-plus", "+50"),
    ("spaces", " 5 0 "),
    ("decimal", "50.5"),
]

MSISDNS: list[Case] = [
    ("msisdn-too-long", "+852940000011234567"),
    ("msisdn-too-short", "+8529"),
    ("msisdn-letters", "+852ABCDEFGH"),
    ("msisdn-fullwidth", "＋８５２９４００００００１"),
    ("msisdn-arabic-indic", "+٨٥٢٩٤٠٠٠٠٠٠١"),
    ("msisdn-double-plus", "++85294000001"),
]

ICCIDS: list[Case] = [
    ("iccid-luhn-invalid", "89852000000000000011"),
    ("iccid-too-long", "8985200000000000000123456"),
    ("iccid-too-short", "898520"),
    ("iccid-letters", "89852000000000000ABC"),
    ("iccid-fullwidth", "８９８５２００００００００００００００１８"),
]

PINS: list[Case] = [
    ("pin-too-short", "1234"),
    ("pin-too-long", "12345678901234567890"),
    ("pin-letters", "ABCDEFGHIJKLMNOP"),
    ("pin-fullwidth", "１２３４５６７８９０１２３４５６"),
    ("pin-arabic-indic", "١٢٣٤٥٦٧٨٩٠١٢٣٤٥٦"),
    ("pin-star-hash", "1234*5678#123456"),
    ("pin-negative", "-123456789012345"),
]

MARKUP: list[Case] = [
    ("script", SCRIPT),
    ("img-onerror", IMG),
    ("javascript-url", "javascript:alert(1)"),
]

GROUPS = {
    "text": TEXT,
    "numbers": NUMBERS,
    "msisdns": MSISDNS,
    "iccids": ICCIDS,
    "pins": PINS,
    "markup": MARKUP,
}


def cases(*groups: str) -> list[tuple[str, str]]:
    """The (id, value) pairs of these groups, each id once."""
    seen: dict[str, str] = {}
    for group in groups:
        for case_id, value in GROUPS[group]:
            seen.setdefault(case_id, value)
    return list(seen.items())


def values(*groups: str) -> list[str]:
    return [value for _id, value in cases(*groups)]


def ids(*groups: str) -> list[str]:
    return [case_id for case_id, _value in cases(*groups)]


def params(*groups: str) -> Iterable[object]:
    """pytest.param for each case, with its id."""
    import pytest

    return [pytest.param(value, id=case_id) for case_id, value in cases(*groups)]


def unescaped(html: str) -> list[str]:
    """The raw markup of MARKUP that appears in `html` unescaped."""
    return [value for _id, value in MARKUP if value.startswith(("<", '"')) and value in html]
