"""Redis for the tests that need it: a failure in CI, a skip on a laptop."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from leb.observability import views

from .helpers import forget_prefix, require_redis


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


@pytest.fixture(autouse=True)
def _fresh_readiness(settings: Any) -> Iterator[None]:
    settings.METRICS_DB_CACHE_SECONDS = 0
    views._migrations_done.clear()
    yield
    views._migrations_done.clear()
