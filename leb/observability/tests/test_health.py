from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import Client


def test_healthz_answers_without_touching_the_database(client: Client) -> None:
    # given: no django_db mark, so any query would raise
    # when
    response = client.get("/healthz")

    # then
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_is_ok_on_a_migrated_database_with_a_working_cache(client: Client) -> None:
    # when
    response = client.get("/readyz")

    # then
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "migrations": "ok", "cache": "ok"},
    }


@pytest.mark.django_db
def test_readyz_names_unapplied_migrations(client: Client) -> None:
    # given: the schema is one migration behind the code
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM django_migrations WHERE app = 'jobs' AND name = '0001_initial'")

    # when
    response = client.get("/readyz")

    # then
    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["migrations"]
    assert body["checks"]["migrations"] == "1 unapplied"
    assert body["checks"]["database"] == "ok"


@pytest.mark.django_db
def test_readyz_names_redis_when_it_is_down(client: Client, settings: Any) -> None:
    # given: nothing listens on port 1
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": settings.REDIS_URL,
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }

    # when
    response = client.get("/readyz")

    # then
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["failed"] == ["redis"]
    assert body["checks"]["redis"].startswith("error: ")
    assert body["checks"]["database"] == "ok"


@pytest.mark.django_db
def test_readyz_checks_redis_when_configured(client: Client, redis_cache: str) -> None:
    # when
    response = client.get("/readyz")

    # then
    assert response.status_code == 200
    assert response.json()["checks"]["redis"] == "ok"


@pytest.mark.django_db
def test_probes_answer_under_any_host_name(client: Client) -> None:
    # given: a load balancer probing by address, not by the site's name
    # when
    health = client.get("/healthz", HTTP_HOST="10.1.2.3:8000")
    ready = client.get("/readyz", HTTP_HOST="10.1.2.3:8000")
    page = client.get("/help/", HTTP_HOST="10.1.2.3:8000")

    # then
    assert health.status_code == 200
    assert ready.status_code == 200
    assert page.status_code == 400  # the site itself still checks the host


@pytest.mark.django_db
def test_probes_refuse_other_methods_without_error(client: Client) -> None:
    # when
    response = client.post("/healthz", {"x": "1"})

    # then: handled by the URL pattern, which is GET-only in spirit; never a 500
    assert response.status_code < 500
