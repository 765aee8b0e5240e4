"""An address no API operation has is answered as the APIs answer everything:
a problem document, never the site's HTML page."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/no-such-thing",
        "/api/v1/orders/not-a-uuid/extra",
        "/agent/v1/topups/a/b",
        "/agent/v1/nothing-here",
    ],
)
def test_an_unknown_api_address_is_a_problem_document(db: Any, path: str) -> None:
    # when
    response = Client().get(path, HTTP_ACCEPT_LANGUAGE="zh-hant")
    # then
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    body = json.loads(response.content)
    assert body["code"] == "not_found"
    assert body["status"] == 404
    assert body["detail"] == "找不到。"


def test_an_unknown_page_is_still_the_sites_page(db: Any) -> None:
    response = Client().get("/no-such-page")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
