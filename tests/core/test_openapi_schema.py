"""The OpenAPI document describes every answer of every /api/v1/ operation, so clients (and the fuzz
pass in tests/test_openapi_fuzz.py) can check bodies, not only status codes."""

from __future__ import annotations


def _described(schema: dict) -> bool:
    if "$ref" in schema or schema.get("properties"):
        return True
    return schema.get("type") == "array" and _described(schema.get("items", {}))


def test_every_status_of_every_operation_has_a_described_json_body(viewer, client_for):
    document = client_for(viewer).get("/api/schema/?format=json").json()

    undescribed = [
        f"{method.upper()} {path} {status}"
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        for status, response in operation["responses"].items()
        if not _described(response.get("content", {}).get("application/json", {}).get("schema", {}))
    ]
    assert undescribed == []


def test_every_operation_documents_the_refusals_any_caller_can_meet(viewer, client_for):
    document = client_for(viewer).get("/api/schema/?format=json").json()

    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert {"401", "403"} <= set(operation["responses"]), f"{method.upper()} {path}"
            if "{" in path:
                assert "404" in operation["responses"], f"{method.upper()} {path}"
