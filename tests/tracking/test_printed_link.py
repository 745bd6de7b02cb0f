"""The link the MLflow client prints after a run ("View run at <URI>/#/experiments/…") leads a person to our pages."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_a_browser_on_the_bare_prefix_is_sent_to_our_experiments(client):
    response = client.get("/mlflow/", HTTP_ACCEPT="text/html,application/xhtml+xml")
    assert response.status_code == 302 and response.url == "/experiments/"


@pytest.mark.parametrize("path, accept", [("/mlflow/", "application/json"), ("/mlflow/", "*/*"),
                                          ("/mlflow/ajax-api/2.0/mlflow/runs/get", "text/html")])
def test_anything_else_stays_mlflows_json_404(client, path, accept):
    response = client.get(path, HTTP_ACCEPT=accept)
    assert response.status_code == 404 and response.json()["error_code"] == "ENDPOINT_NOT_FOUND"
