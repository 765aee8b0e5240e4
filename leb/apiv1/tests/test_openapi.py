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
    # the header by its real name, required, with the rule the server applies
    (key,) = paths["/api/v1/orders"]["post"]["parameters"]
    assert (key["name"], key["in"], key["required"]) == ("Idempotency-Key", "header", True)
    assert key["schema"]["maxLength"] == 150 and key["schema"]["pattern"]


def test_every_problem_is_declared_as_problem_json(anonymous: Client, db: Any) -> None:
    """Each status an operation can answer with is declared, and each
    problem with the media type it is served as."""
    # when
    doc = anonymous.get("/api/v1/openapi.json").json()

    # then
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            where = (method, path)
            responses = operation["responses"]
            for status, response in responses.items():
                if status.startswith(("4", "5")):
                    assert list(response["content"]) == ["application/problem+json"], where
            if "requestBody" in operation:
                assert "400" in responses, where  # a body that is not JSON
            security = operation.get("security", [])
            assert len(security) == len({str(s) for s in security}), where
            if {"SessionAuth": []} in security and method in ("post", "put", "patch", "delete"):
                assert "403" in responses, where  # CSRF
            if {"TokenAuth": []} in security:
                assert "401" in responses, where


def test_swagger_page(anonymous: Client, db: Any) -> None:
    # when
    response = anonymous.get("/api/docs")

    # then
    assert response.status_code == 200
    assert "/api/v1/openapi.json" in response.content.decode()
