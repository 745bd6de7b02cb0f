"""The registry at a thousand versions: its list, a model's page and the queue are read a page at a time."""

from __future__ import annotations

import json
import re
from html import unescape

import pytest

from apps.registry import views as registry_views
from apps.registry.models import ModelVersion, PromotionStatus, RegisteredModel, Stage
from tests.factories import FittedRunFactory, ModelVersionFactory, PromotionRequestFactory

pytestmark = pytest.mark.django_db


def fresh_run(run):
    """Another fitted run of the same experiment: a run is registered once per model."""
    return FittedRunFactory(experiment=run.experiment, created_by=run.created_by, algorithm=run.algorithm)


def versions_shown(body: str) -> list[int]:
    return [int(n) for n in re.findall(r'<td><a href="/models/versions/\d+/">v(\d+)</a></td>', body)]


def test_the_registry_list_pages_its_models_by_name_with_their_version_counts(
        viewer, client_for, good_run, analyst, monkeypatch):
    monkeypatch.setattr(registry_views, "MODELS_PER_PAGE", 2)
    for name, versions in (("beta", 2), ("alpha", 1), ("gamma", 3)):
        for _ in range(versions):
            ModelVersionFactory(run=fresh_run(good_run), model_name=name)
    client = client_for(viewer)
    first = client.get("/models/").content.decode()
    second = client.get("/models/?page=2").content.decode()
    names = re.compile(r'<tr><td><a href="/models/\d+/">(\w+)</a></td>')
    assert names.findall(first) == ["alpha", "beta"] and names.findall(second) == ["gamma"]
    assert re.findall(r'<td class="num">(\d+)</td>', first) == ["1", "2"]
    assert "Page 1 of 2" in first and "Next →" in first


def test_a_model_page_pages_its_versions_and_charts_only_the_newest(
        viewer, client_for, good_run, monkeypatch):
    monkeypatch.setattr(registry_views, "VERSIONS_PER_PAGE", 2)
    monkeypatch.setattr(registry_views, "CHART_VERSIONS", 2)
    made = [ModelVersionFactory(run=fresh_run(good_run), model_name="paged") for _ in range(3)]
    ModelVersion.objects.filter(pk=made[0].pk).update(metrics={"accuracy": 0.5})
    client = client_for(viewer)
    url = made[0].model.get_absolute_url()
    first = client.get(url).content.decode()
    assert versions_shown(first) == [3, 2]
    assert versions_shown(client.get(f"{url}?page=2").content.decode()) == [1]
    figure = json.loads(unescape(re.search(
        r'<script type="application/json" id="metric-versions-data">(.*?)</script>', first, re.S).group(1)))
    assert figure["data"][0]["x"] == ["v2", "v3"]
    assert "the newest 2" in figure["layout"]["title"]["text"]


def test_the_promotion_queue_pages_by_key_and_keeps_its_status(
        viewer, client_for, good_run, analyst, monkeypatch):
    monkeypatch.setattr(registry_views, "PROMOTIONS_PER_PAGE", 2)
    rejected = [PromotionRequestFactory(model_version=ModelVersionFactory(run=good_run), evaluate=False,
                                        status=PromotionStatus.REJECTED, decided_by=analyst).pk for _ in range(3)]
    PromotionRequestFactory(model_version=ModelVersionFactory(run=good_run), evaluate=False)
    client = client_for(viewer)
    first = client.get("/models/promotions/?status=rejected").content.decode()
    shown = [int(n) for n in re.findall(r'<td><a href="/models/promotions/(\d+)/">', first)]
    older = unescape(re.search(r'<a href="([^"]+)" rel="next">', first).group(1))
    assert "status=rejected" in older
    rest = client.get(f"/models/promotions/{older}").content.decode()
    shown += [int(n) for n in re.findall(r'<td><a href="/models/promotions/(\d+)/">', rest)]
    assert shown == rejected[::-1]


def test_the_model_api_lists_only_live_versions_and_links_the_rest(viewer, client_for, good_run, analyst):
    version = ModelVersionFactory(run=good_run, model_name="live", stage=Stage.STAGING, approver=analyst)
    ModelVersionFactory(run=fresh_run(good_run), model_name="live")
    body = client_for(viewer).get("/api/v1/models/").json()
    model = next(m for m in body if m["name"] == "live")
    assert model["versions"] == [{"id": version.pk, "version": 1, "stage": "staging"}]
    listed = client_for(viewer).get(model["versions_url"].removeprefix("http://testserver")).json()
    assert [v["version"] for v in listed] == [2, 1]
    assert RegisteredModel.objects.get(name="live").versions.count() == 2
