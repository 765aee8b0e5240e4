"""What an app needs to offer a dataset for export (docs/exports.md).

An app that owns rows worth exporting writes `exports.py` with a
`register(registry)` function that adds its `Dataset`s; the exports app finds
those modules at startup and does the rest (jobs, files, progress, downloads).
This module sits in the kernel so that any domain app can describe its
datasets without importing the exports app, which sits above them all.

A dataset's filters are named like the admin changelist's address parameters
(`status__exact`, `created_at__gte`, `q`), so the list's current filters are
the export's filters as they stand; a parameter the dataset does not know is
refused rather than dropped, so an export never holds more than the list.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Max, Model, Q, QuerySet
from django.utils.text import smart_split, unescape_string_literal
from django.utils.translation import gettext_lazy as _

# The changelist's own parameters: ordering, page, popup and the like change
# what is shown, not which rows are in the list.
IGNORED_PARAMS = frozenset({"o", "p", "e", "_popup", "_to_field", "_changelist_filters", "all"})


@dataclass(frozen=True)
class Money:
    """An amount in minor units: written as a decimal amount, the currency in
    a column of its own."""

    amount: int
    currency: str


class Kind:
    TEXT = "text"
    INTEGER = "integer"
    MONEY = "money"
    DATETIME = "datetime"
    DATE = "date"
    BOOLEAN = "boolean"


@dataclass(frozen=True)
class Column:
    key: str
    heading: Any  # a lazy translation: the heading is written in the requester's language
    kind: str = Kind.TEXT


@dataclass(frozen=True)
class Filter:
    """One filter: `param` is the changelist's parameter name (and the key in
    the job's stored filters); `lookup` the ORM lookup it applies, or "" when
    the dataset applies it itself (search, a period)."""

    param: str
    field: forms.Field
    lookup: str = ""
    label: Any = ""
    # Asked on the export form (a statement's period) rather than taken from the list.
    asked: bool = False
    # An empty value is the list's choice of a blank field ("currency__exact="
    # lists the rows without a currency), not the filter left out.
    blank: bool = False

    def clean(self, raw: Any) -> Any:
        try:
            return self.field.clean(raw)
        except ValidationError as exc:
            raise ValidationError(
                _("Filter %(name)s: %(error)s"),
                params={"name": self.label or self.param, "error": " ".join(exc.messages)},
            ) from exc


def choice_filter(param: str, choices: Any, lookup: str = "", label: Any = "") -> Filter:
    return Filter(param, forms.ChoiceField(choices=choices), lookup or param, label)


def text_filter(
    param: str, lookup: str = "", label: Any = "", max_length: int = 200, blank: bool = False
) -> Filter:
    return Filter(
        param, forms.CharField(max_length=max_length), lookup or param, label, blank=blank
    )


def boolean_filter(param: str, lookup: str = "", label: Any = "") -> Filter:
    # The changelist writes 1 or 0 (also True/False from a hand-typed address).
    return Filter(
        param,
        forms.TypedChoiceField(
            choices=[(v, v) for v in ("1", "0", "True", "False", "true", "false")],
            coerce=lambda value: value in ("1", "True", "true"),
        ),
        lookup or param,
        label,
    )


def datetime_filter(param: str, lookup: str = "", label: Any = "") -> Filter:
    return Filter(param, forms.DateTimeField(), lookup or param, label)


def integer_filter(param: str, lookup: str = "", label: Any = "") -> Filter:
    return Filter(param, forms.IntegerField(min_value=1, max_value=9999), lookup or param, label)


def date_filters(field_name: str, label: Any = "") -> list[Filter]:
    """What the changelist's date filter (DateFieldListFilter) writes."""
    return [
        datetime_filter(f"{field_name}__gte", label=label),
        datetime_filter(f"{field_name}__lt", label=label),
        boolean_filter(f"{field_name}__isnull", label=label),
    ]


def date_hierarchy_filters(field_name: str, label: Any = "") -> list[Filter]:
    """What the changelist's date hierarchy writes (in the operator's time zone)."""
    return [
        integer_filter(f"{field_name}__{part}", label=label) for part in ("year", "month", "day")
    ]


def search_lookup(field: str) -> str:
    """The admin's lookup for a search field: "=name" matches the whole value,
    "^name" its start, a plain name any part of it (case ignored)."""
    if field.startswith("="):
        return f"{field[1:]}__iexact"
    if field.startswith("^"):
        return f"{field[1:]}__istartswith"
    return f"{field}__icontains"


def search_q(fields: Sequence[str], text: str) -> Q:
    """The admin's search: every word must match one of the fields."""
    query = Q()
    for bit in smart_split(text):
        if bit.startswith(('"', "'")) and bit[0] == bit[-1]:
            bit = unescape_string_literal(bit)
        any_field = Q()
        for name in fields:
            any_field |= Q(**{search_lookup(name): bit})
        query &= any_field
    return query


class Dataset:
    """One kind of export. Subclasses set the attributes and `queryset` and
    `row` (or, for rows that are not one model row each, `prepare`)."""

    name: str = ""
    label: Any = ""
    # The Django permission a member of staff needs ("app_label.codename").
    permission: str = ""
    # The admin changelist whose filters it takes ("app_label.model_name"), if any.
    changelist: str = ""
    columns: Sequence[Column] = ()
    filters: Sequence[Filter] = ()
    # The changelist's search fields: `q` searches them as the list does.
    search_fields: Sequence[str] = ()

    def filter_for(self, param: str) -> Filter | None:
        for candidate in self.filters:
            if candidate.param == param:
                return candidate
        if param == "q" and self.search_fields:
            return text_filter("q", label=_("search"))
        return None

    def blank_allowed(self, param: str) -> bool:
        """Whether an empty value of `param` filters (a blank field) rather
        than being left out."""
        spec = self.filter_for(param)
        return spec is not None and spec.blank

    def kept(self, param: str, value: Any) -> bool:
        """Whether a parameter of the list is one of the export's filters as
        it stands: not the list's ordering or page, and not left empty
        (unless empty means a blank field)."""
        if param in IGNORED_PARAMS or value is None:
            return False
        return value != "" or self.blank_allowed(param)

    def clean_filters(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """The stored filters, checked: every parameter known and valid
        (ValidationError listing what is wrong otherwise). Empty values are
        dropped, as the changelist drops them, except where empty means a
        blank field."""
        cleaned: dict[str, Any] = {}
        errors: list[ValidationError] = []
        for param, value in raw.items():
            if not self.kept(param, value):
                continue
            if value == "":
                cleaned[param] = ""
                continue
            spec = self.filter_for(param)
            if spec is None:
                errors.append(
                    ValidationError(
                        _("The filter %(name)s cannot be exported: remove it from the list first."),
                        params={"name": param},
                    )
                )
                continue
            try:
                cleaned[param] = spec.clean(value)
            except ValidationError as exc:
                errors.append(exc)
        if errors:
            raise ValidationError(errors)
        return self.clean_together(cleaned)

    def clean_together(self, cleaned: dict[str, Any]) -> dict[str, Any]:
        """Checks across filters (a period's two ends); ValidationError if wrong."""
        return cleaned

    def queryset(self, cleaned: dict[str, Any]) -> QuerySet[Any]:
        raise NotImplementedError

    def row(self, obj: Any) -> Sequence[Any]:
        raise NotImplementedError

    def filtered(self, cleaned: dict[str, Any]) -> QuerySet[Any]:
        """`queryset` with every filter that has a lookup, and the search."""
        query = self.queryset(cleaned)
        for param, value in cleaned.items():
            spec = self.filter_for(param)
            if spec is not None and spec.lookup and param != "q":
                query = query.filter(**{spec.lookup: value})
        if cleaned.get("q") and self.search_fields:
            query = query.filter(search_q(self.search_fields, cleaned["q"])).distinct()
        return query

    def prepare(self, cleaned: dict[str, Any], chunk_size: int) -> Prepared:
        """The row count and the rows, read `chunk_size` at a time in key
        order. Rows added after this call are not in the export: the highest
        key is fixed now, so the count and the rows agree."""
        query = self.filtered(cleaned)
        upper = query.aggregate(top=Max("pk"))["top"]
        if upper is None:
            return Prepared(0, iter(()))
        bounded = query.filter(pk__lte=upper)
        return Prepared(bounded.count(), self._pages(bounded, chunk_size))

    def _pages(self, query: QuerySet[Any], chunk_size: int) -> Iterator[Sequence[Any]]:
        last: Any = None
        while True:
            page = query.order_by("pk")
            if last is not None:
                page = page.filter(pk__gt=last)
            batch: list[Model] = list(page[:chunk_size])
            if not batch:
                return
            for obj in batch:
                yield self.row(obj)
            last = batch[-1].pk


@dataclass
class Prepared:
    total: int
    rows: Iterator[Sequence[Any]] = field(default_factory=lambda: iter(()))


class Registry(Protocol):
    def add(self, dataset: Dataset) -> None: ...


def local_day_start(day: date) -> datetime:
    """Midnight of a day in the operator's time zone, aware."""
    from datetime import time

    from django.utils import timezone

    return timezone.make_aware(datetime.combine(day, time.min))
