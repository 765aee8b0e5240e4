"""Personas for the API: the owner of lines, an outsider (another user) and
an anonymous guest; the clock is frozen at `now` and the cache is empty."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from django.core.cache import cache

from leb.common import clock


@pytest.fixture(autouse=True)
def _frozen_clock(now: datetime) -> Iterator[None]:
    with clock.frozen(now):
        yield


@pytest.fixture(autouse=True)
def _empty_cache() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def owner_token(owner: Any) -> str:
    from leb.api.actions import do_create_personal_token

    _token, clear = do_create_personal_token(owner, "laptop")
    return clear


def bearer(token: str) -> dict[str, Any]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    """The response is an RFC 9457 problem document of this status and code."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == "https://leb.example/problems/" + code.replace("_", "-")
    assert body["title"] and body["detail"]
    return body
