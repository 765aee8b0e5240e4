"""Locale-aware formatting with Babel: money in minor units, dates in the
user's time zone and language."""

from __future__ import annotations

from datetime import date, datetime, tzinfo
from decimal import Decimal
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from babel.dates import format_date, format_time, get_datetime_format
from babel.numbers import format_currency, get_currency_precision
from django.conf import settings
from django.http import HttpRequest
from django.utils import translation

from leb.common import clock

# Django language code -> Babel locale. Hong Kong is the home market, so
# Traditional Chinese uses the HK conventions.
BABEL_LOCALES = {"zh-hans": "zh_Hans_CN", "zh-hant": "zh_Hant_HK", "en": "en"}
TZ_SESSION_KEY = "tz"
Format = Literal["full", "long", "medium", "short"]


def babel_locale(language: str | None = None) -> str:
    language = (language or translation.get_language() or settings.LANGUAGE_CODE).lower()
    if language in BABEL_LOCALES:
        return BABEL_LOCALES[language]
    if language.startswith("zh-hant") or language in ("zh-hk", "zh-tw", "zh-mo"):
        return BABEL_LOCALES["zh-hant"]
    if language.startswith("zh"):
        return BABEL_LOCALES["zh-hans"]
    return "en"


def format_money(amount_minor: int, currency: str, language: str | None = None) -> str:
    """`5000, "HKD"` -> "HK$50.00"; the currency's own precision decides the
    minor unit (JPY has none)."""
    currency = currency.upper()
    digits = get_currency_precision(currency)
    amount = Decimal(int(amount_minor)).scaleb(-digits)
    return format_currency(amount, currency, locale=babel_locale(language))


def user_timezone(request: HttpRequest | None = None) -> tzinfo:
    """The `tz` session key if it names a real zone, else settings.TIME_ZONE."""
    name = ""
    session = getattr(request, "session", None)
    if session is not None:
        name = str(session.get(TZ_SESSION_KEY) or "")
    for candidate in (name, settings.TIME_ZONE):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def _as_local(value: datetime | date, tz: tzinfo) -> datetime | date:
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(tz)
    return value


def format_local_date(
    value: datetime | date, tz: tzinfo, language: str | None = None, fmt: Format = "long"
) -> str:
    local = _as_local(value, tz)
    day = local.date() if isinstance(local, datetime) else local
    return format_date(day, format=fmt, locale=babel_locale(language))


def format_local_datetime(
    value: datetime, tz: tzinfo, language: str | None = None, fmt: Format = "medium"
) -> str:
    """Date in `fmt`, time to the minute (seconds are noise on a validity date)."""
    locale = babel_locale(language)
    local = value.astimezone(tz) if value.tzinfo is not None else value
    pattern = str(get_datetime_format(fmt, locale=locale)).replace("'", "")
    return pattern.replace("{0}", format_time(local, format="short", locale=locale)).replace(
        "{1}", format_date(local.date(), format=fmt, locale=locale)
    )


def days_until(value: datetime, now: datetime | None = None) -> int:
    """Whole days left before `value` (negative once it has passed)."""
    now = now or clock.now()
    return int((value - now).total_seconds() // 86400)


def format_phone(e164: str) -> str:
    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
