"""Helpers for the observability tests: reach the test Redis, clean up after."""

from __future__ import annotations

import os

import pytest

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


def forget_prefix(url: str, prefix: str) -> None:
    """Delete this test's keys only: FLUSHDB (the cache's clear()) would wipe
    whatever else shares that Redis database."""
    import redis

    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=500))
    if keys:
        client.delete(*keys)
