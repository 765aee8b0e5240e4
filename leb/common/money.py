"""Amounts in integer minor units: as people type them, and the sets of
records that add up to one."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal, InvalidOperation
from itertools import combinations
from typing import TypeVar

from babel.numbers import get_currency_precision
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

_NUMBER = re.compile(r"-?(\d+(\.\d*)?|\.\d+)")
T = TypeVar("T")


def parse_amount(raw: str, currency: str) -> int:
    """What the subscriber typed, in major units, as minor units of `currency`."""
    # Chinese input methods may type full-width digits and points.
    text = unicodedata.normalize("NFKC", raw or "").strip().replace(",", "").replace(" ", "")
    if not _NUMBER.fullmatch(text):
        raise ValidationError(
            _("Enter the amount as a number, e.g. 50 or 50.50."), code="amount_format"
        )
    try:
        value = Decimal(text)
    except InvalidOperation as exc:  # pragma: no cover - the pattern already refuses these
        raise ValidationError(
            _("Enter the amount as a number, e.g. 50 or 50.50."), code="amount_format"
        ) from exc
    if value <= 0:
        raise ValidationError(_("Enter an amount greater than zero."), code="amount_not_positive")
    digits = get_currency_precision(currency)
    exponent = value.normalize().as_tuple().exponent
    decimals = max(0, -exponent) if isinstance(exponent, int) else 0
    if decimals > digits:
        if digits == 0:
            message = str(_("Enter a whole amount, without decimals."))
        else:
            message = ngettext(
                "Enter at most %(count)d decimal place.",
                "Enter at most %(count)d decimal places.",
                digits,
            ) % {"count": digits}
        raise ValidationError(message, code="amount_decimals")
    return int(value.scaleb(digits))


def sets_making(
    amount: int, items: Sequence[T], value: Callable[[T], int]
) -> Iterator[tuple[T, ...]]:
    """Each set of `items` (the empty one first, then the smaller before the
    larger) whose values add up to `amount`. There are 2^n sets of n items:
    callers bound n."""
    for size in range(len(items) + 1):
        for subset in combinations(items, size):
            if sum(value(item) for item in subset) == amount:
                yield subset
