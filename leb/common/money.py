"""Amounts people type, as integer minor units."""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal, InvalidOperation

from babel.numbers import get_currency_precision
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

_NUMBER = re.compile(r"-?(\d+(\.\d*)?|\.\d+)")


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
