"""A dataset of thousands of versions shows them a page at a time, newest first, read by key."""

from __future__ import annotations

import re
from html import unescape

import pytest

from apps.datasets import views as dataset_views
from tests.factories import DatasetVersionFactory

pytestmark = pytest.mark.django_db


def numbers(body: str) -> list[int]:
    return [int(n) for n in re.findall(r"<strong>v(\d+)</strong>", body)]


def test_a_datasets_versions_are_paged_newest_first_and_walk_back(viewer, client_for, engineer, monkeypatch):
    monkeypatch.setattr(dataset_views, "VERSIONS_PER_PAGE", 2)
    dataset = DatasetVersionFactory(dataset__owner=engineer, created_by=engineer, rows=60).dataset
    DatasetVersionFactory.create_batch(2, dataset=dataset, created_by=engineer, rows=60)
    client = client_for(viewer)
    first = client.get(f"/datasets/{dataset.pk}/").content.decode()
    older = unescape(re.search(r'<a href="([^"]+)" rel="next">', first).group(1))
    second = client.get(f"/datasets/{dataset.pk}/{older}").content.decode()
    assert numbers(first) == [3, 2] and numbers(second) == [1]
    assert 'rel="next"' not in second and 'rel="prev"' in second
    assert client.get(f"/datasets/{dataset.pk}/?before=v3").status_code == 400
