"""Back-office building blocks shared by the apps' admin modules."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.numbers import format_currency, get_currency_precision, is_currency
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils import formats, timezone, translation
from django.utils.translation import gettext_lazy as _


class ReadOnlyMixin:
    """Rows that only actions write (ledger, history, orders): staff may look,
    never add, edit or delete. Works for model admins and inlines alike."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class FilterErrorsMixin:
    """A filter in a list's address that cannot be applied (a mistyped date, a
    field that does not exist) is said on the page: Django's admin otherwise
    drops it silently and shows the whole list."""

    def get_changelist_instance(self, request: HttpRequest) -> Any:
        try:
            return super().get_changelist_instance(request)  # type: ignore[misc]
        except IncorrectLookupParameters as exc:
            cause = exc.args[0] if exc.args and isinstance(exc.args[0], Exception) else exc
            messages.error(
                request,
                _("This filter cannot be applied, so the whole list is shown: %(error)s")
                % {"error": error_text(cause)},
            )
            raise


class ReadOnlyAdmin(ReadOnlyMixin, FilterErrorsMixin, admin.ModelAdmin):
    pass


def _babel_locale() -> Locale:
    try:
        return Locale.parse(translation.to_locale(translation.get_language() or "en"))
    except (UnknownLocaleError, ValueError):
        return Locale.parse("en")


def format_money(amount: int | None, currency: str) -> str:
    """Minor units as "HKD 50.00": the ISO code avoids "$" meaning three currencies."""
    if amount is None or not currency:
        return "-"
    if not is_currency(currency):
        return f"{currency} {amount}"
    value = Decimal(amount).scaleb(-get_currency_precision(currency))
    return format_currency(
        value, currency, format="¤¤\u00a0#,##0.00", locale=_babel_locale(), currency_digits=True
    )


def format_when(at: datetime | None) -> str:
    if at is None:
        return "-"
    return formats.date_format(timezone.localtime(at), "DATETIME_FORMAT")


def staff_actor(request: HttpRequest) -> str:
    return f"staff:{request.user.get_username()}"


def error_text(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return " ".join(str(message) for message in exc.messages)
    return str(exc)


def validate_currency(value: str) -> str:
    value = (value or "").strip().upper()
    if not is_currency(value):
        raise ValidationError(
            _("%(value)s is not an ISO 4217 currency code."), params={"value": value}
        )
    return value
