"""Back-office building blocks shared by the apps' admin modules."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.numbers import format_currency, get_currency_precision, is_currency
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.forms import ModelForm
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


class ActionAdmin(admin.ModelAdmin):
    """A page whose saves go through the owning app's `do_*` actions, which
    check, write and audit in one transaction: subclasses override
    save_model to call them. Related rows (many-to-many) are written by the
    action too, and nothing is deleted from here (plans and promotions are
    retired or ended by admin actions instead)."""

    def save_related(
        self, request: HttpRequest, form: ModelForm, formsets: Any, change: bool
    ) -> None:
        return None

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        raise PermissionDenied

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        raise PermissionDenied


def form_fields(form: ModelForm, allowed: tuple[str, ...], *, changed_only: bool) -> dict[str, Any]:
    """The cleaned values of the form's editable fields (only those staff
    changed, for an edit) to hand to an action."""
    names = form.changed_data if changed_only else list(form.cleaned_data)
    return {name: form.cleaned_data[name] for name in names if name in allowed}


class ActionCheckedForm(ModelForm):
    """A model form that runs the action's own checks on the edited row, so
    what the action would refuse is said on the form beside the field at
    fault. Those checks cover the table's constraints with clearer words, so
    their messages replace the generic "constraint violated" ones."""

    def check(self, instance: Any) -> None:
        raise NotImplementedError

    def _post_clean(self) -> None:
        super()._post_clean()  # type: ignore[misc]
        if any(name != NON_FIELD_ERRORS for name in self.errors):
            return
        try:
            self.check(self.instance)
        except ValidationError as exc:
            self.errors.pop(NON_FIELD_ERRORS, None)
            add_action_errors(self, exc)


def add_action_errors(form: ModelForm, exc: ValidationError) -> None:
    """An action's refusal as form errors, on the field at fault where it names one."""
    if hasattr(exc, "error_dict"):
        for name, errors in exc.error_dict.items():
            form.add_error(name if name in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


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
