"""Every API test (leb/api/tests and leb/apiv1/tests) runs with the clock
frozen at `now` and an empty cache. The fixtures live in leb/conftest.py: the
personas (owner, outsider, anonymous), `owner_token`, `frozen_now` and
`empty_cache`; `bearer` and `assert_problem` are in leb.testing."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _api_defaults(frozen_now: None, empty_cache: None) -> None:
    pass
