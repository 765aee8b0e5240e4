from __future__ import annotations

from collections.abc import Iterator

import pytest

from . import tasks


@pytest.fixture(autouse=True)
def clear_recorded_runs() -> Iterator[None]:
    tasks.RUNS.clear()
    yield
    tasks.RUNS.clear()
