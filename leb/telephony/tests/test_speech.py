"""Spoken forms: what the voices read."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from leb.telephony import speech


@pytest.mark.parametrize(
    ("number", "simplified", "traditional"),
    [
        (0, "零", "零"),
        (7, "七", "七"),
        (10, "十", "十"),
        (15, "十五", "十五"),
        (20, "二十", "二十"),
        (105, "一百零五", "一百零五"),
        (110, "一百一十", "一百一十"),
        (180, "一百八十", "一百八十"),
        (365, "三百六十五", "三百六十五"),
        (1005, "一千零五", "一千零五"),
        (10000, "一万", "一萬"),
        (10050, "一万零五十", "一萬零五十"),
        (120000, "十二万", "十二萬"),
        (1000010, "一百万零一十", "一百萬零一十"),
        (100000000, "一亿", "一億"),
    ],
)
def test_chinese_numbers(number: int, simplified: str, traditional: str) -> None:
    assert speech.chinese_number(number) == simplified
    assert speech.chinese_number(number, traditional=True) == traditional


@pytest.mark.parametrize(
    ("language", "amount", "currency", "spoken"),
    [
        ("cmn", 10000, "HKD", "一百港元"),
        ("yue", 10000, "HKD", "一百港元"),
        ("en", 10000, "HKD", "100 Hong Kong dollars"),
        ("en", 100, "HKD", "1 Hong Kong dollar"),
        ("cmn", 10050, "HKD", "一百点五港元"),
        ("yue", 10050, "HKD", "一百點五港元"),
        ("en", 10050, "HKD", "100.50 Hong Kong dollars"),
        ("cmn", 1000, "GBP", "十英镑"),
        ("yue", 1000, "GBP", "十英鎊"),
        ("en", 1000, "GBP", "10 British pounds"),
        ("cmn", 0, "HKD", "零港元"),
        ("en", 500, "JPY", "500 Japanese yen"),
    ],
)
def test_money_in_words(language: str, amount: int, currency: str, spoken: str) -> None:
    assert speech.spoken_money(amount, currency, speech.language(language)) == spoken


def test_no_currency_symbols_are_spoken() -> None:
    for code in ("cmn", "yue", "en"):
        assert "$" not in speech.spoken_money(12345, "HKD", speech.language(code))


@pytest.mark.parametrize(
    ("language", "spoken"),
    [("cmn", "2027年3月5日"), ("yue", "2027年3月5日"), ("en", "March 5, 2027")],
)
def test_dates(language: str, spoken: str) -> None:
    lang = speech.language(language)
    assert speech.spoken_date(date(2027, 3, 5), lang) == spoken
    # a UTC moment is read as the operator's (Hong Kong) day
    assert speech.spoken_date(datetime(2027, 3, 4, 20, 0, tzinfo=UTC), lang) == spoken


def test_days() -> None:
    assert speech.spoken_days(180, speech.language("cmn")) == "一百八十天"
    assert speech.spoken_days(180, speech.language("yue")) == "一百八十日"
    assert speech.spoken_days(1, speech.language("en")) == "1 day"
    assert speech.spoken_days(30, speech.language("en")) == "30 days"


def test_british_english_voice_reads_british_dates(settings: Any) -> None:
    settings.IVR_VOICES = {"en": ["Polly.Amy", "en-GB"]}
    lang = speech.language("en")
    assert (lang.voice, lang.say_language) == ("Polly.Amy", "en-GB")
    assert speech.spoken_date(date(2027, 3, 5), lang) == "5 March 2027"


def test_bad_voice_setting_keeps_the_defaults(settings: Any) -> None:
    settings.IVR_VOICES = "{not json"
    assert speech.language("yue").voice == "Google.yue-HK-Standard-A"
    settings.IVR_VOICES = '["a list"]'
    assert speech.language("cmn").say_language == "cmn-CN"


def test_digits() -> None:
    assert speech.spoken_digits("9400-0001") == "9 4 0 0 0 0 0 1"


# Two: 两 (兩 in Traditional and Cantonese) where it counts hundreds,
# thousands, ten-thousands and hundred-millions; 二 in the tens and units and
# for 2 read on its own.
@pytest.mark.parametrize(
    ("number", "mandarin", "cantonese"),
    [
        (0, "零", "零"),
        (2, "二", "二"),
        (12, "十二", "十二"),
        (20, "二十", "二十"),
        (22, "二十二", "二十二"),
        (102, "一百零二", "一百零二"),
        (200, "两百", "兩百"),
        (202, "两百零二", "兩百零二"),
        (220, "两百二十", "兩百二十"),
        (1002, "一千零二", "一千零二"),
        (1200, "一千两百", "一千兩百"),
        (2000, "两千", "兩千"),
        (2002, "两千零二", "兩千零二"),
        (2222, "两千两百二十二", "兩千兩百二十二"),
        (10002, "一万零二", "一萬零二"),
        (12000, "一万两千", "一萬兩千"),
        (20000, "两万", "兩萬"),
        (20002, "两万零二", "兩萬零二"),
        (22000, "两万两千", "兩萬兩千"),
        (120000, "十二万", "十二萬"),
        (200000, "二十万", "二十萬"),
        (220000, "二十二万", "二十二萬"),
        (2000000, "两百万", "兩百萬"),
        (20000000, "两千万", "兩千萬"),
        (200000000, "两亿", "兩億"),
        (2000000000, "二十亿", "二十億"),
        (-2000, "负两千", "負兩千"),
    ],
)
def test_two_in_chinese_numbers(number: int, mandarin: str, cantonese: str) -> None:
    assert speech.chinese_number(number) == mandarin
    assert speech.chinese_number(number, traditional=True) == cantonese
    assert speech.spoken_number(number, speech.language("cmn")) == mandarin
    assert speech.spoken_number(number, speech.language("yue")) == cantonese


def test_two_of_something_is_liang() -> None:
    # a count before a measure word: 两天 / 兩日, 两港元; 二 stays in 十二天
    cmn, yue, en = (speech.language(code) for code in ("cmn", "yue", "en"))
    assert speech.spoken_days(2, cmn) == "两天"
    assert speech.spoken_days(2, yue) == "兩日"
    assert speech.spoken_days(2, en) == "2 days"
    assert speech.spoken_days(12, cmn) == "十二天"
    assert speech.spoken_days(22, yue) == "二十二日"
    assert speech.spoken_days(200, cmn) == "两百天"
    assert speech.spoken_money(200, "HKD", cmn) == "两港元"
    assert speech.spoken_money(250, "HKD", cmn) == "二点五港元"
    assert speech.spoken_money(200000, "HKD", cmn) == "两千港元"
    assert speech.spoken_money(2200, "HKD", yue) == "二十二港元"
    assert speech.chinese_number(2, counted=True) == "两"
    assert speech.chinese_number(2, traditional=True, counted=True) == "兩"
