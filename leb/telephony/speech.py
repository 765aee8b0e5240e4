"""What the hotline says, and how: the three spoken languages, their voices,
and dates, money and numbers written the way a text-to-speech voice reads
them well ("2027年3月5日", "一百港元", "100 Hong Kong dollars", never "HK$100")."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date
from babel.numbers import get_currency_name, get_currency_precision
from django.conf import settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Language:
    code: str  # cmn, yue, en: the key of the settings' JSON objects
    django: str  # the gettext language of the prompts
    babel: str  # the Babel locale of dates and currency names
    voice: str
    say_language: str  # the <Say language=...>
    menu_label: str  # how the language menu names it, in itself


DEFAULT_VOICES = {
    "cmn": ("Google.cmn-CN-Standard-A", "cmn-CN"),
    "yue": ("Google.yue-HK-Standard-A", "yue-HK"),
    "en": ("Google.en-US-Standard-C", "en-US"),
}
_BASE = {
    "cmn": ("zh-hans", "zh_Hans_CN", "普通话"),
    "yue": ("zh-hant", "zh_Hant_HK", "廣東話"),
    "en": ("en", "en_US", "English"),
}
# The language menu: key -> language code.
MENU = {"1": "cmn", "2": "yue", "3": "en"}


def _json_setting(name: str) -> dict[str, Any]:
    raw = getattr(settings, name, "") or ""
    if isinstance(raw, dict):
        return raw
    try:
        value = json.loads(raw) if raw.strip() else {}
    except ValueError:
        logger.error("LEB_%s is not valid JSON; ignored", name)
        return {}
    if not isinstance(value, dict):
        logger.error("LEB_%s must be a JSON object; ignored", name)
        return {}
    return value


def language(code: str) -> Language:
    django_lang, babel_locale, label = _BASE[code]
    voice, say_language = DEFAULT_VOICES[code]
    custom = _json_setting("IVR_VOICES").get(code)
    if isinstance(custom, list | tuple) and len(custom) == 2 and all(custom):
        voice, say_language = str(custom[0]), str(custom[1])
    if code == "en" and say_language.lower() != "en-us":
        babel_locale = "en_GB"  # day before month, as British and HK English say it
    return Language(code, django_lang, babel_locale, voice, say_language, label)


def setting_text(name: str, lang: Language) -> str:
    """A per-language text setting (call charge notice, support hours)."""
    value = _json_setting(name).get(lang.code, "")
    return value.strip() if isinstance(value, str) else ""


_DIGITS = "零一二三四五六七八九"
_SMALL_UNITS = ["", "十", "百", "千"]
_BIG_UNITS = ["", "万", "亿", "万亿"]
_BIG_UNITS_HANT = ["", "萬", "億", "萬億"]
# Two as it counts hundreds, thousands, ten-thousands and hundred-millions.
LIANG = {False: "两", True: "兩"}


def _chinese_below_10000(n: int, liang: str, before_big_unit: bool) -> str:
    out = ""
    zero = False
    for power in (3, 2, 1, 0):
        digit = n // 10**power % 10
        if digit == 0:
            zero = bool(out)
            continue
        if zero:
            out += "零"
            zero = False
        if digit == 2 and (power >= 2 or (power == 0 and n == 2 and before_big_unit)):
            out += liang  # 两百, 两千, and 两万 / 两亿 when the group is just 2
        else:
            out += _DIGITS[digit]
        out += _SMALL_UNITS[power]
    return out


def chinese_number(n: int, traditional: bool = False, *, counted: bool = False) -> str:
    """An integer in Chinese numerals as spoken: 180 -> 一百八十, 15 -> 十五,
    1005 -> 一千零五.

    Two is 两 (兩 in Traditional, as Cantonese says it too) where it counts
    hundreds, thousands, ten-thousands or hundred-millions: 两百, 两千二百,
    两万, 两亿; it stays 二 in the tens and units (十二, 二十二, 一千零二,
    二十万) and for 2 on its own, unless `counted` (2 of something: 两天,
    两港元)."""
    if n < 0:
        return ("負" if traditional else "负") + chinese_number(-n, traditional, counted=counted)
    if n == 0:
        return "零"
    liang = LIANG[traditional]
    if n == 2:
        return liang if counted else _DIGITS[2]
    big = _BIG_UNITS_HANT if traditional else _BIG_UNITS
    groups = []
    while n:
        groups.append(n % 10000)
        n //= 10000
    out = ""
    need_zero = False
    for index in range(len(groups) - 1, -1, -1):
        group = groups[index]
        if group == 0:
            need_zero = bool(out)
            continue
        if out and (need_zero or group < 1000):
            out += "零"
        out += _chinese_below_10000(group, liang, before_big_unit=index > 0) + big[index]
        need_zero = False
    if out.startswith("一十"):
        out = out[1:]  # 十五, not 一十五
    return out


def spoken_number(n: int, lang: Language, *, counted: bool = False) -> str:
    if lang.code == "en":
        return str(n)  # English voices read digits as numbers
    return chinese_number(n, traditional=lang.code == "yue", counted=counted)


def spoken_money(amount_minor: int, currency: str, lang: Language) -> str:
    """100 Hong Kong dollars / 一百港元 / 一百点五港元 (10050 minor units ->
    一百点五港元, 100.50 Hong Kong dollars)."""
    currency = currency.upper()
    precision = get_currency_precision(currency)
    major, minor = divmod(int(amount_minor), 10**precision) if precision else (amount_minor, 0)
    if lang.code == "en":
        name = get_currency_name(currency, count=major if not minor else 2, locale=lang.babel)
        number = f"{major}.{minor:0{precision}d}" if minor else str(major)
        return f"{number} {name}"
    name = get_currency_name(currency, locale=lang.babel)
    traditional = lang.code == "yue"
    # 两港元 for two whole dollars; 二点五港元 when a fraction follows.
    text = chinese_number(major, traditional, counted=not minor)
    if minor:
        fraction = f"{minor:0{precision}d}".rstrip("0")
        text += ("點" if traditional else "点") + "".join(_DIGITS[int(d)] for d in fraction)
    return text + name


def spoken_days(days: int, lang: Language) -> str:
    if lang.code == "en":
        return f"{days} day" if days == 1 else f"{days} days"
    return spoken_number(days, lang, counted=True) + ("日" if lang.code == "yue" else "天")


def spoken_date(value: datetime | date, lang: Language) -> str:
    """The day in the operator's time zone: March 5, 2027 / 2027年3月5日."""
    if isinstance(value, datetime):
        value = value.astimezone(ZoneInfo(settings.TIME_ZONE)).date()
    return format_date(value, format="long", locale=lang.babel)


def spoken_digits(digits: str) -> str:
    """A number read digit by digit: "9 4 0 0 0 0 0 1"."""
    return " ".join(ch for ch in digits if ch.isdigit())
