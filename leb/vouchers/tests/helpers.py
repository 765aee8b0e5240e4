"""Helpers for the voucher tests."""

from __future__ import annotations

import csv
from pathlib import Path


def read_export(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))
