from __future__ import annotations

from typing import Any

from django.test import Client


def test_openapi_document_is_3_1_and_lists_the_endpoints(anonymous: Client, db: Any) -> None:
    # when
    response = anonymous.get("/api/v1/openapi.json")

    # then
    assert response.status_code == 200
    doc = response.json()
    assert doc["openapi"].startswith("3.1.")
    assert (doc["info"]["title"], doc["info"]["version"]) == ("leb API", "1")
    paths = doc["paths"]
    assert "get" in paths["/api/v1/lines/check"]
    assert "get" in paths["/api/v1/plans"]
    assert "post" in paths["/api/v1/quotes"]
    assert "post" in paths["/api/v1/orders"]
    assert "get" in paths["/api/v1/orders/{public_id}"]
    assert "get" in paths["/api/v1/me/lines"]
    assert {"TokenAuth", "SessionAuth"} <= set(doc["components"]["securitySchemes"])
    # guests may order; only their own orders need signing in
    assert {} in paths["/api/v1/orders"]["post"]["security"]
    assert {} not in paths["/api/v1/me/lines"]["get"]["security"]
    params = {p["name"] for p in paths["/api/v1/orders"]["post"]["parameters"]}
    assert "Idempotency-Key" in params or "idempotency_key" in params


def test_swagger_page(anonymous: Client, db: Any) -> None:
    # when
    response = anonymous.get("/api/docs")

    # then
    assert response.status_code == 200
    assert "/api/v1/openapi.json" in response.content.decode()
