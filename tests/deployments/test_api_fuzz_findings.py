"""What the OpenAPI fuzz pass (tests/test_openapi_fuzz.py) found in the deployments API, kept as plain tests."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from apps.accounts.services import api_token_create
from apps.deployments.services import deployment_create


@pytest.fixture
def deployed(analyst, prod_version, environments):
    return deployment_create(user=analyst, version=prod_version, environment=environments["production"])


def test_a_status_filter_with_a_nul_character_is_a_400_naming_the_parameter(viewer, client_for, deployed):
    # the filter went to PostgreSQL as it was, which refuses NUL in text: a 500
    response = client_for(viewer).get("/api/v1/deployments/?status=active%00")

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"status": "Null characters are not allowed."}


def test_the_status_filter_still_filters(viewer, client_for, deployed):
    response = client_for(viewer).get("/api/v1/deployments/?status=active")

    assert [d["id"] for d in response.json()] == [deployed.pk]


@pytest.mark.parametrize("path", ["/api/v1/predict/served%00/production/", "/api/v1/predict/served/prod%00/"])
def test_a_model_or_environment_name_with_a_nul_character_is_a_400(viewer, deployed, path):
    # the token's one query looks the deployment up by these names, and PostgreSQL refused the NUL: a 500
    _, key = api_token_create(user=viewer, name="fuzz")
    body = json.dumps({"instances": [{"x1": 0.3, "x2": 4.5, "color": "red"}]})

    response = Client(HTTP_AUTHORIZATION=f"Token {key}").post(path, body, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"path": "Null characters are not allowed."}
