"""Redis for the tests that need it: a failure in CI, a skip on a laptop."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from leb.observability import views

REDIS_URL = os.environ.get("LEB_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def redis_reachable(url: str) -> str:
    """'' if Redis answers PING at url, else why not."""
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2).ping()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return ""


def require_redis(url: str = REDIS_URL) -> str:
    problem = redis_reachable(url)
    if problem:
        message = f"Redis is not reachable at {url} ({problem}); set LEB_TEST_REDIS_URL"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + ": CI needs Redis")
        pytest.skip(message)
    return url


@pytest.fixture
def redis_url() -> str:
    return require_redis()


@pytest.fixture
def redis_cache(settings: Any, redis_url: str) -> Iterator[str]:
    """The default cache on the real Redis, under a prefix of its own."""
    from django.core.cache import cache

    prefix = f"leb-test-{uuid.uuid4().hex[:12]}"
    settings.REDIS_URL = redis_url
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": redis_url,
            "KEY_PREFIX": prefix,
        }
    }
    yield prefix
    cache.close()
    forget_prefix(redis_url, prefix)


def forget_prefix(url: str, prefix: str) -> None:
    """Delete this test's keys only: FLUSHDB (the cache's clear()) would wipe
    whatever else shares that Redis database."""
    import redis

    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=500))
    if keys:
        client.delete(*keys)


@pytest.fixture(autouse=True)
def _fresh_readiness(settings: Any) -> Iterator[None]:
    settings.METRICS_DB_CACHE_SECONDS = 0
    views._migrations_done.clear()
    yield
    views._migrations_done.clear()
