from __future__ import annotations

import logging
from typing import Any

import pytest
from django.http import Http404
from django.test import Client, override_settings

from leb.testing import assert_problem


def test_unexpected_errors_are_500_problems_without_internals(
    anonymous: Client, db: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # given
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("database password is hunter2")

    monkeypatch.setattr("leb.apiv1.api.public_line_status", broken)

    # when
    with caplog.at_level(logging.ERROR, logger="leb.common.problems"):
        response = anonymous.get("/api/v1/lines/check", {"number": "+85294000001"})

    # then
    assert_problem(response, 500, "server_error")
    assert "hunter2" not in response.content.decode()
    assert "RuntimeError" not in response.content.decode()
    assert "hunter2" in caplog.text


def test_http404_from_below_is_a_problem(
    anonymous: Client, db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given
    def missing(*args: Any, **kwargs: Any) -> Any:
        raise Http404("internal lookup detail")

    monkeypatch.setattr("leb.apiv1.api.public_line_status", missing)

    # when
    response = anonymous.get("/api/v1/lines/check", {"number": "+85294000001"})

    # then
    body = assert_problem(response, 404, "not_found")
    assert "internal" not in body["detail"]


def test_problem_type_base_is_configurable(anonymous: Client, db: Any) -> None:
    # when
    with override_settings(API_PROBLEM_BASE_URL="https://errors.example.net/leb"):
        response = anonymous.get("/api/v1/lines/check", {"number": "+85294000001"})

    # then
    assert response.json()["type"] == "https://errors.example.net/leb/line-not-found"


def test_method_not_allowed(anonymous: Client, db: Any) -> None:
    # when
    response = anonymous.delete("/api/v1/plans")

    # then
    assert response.status_code == 405


def test_problems_vary_by_language(anonymous: Client, db: Any) -> None:
    # when
    response = anonymous.get("/api/v1/lines/check", {"number": ""})

    # then
    assert "Accept-Language" in response["Vary"]
    assert_problem(response, 422, "msisdn_empty")
