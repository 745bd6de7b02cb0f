"""What the OpenAPI fuzz pass (tests/test_openapi_fuzz.py) found in the datasets API, kept as plain tests."""

from __future__ import annotations

import pytest

from tests.factories import DatasetVersionFactory


@pytest.fixture
def dataset(engineer):
    return DatasetVersionFactory(dataset__name="shop-data", dataset__owner=engineer, created_by=engineer).dataset


def test_a_search_term_with_a_nul_character_is_a_400_naming_the_parameter(viewer, client_for, dataset):
    # PostgreSQL cannot compare text with a NUL: the search reached the database and answered 500
    response = client_for(viewer).get("/api/v1/datasets/?q=shop%00")

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"q": "Null characters are not allowed."}


def test_the_datasets_page_refuses_a_nul_in_its_search_with_a_400_page(viewer, client_for, dataset):
    response = client_for(viewer).get("/datasets/?q=%00")

    assert response.status_code == 400
    assert "q: Null characters are not allowed." in response.content.decode()


def test_a_search_without_nul_still_finds_the_dataset(viewer, client_for, dataset):
    response = client_for(viewer).get("/api/v1/datasets/?q=shop")

    assert [d["name"] for d in response.json()] == ["shop-data"]
