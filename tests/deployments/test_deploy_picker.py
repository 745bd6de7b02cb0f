"""The deploy form's version picker lists the newest versions and finds the others by model name."""

from __future__ import annotations

import re

import pytest

from apps.deployments import views as deployment_views
from tests.factories import FittedRunFactory, ModelVersionFactory

pytestmark = pytest.mark.django_db


def options(body: str) -> list[str]:
    return re.findall(r'<option value="\d+">([\w-]+ v\d+) \(', body)


def test_the_picker_lists_the_newest_versions_and_a_search_finds_an_older_one(
        analyst, client_for, engineer, experiment, monkeypatch):
    monkeypatch.setattr(deployment_views, "DEPLOY_CHOICES", 2)
    run = FittedRunFactory(experiment=experiment, created_by=engineer)
    for name in ("oldest-model", "middle-model", "newest-model"):
        ModelVersionFactory(run=run, model_name=name)
    client = client_for(analyst)
    body = client.get("/deployments/").content.decode()
    assert options(body) == ["middle-model v1", "newest-model v1"]
    assert "lists the newest 2 matching versions" in body
    found = client.get("/deployments/?version_search=OLDEST").content.decode()
    assert options(found) == ["oldest-model v1"]
