"""With the shared cache (Redis) down, pages and the API still answer:
rate limits stop counting instead of failing the request, and leb stops
asking the cache for a while so an outage costs one timeout, not one per
request."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from leb.common import cache as shared_cache
from leb.common import ratelimit

pytestmark = pytest.mark.django_db

# Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
UNREACHABLE_REDIS = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:9/0",
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }
}


@pytest.fixture(autouse=True)
def _frozen_clock(frozen_now: None) -> None:
    """The clock stands still at `now` (leb/conftest.py)."""


@pytest.fixture
def redis_down(settings: Any) -> Iterator[None]:
    shared_cache.resume()
    settings.CACHES = UNREACHABLE_REDIS
    yield
    shared_cache.resume()


def test_the_quick_check_answers_when_redis_is_down(
    redis_down: None, make_line: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    # given a line and a Redis nobody can reach
    line = make_line()
    client = Client(REMOTE_ADDR="203.0.113.9")
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"

    # when a visitor opens the home page and checks the number
    with caplog.at_level(logging.WARNING, logger="leb.common.cache"):
        home = client.get("/")
        checked = client.post("/", {"number": line.msisdn})

    # then both pages answer, and the outage is logged once, not per request
    assert home.status_code == 200
    assert checked.status_code == 200
    assert "30 days left" in checked.content.decode()
    assert len([r for r in caplog.records if "cache unreachable" in r.getMessage()]) == 1


def test_the_api_line_check_answers_when_redis_is_down(
    redis_down: None, make_line: Callable[..., Any]
) -> None:
    line = make_line()
    response = Client(REMOTE_ADDR="203.0.113.9").get("/api/v1/lines/check", {"number": line.msisdn})
    assert response.status_code == 200
    assert response.json()["days_left"] == 30


def test_a_rate_limit_allows_rather_than_fails_without_a_cache(redis_down: None) -> None:
    # given the limit of one attempt
    # when two attempts come in while the cache is down
    first = ratelimit.hit("test", "203.0.113.9", limit=1, window=60)
    second = ratelimit.hit("test", "203.0.113.9", limit=1, window=60)
    # then neither is refused (nothing could be counted)
    assert first and second


def test_the_limit_counts_again_once_the_cache_is_back(settings: Any) -> None:
    # given a working cache (the local one) after an outage pause was lifted
    shared_cache.resume()
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    # when two attempts come in against a limit of one
    assert ratelimit.hit("test-back", "203.0.113.9", limit=1, window=60)
    # then the second is refused
    assert not ratelimit.hit("test-back", "203.0.113.9", limit=1, window=60)
