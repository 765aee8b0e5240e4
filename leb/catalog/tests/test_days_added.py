"""The days a top-up really adds, in plain words, on every text channel."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.utils import translation

from leb.catalog.models import Plan
from leb.catalog.quotes import QuoteError, days_added_sentence, quote

pytestmark = pytest.mark.django_db


def _plan(code: str, days: int, credit: int = 5000) -> Plan:
    return Plan.objects.create(
        code=code,
        name_en=code,
        name_zh_hans=code,
        name_zh_hant=code,
        currency="HKD",
        price=5000,
        credit=credit,
        validity_days=days,
    )


def _line_valid_for(make_line: Any, days: int, now: datetime, **kwargs: Any) -> Any:
    line = make_line(**kwargs)
    line.valid_until = now + timedelta(days=days)
    line.save(update_fields=["valid_until"])
    return line


def test_all_days_added(make_line: Any, now: datetime) -> None:
    frozen = quote(_line_valid_for(make_line, 30, now), _plan("p", 180), "web", now=now)
    assert (frozen.days_added, frozen.adds_fewer_days, frozen.fewer_days_because) == (
        180,
        False,
        "",
    )
    assert days_added_sentence(frozen, date="D", cap_days=365) == (
        "This top-up adds 180 days: your number will be valid until D."
    )
    assert days_added_sentence(frozen, date="D", cap_days=365, done=True) == (
        "This top-up added 180 days: the number is now valid until D."
    )


def test_fewer_days_under_the_cap(make_line: Any, now: datetime) -> None:
    frozen = quote(_line_valid_for(make_line, 353, now), _plan("p", 180), "web", now=now)
    assert (frozen.days_added, frozen.fewer_days_because) == (12, "cap")
    assert days_added_sentence(frozen, date="3 June 2027", cap_days=365) == (
        "This top-up adds 12 days, not 180: your number will be valid until 3 June 2027 "
        "(the most this line allows is 365 days from today)."
    )


def test_one_day_is_singular(make_line: Any, now: datetime) -> None:
    frozen = quote(_line_valid_for(make_line, 364, now), _plan("p", 180), "web", now=now)
    assert frozen.days_added == 1
    assert days_added_sentence(frozen, date="D", cap_days=365).startswith(
        "This top-up adds 1 day, not 180:"
    )


def test_no_days_only_credit(make_line: Any, now: datetime) -> None:
    frozen = quote(_line_valid_for(make_line, 365, now), _plan("p", 90), "web", now=now)
    assert (frozen.days_added, frozen.adds_fewer_days) == (0, True)
    assert days_added_sentence(frozen, date="D", cap_days=365) == (
        "This top-up adds no days, only credit: your number stays valid until D "
        "(the most this line allows is 365 days from today)."
    )


def test_the_reset_rule(make_line: Any, uk_policy: Any, now: datetime) -> None:
    line = _line_valid_for(make_line, 100, now, policy=uk_policy)
    frozen = quote(line, _plan("p", 180), "web", now=now)
    assert (frozen.days_added, frozen.fewer_days_because) == (80, "reset")
    assert days_added_sentence(frozen, date="D", cap_days=None, done=True) == (
        "This top-up added 80 days, not 180: the number is now valid until D "
        "(on this line the days count from today, not from the end of its validity)."
    )


def test_a_credit_only_plan_is_never_refused_or_called_fewer(make_line: Any, now: datetime) -> None:
    frozen = quote(_line_valid_for(make_line, 365, now), _plan("p", 0), "web", now=now)
    assert (frozen.days_added, frozen.adds_fewer_days, frozen.is_credit_only) == (0, False, True)
    assert days_added_sentence(frozen, date="D", cap_days=365) == (
        "This top-up adds credit only: your number stays valid until D."
    )


def test_no_days_and_no_credit_is_refused(make_line: Any, now: datetime) -> None:
    line = _line_valid_for(make_line, 365, now)
    with pytest.raises(QuoteError) as caught:
        quote(line, _plan("p", 180, credit=0), "web", now=now)
    assert caught.value.code == "adds_nothing"


@pytest.mark.parametrize("language", ["zh-hans", "zh-hant"])
def test_the_sentence_is_translated(make_line: Any, now: datetime, language: str) -> None:
    frozen = quote(_line_valid_for(make_line, 353, now), _plan("p", 180), "web", now=now)
    with translation.override(language):
        text = days_added_sentence(frozen, date="2027年6月3日", cap_days=365)
    assert "12" in text and "180" in text and "365" in text and "2027年6月3日" in text
    assert "This top-up" not in text and "\uff08" in text  # a full-width bracket
