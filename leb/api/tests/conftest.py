"""Every API test (leb/api/tests and leb/apiv1/tests) runs with the clock
frozen at `now` and, as every test, an empty cache. The fixtures live in
leb/conftest.py: the personas (owner, outsider, anonymous), `owner_token` and
`frozen_now`; `bearer` and `assert_problem` are in leb.testing."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _api_defaults(frozen_now: None) -> None:
    pass
