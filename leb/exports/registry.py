"""The datasets that can be exported, gathered from every installed app's
`exports.py` (its `register(registry)` function) when Django starts."""

from __future__ import annotations

from importlib import import_module
from importlib.util import find_spec

from django.apps import apps
from django.core.exceptions import ImproperlyConfigured

from leb.common.exporting import Dataset


class DatasetRegistry:
    def __init__(self) -> None:
        self._datasets: dict[str, Dataset] = {}

    def add(self, dataset: Dataset) -> None:
        if not dataset.name or not dataset.permission:
            raise ImproperlyConfigured(f"{dataset!r}: a dataset needs a name and a permission.")
        known = self._datasets.get(dataset.name)
        if known is not None and type(known) is not type(dataset):
            raise ImproperlyConfigured(f"Two datasets are named {dataset.name!r}.")
        self._datasets[dataset.name] = dataset

    def get(self, name: str) -> Dataset | None:
        return self._datasets.get(name)

    def all(self) -> list[Dataset]:
        return sorted(self._datasets.values(), key=lambda dataset: dataset.name)

    def for_changelist(self, label: str) -> list[Dataset]:
        return [dataset for dataset in self.all() if dataset.changelist == label]


registry = DatasetRegistry()


def discover() -> None:
    """Import `<app>.exports` of every installed app that has one and call
    its `register(registry)`."""
    for config in apps.get_app_configs():
        module_name = f"{config.name}.exports"
        if config.name == "leb.exports" or find_spec(module_name) is None:
            continue
        module = import_module(module_name)
        register = getattr(module, "register", None)
        if callable(register):
            register(registry)
