"""With LEB_REDIS_URL, rate limits are shared by every process (and machine)."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from django.core.cache.backends.redis import RedisCache

from leb.common import ratelimit

# A day-long window: the two processes below count in the same bucket.
WINDOW = 86400


def run_leb_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LEB_")}
    return subprocess.run(  # noqa: S603
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        env={**clean, "DJANGO_SETTINGS_MODULE": "leb.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_redis_url_makes_redis_the_default_cache(redis_url: str) -> None:
    # when
    shown = run_leb_python(
        "from django.conf import settings; print(settings.CACHES['default']['BACKEND'])",
        LEB_REDIS_URL=redis_url,
    )
    default = run_leb_python(
        "from django.conf import settings; print(settings.CACHES['default']['BACKEND'])"
    )

    # then
    assert shown.stdout.strip() == "django.core.cache.backends.redis.RedisCache", shown.stderr
    assert default.stdout.strip() == "django.core.cache.backends.filebased.FileBasedCache"


def test_a_bad_log_format_refuses_to_start() -> None:
    # when
    result = run_leb_python("pass", LEB_LOG_FORMAT="xml")

    # then
    assert result.returncode != 0
    assert "LEB_LOG_FORMAT must be json or text" in result.stderr


def test_a_rate_limit_is_counted_across_processes(redis_cache: str, redis_url: str) -> None:
    # given: another process, with its own connection, spends 3 of 5 attempts
    other = run_leb_python(
        "from leb.common import ratelimit; "
        f"print([ratelimit.hit('quick-check', '198.51.100.7', 5, {WINDOW}) for _ in range(3)])",
        LEB_REDIS_URL=redis_url,
        LEB_CACHE_KEY_PREFIX=redis_cache,
    )
    assert other.stdout.strip() == "[True, True, True]", other.stderr

    # when: this process tries three more times
    results = [ratelimit.hit("quick-check", "198.51.100.7", 5, WINDOW) for _ in range(3)]

    # then: the sixth attempt overall is refused; another address is not affected
    assert results == [True, True, False]
    assert ratelimit.hit("quick-check", "198.51.100.8", 5, WINDOW)


def test_two_connections_see_the_same_counter(redis_cache: str, redis_url: str) -> None:
    # given: two caches with separate connection pools, as on two machines
    first = RedisCache(redis_url, {"KEY_PREFIX": redis_cache})
    second = RedisCache(redis_url, {"KEY_PREFIX": redis_cache})

    # when
    first.add("lock:line:1", 0, 60)
    first.incr("lock:line:1")
    second.incr("lock:line:1")

    # then
    assert first.get("lock:line:1") == 2
    assert second.get("lock:line:1") == 2


def test_a_rate_limited_page_answers_429_with_redis(
    client: Any, db: Any, redis_cache: str, settings: Any
) -> None:
    # given
    settings.PORTAL_QUICK_CHECK_RATE = "2/600"

    # when
    codes = [
        client.post("/", {"number": "+85294000000"}, REMOTE_ADDR="198.51.100.9").status_code
        for _ in range(3)
    ]

    # then
    assert codes[:2] != [429, 429]
    assert codes[2] == 429


def test_a_missing_metrics_folder_is_created_at_start(tmp_path: Any) -> None:
    # given
    folder = tmp_path / "not-yet" / "metrics"

    # when: a process counts a request and renders the metrics
    result = run_leb_python(
        "from leb.observability import metrics; "
        "metrics.observe_request('portal:home', 'GET', 200, 0.01); "
        "print(b'leb_http_requests_total' in metrics.render())",
        PROMETHEUS_MULTIPROC_DIR=str(folder),
        LEB_VAR_DIR=str(tmp_path / "var"),
    )

    # then
    assert result.stdout.strip() == "True", result.stderr
    assert any(folder.glob("counter_*.db"))
