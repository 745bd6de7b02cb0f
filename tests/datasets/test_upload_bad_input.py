"""Every upload the cheap checks can judge (format, header, Parquet footer, size) gets a clear
message naming the problem and stores nothing; what only the full read finds is in
``test_upload_limits``."""

from __future__ import annotations

import io
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.core.models import Job
from apps.datasets.models import Dataset, DatasetVersion


@pytest.fixture
def dataset(engineer):
    return Dataset.objects.create(name="sales", owner=engineer)


def stored_files(media) -> list[str]:
    return [os.path.join(d, f) for d, _, files in os.walk(media) for f in files]


def upload_form(client, dataset, name: str, content: bytes):
    return client.post(
        f"/datasets/{dataset.pk}/upload/", {"file": SimpleUploadedFile(name, content), "note": ""}
    )


def upload_api(client, dataset, name: str, content: bytes):
    return client.post(f"/api/v1/datasets/{dataset.pk}/versions/", {"file": SimpleUploadedFile(name, content)})


def parquet_bytes() -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.table({"a": [1, 2, 3], "b": ["x", "y", "z"]}), buffer)
    return buffer.getvalue()


BAD_FILES = [
    ("empty.csv", b"", "empty"),
    ("image.png", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "not a CSV or Parquet"),
    ("garbage.csv", os.urandom(4096), ""),
    ("latin1.csv", "name,city\nJosé,Málaga\n".encode("latin-1"), "UTF-8"),
    ("dupes.csv", b"a,b,a\n1,2,3\n", "duplicate"),
    ("blank-name.csv", b"a,,c\n1,2,3\n", "empty"),
    ("header-only.csv", b"a,b,c\n", "no data rows"),
    ("wide.csv", (",".join(f"c{i}" for i in range(10_000)) + "\n" + ",".join("1" * 10_000) + "\n").encode(), "10000 columns"),
    ("corrupt.parquet", parquet_bytes()[:-40] + b"\x00" * 32 + b"PAR1", "Parquet"),
]


@pytest.mark.parametrize(("name", "content", "expected"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_a_bad_file_through_the_form_is_refused_with_a_message_and_nothing_stored(
    name, content, expected, engineer, client_for, dataset, media
):
    response = upload_form(client_for(engineer), dataset, name, content)
    assert response.status_code == 400
    text = response.content.decode()
    assert 'data-testid="upload-error"' in text
    if expected:
        assert expected.lower() in text.lower().replace(",", ""), text[-800:]
    assert not DatasetVersion.objects.exists()
    assert not Job.objects.exists()
    assert stored_files(media) == []


@pytest.mark.parametrize(("name", "content", "expected"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_a_bad_file_through_the_api_is_a_400_naming_the_file_field(
    name, content, expected, engineer, client_for, dataset, media
):
    response = upload_api(client_for(engineer), dataset, name, content)
    assert response.status_code == 400
    error = response.json()["error"]
    assert "file" in error["fields"]
    if expected:
        assert expected.lower() in error["message"].lower().replace(",", "")
    assert not DatasetVersion.objects.exists()
    assert stored_files(media) == []


def test_a_file_over_the_size_limit_is_rejected_while_streaming(engineer, client_for, dataset, media, settings):
    settings.DATASET_MAX_UPLOAD_BYTES = 10_000
    content = b"a,b\n" + b"1,2\n" * 10_000
    response = upload_form(client_for(engineer), dataset, "big.csv", content)
    assert response.status_code == 400
    assert b"larger than the upload limit of 10.0 KB" in response.content
    response = upload_api(client_for(engineer), dataset, "big.csv", content)
    assert response.status_code == 413
    assert response.json()["error"]["fields"]["file"].startswith("The file 'big.csv' is larger")
    assert not DatasetVersion.objects.exists()
    assert stored_files(media) == []


def test_the_limit_stops_reading_at_the_limit_not_after_the_whole_file(rf, settings):
    from django.core.files.uploadhandler import StopUpload

    from apps.core.uploads import HashingSizeLimitedUploadHandler

    settings.DATASET_MAX_UPLOAD_BYTES = 100
    request = rf.post("/")
    handler = HashingSizeLimitedUploadHandler(request)
    handler.new_file("file", "x.csv", "text/csv", None)
    handler.receive_data_chunk(b"x" * 64, 0)
    with pytest.raises(StopUpload):
        handler.receive_data_chunk(b"x" * 64, 64)
    assert "larger than the upload limit" in request.upload_error


def test_a_missing_file_field_is_named(engineer, client_for, dataset):
    response = client_for(engineer).post(f"/api/v1/datasets/{dataset.pk}/versions/", {})
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"file": "Choose a CSV or Parquet file to upload."}


def test_a_taken_dataset_name_is_refused_whatever_its_case(engineer, client_for, dataset):
    response = client_for(engineer).post("/api/v1/datasets/", {"name": "SALES"}, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["name"] == "A dataset named 'SALES' already exists; pick another name."
    assert Dataset.objects.count() == 1
    response = client_for(engineer).post("/datasets/new/", {"name": "Sales"})
    assert response.status_code == 400
    assert b"already exists" in response.content


def test_a_viewer_cannot_upload(viewer, client_for, dataset, media):
    response = upload_api(client_for(viewer), dataset, "ok.csv", b"a,b\n1,2\n")
    assert response.status_code == 403
    response = upload_form(client_for(viewer), dataset, "ok.csv", b"a,b\n1,2\n")
    assert response.status_code == 403
    assert not DatasetVersion.objects.exists()
    assert stored_files(media) == []


def test_a_viewer_cannot_create_a_dataset(viewer, client_for):
    response = client_for(viewer).post("/api/v1/datasets/", {"name": "x"}, content_type="application/json")
    assert response.status_code == 403
    assert not Dataset.objects.exists()
