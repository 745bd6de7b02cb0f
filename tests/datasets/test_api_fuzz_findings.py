"""What the OpenAPI fuzz pass (tests/test_openapi_fuzz.py) found in the datasets API, kept as plain tests."""

from __future__ import annotations

import os

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.datasets.models import DatasetVersion
from tests.factories import DatasetVersionFactory

CSV = b"x1,x2,target\n1,2,a\n3,4,b\n5,6,a\n"


def stored_files(media) -> set[str]:
    return {os.path.join(folder, name) for folder, _, names in os.walk(media) for name in names}


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


@pytest.mark.parametrize(("note", "message"), [
    ("first\x00upload", "Null characters are not allowed."),
    ("n" * 501, "Ensure this field has no more than 500 characters."),
])
def test_an_upload_note_the_form_would_refuse_is_a_400_naming_the_note_and_stores_nothing(
    engineer, client_for, dataset, media, note, message,
):
    # a NUL in the note reached PostgreSQL (a 500); a long one was cut to 500 characters without a word
    before, files_before = DatasetVersion.objects.count(), stored_files(media)

    response = client_for(engineer).post(f"/api/v1/datasets/{dataset.pk}/versions/",
                                         {"file": SimpleUploadedFile("d.csv", CSV), "note": note})

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"note": message}
    assert DatasetVersion.objects.count() == before
    assert stored_files(media) == files_before


def test_an_upload_with_a_plain_note_keeps_it(engineer, client_for, dataset):
    response = client_for(engineer).post(f"/api/v1/datasets/{dataset.pk}/versions/",
                                         {"file": SimpleUploadedFile("d.csv", CSV), "note": "first upload"})

    assert response.status_code == 201 and response.json()["note"] == "first upload"


def test_the_schema_describes_the_upload_as_a_multipart_file_part(viewer, client_for):
    # it said `file` was a URI string in a JSON, form or multipart body: a client (and the fuzzer) sent a URL
    schema = client_for(viewer).get("/api/schema/?format=json").json()

    content = schema["paths"]["/api/v1/datasets/{id}/versions/"]["post"]["requestBody"]["content"]
    upload = schema["components"]["schemas"]["VersionUpload"]["properties"]
    assert list(content) == ["multipart/form-data"]
    assert upload["file"] == {"type": "string", "format": "binary"}
    assert upload["note"]["maxLength"] == 500
