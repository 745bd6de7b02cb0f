"""How large a table may get, and what a file that only the full read can judge leaves behind.

A Parquet file declares its shape in its footer, so one that would decode to more rows or
values than the site allows is refused in the request, before a row is decoded. A CSV's
rows, and anything wrong deep inside a file, are found when the worker reads it: the
version is then refused, keeps the reason, loses its bytes, and the dataset keeps
pointing at its last good version.
"""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.core.jobs import JobFailed
from apps.core.models import AuditEvent, Job
from apps.datasets.models import Dataset, DatasetVersion
from apps.datasets.services import dataset_version_profile
from tests.factories import make_version, mixed_frame


@pytest.fixture
def dataset(engineer):
    return Dataset.objects.create(name="limits", owner=engineer)


def stored_files(media) -> list[str]:
    return [os.path.join(d, f) for d, _, files in os.walk(media) for f in files]


def zeros_parquet(path, *, rows: int, row_groups: int = 1, columns: int = 4) -> bytes:
    """Constant columns compress to almost nothing: a few hundred KB for millions of rows."""
    per_group = rows // row_groups
    names = [f"c{i}" for i in range(columns)]
    block = pa.table({name: np.zeros(per_group, dtype=np.int64) for name in names})
    with pq.ParquetWriter(path, block.schema, compression="zstd") as writer:
        for _ in range(row_groups):
            writer.write_table(block)
    return path.read_bytes()


def upload_form(client, dataset, name: str, content: bytes):
    return client.post(f"/datasets/{dataset.pk}/upload/", {"file": SimpleUploadedFile(name, content), "note": ""})


def upload_api(client, dataset, name: str, content: bytes):
    return client.post(f"/api/v1/datasets/{dataset.pk}/versions/", {"file": SimpleUploadedFile(name, content)})


@pytest.fixture
def no_parquet_decoding(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a row group was decoded")

    for method in ("read", "read_row_group", "read_row_groups", "iter_batches"):
        monkeypatch.setattr(pq.ParquetFile, method, refuse)


def test_a_parquet_bomb_is_refused_in_the_request_from_its_footer_alone(
    engineer, client_for, dataset, media, tmp_path, no_parquet_decoding
):
    content = zeros_parquet(tmp_path / "bomb.parquet", rows=6_000_000, row_groups=6)
    assert len(content) < 1_000_000  # 6M rows x 4 columns, 192 MB once decoded
    response = upload_form(client_for(engineer), dataset, "bomb.parquet", content)
    assert response.status_code == 400
    assert b"6,000,000 rows; the limit is 5,000,000" in response.content
    response = upload_api(client_for(engineer), dataset, "bomb.parquet", content)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "too_many_rows" and "file" in error["fields"]
    assert not DatasetVersion.objects.exists() and not Job.objects.exists()
    assert stored_files(media) == []


def test_a_parquet_file_over_the_value_limit_is_refused_naming_rows_and_columns(
    engineer, client_for, dataset, media, tmp_path, settings, no_parquet_decoding
):
    settings.DATASET_MAX_CELLS = 1000
    content = zeros_parquet(tmp_path / "wide.parquet", rows=300, columns=4)
    response = upload_api(client_for(engineer), dataset, "wide.parquet", content)
    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        "wide.parquet has 300 rows x 4 columns = 1,200 values; the limit is 1,000."
    )
    assert stored_files(media) == []


def test_a_parquet_file_within_the_limits_is_stored_with_the_rows_its_footer_declares(
    engineer, client_for, dataset, media, tmp_path
):
    content = zeros_parquet(tmp_path / "ok.parquet", rows=400, columns=3)
    response = upload_api(client_for(engineer), dataset, "ok.parquet", content)
    assert response.status_code == 201
    assert response.json()["rows"] == 400 and response.json()["column_count"] == 3


def test_a_csv_with_more_rows_than_the_limit_is_refused_by_the_read_and_leaves_a_clear_state(
    engineer, viewer, client_for, dataset, media, settings, django_capture_on_commit_callbacks
):
    settings.DATASET_MAX_ROWS = 100
    content = mixed_frame(150).to_csv(index=False).encode()
    response = upload_form(client_for(engineer), dataset, "long.csv", content)
    assert response.status_code == 302  # the request cannot count a CSV's rows without reading it all
    version = DatasetVersion.objects.get()
    assert version.status == "processing" and version.rows is None and version.column_count == 4
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(
        JobFailed, match="long.csv has at least 150 rows; the limit is 100"
    ):
        dataset_version_profile(version=version)
    version.refresh_from_db()
    assert version.status == "rejected" and "the limit is 100" in version.error
    assert not version.file and stored_files(media) == []
    dataset.refresh_from_db()
    assert dataset.latest_version is None
    assert AuditEvent.objects.filter(action="dataset_version.rejected", object_id=str(version.pk)).exists()
    body = client_for(viewer).get(f"/api/v1/dataset-versions/{version.pk}/").json()
    assert body["status"] == "rejected" and "the limit is 100" in body["error"]
    page = client_for(viewer).get(f"/datasets/versions/{version.pk}/")
    assert page.status_code == 200 and b'data-testid="rejected"' in page.content
    assert b"/download/" not in page.content


def test_a_ragged_row_deep_in_a_csv_is_refused_by_the_read_with_its_line(
    engineer, client_for, dataset, media, django_capture_on_commit_callbacks
):
    response = upload_form(client_for(engineer), dataset, "uneven.csv", b"a,b,c\n1,2,3\n4,5\n6,7,8\n")
    assert response.status_code == 302
    version = DatasetVersion.objects.get()
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(JobFailed, match="line 3 has 2 fields"):
        dataset_version_profile(version=version)
    version.refresh_from_db()
    assert version.status == "rejected" and "line 3" in version.error
    assert stored_files(media) == []


def test_a_refused_version_leaves_the_dataset_on_its_last_good_version(
    engineer, client_for, dataset, media, django_capture_on_commit_callbacks
):
    good = make_version(dataset, mixed_frame(60), engineer)
    upload_form(client_for(engineer), dataset, "bad.csv", b"x1,x2\n1,2\n3\n")
    bad = DatasetVersion.objects.exclude(pk=good.pk).get()
    dataset.refresh_from_db()
    assert dataset.latest_version == bad  # while it is read, the newest upload is the latest
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(JobFailed):
        dataset_version_profile(version=bad)
    dataset.refresh_from_db()
    assert dataset.latest_version == good
    assert os.path.exists(good.file.path) and stored_files(media) == [good.file.path]


def test_the_same_refused_bytes_are_read_again_once_the_limit_allows_them(
    engineer, client_for, dataset, media, settings, django_capture_on_commit_callbacks
):
    settings.DATASET_MAX_ROWS = 100
    content = mixed_frame(150).to_csv(index=False).encode()
    upload_api(client_for(engineer), dataset, "long.csv", content)
    version = DatasetVersion.objects.get()
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(JobFailed):
        dataset_version_profile(version=version)
    assert stored_files(media) == []
    settings.DATASET_MAX_ROWS = 1000
    again = upload_api(client_for(engineer), dataset, "long.csv", content)
    assert again.status_code == 200 and again.json()["id"] == version.pk
    assert again.json()["status"] == "processing" and again.json()["job"]["status"] == "queued"
    version.refresh_from_db()
    assert open(version.file.path, "rb").read() == content
    dataset_version_profile(version=version)
    version.refresh_from_db()
    assert version.status == "ready" and version.rows == 150


def test_the_job_that_reads_an_upload_infers_its_schema(engineer, dataset, media):
    version = make_version(dataset, mixed_frame(40), engineer, profile=False)
    assert version.schema == [] and version.rows is None
    dataset_version_profile(version=version)
    version.refresh_from_db()
    assert [c["name"] for c in version.schema] == ["x1", "x2", "color", "target"]
    assert version.rows == 40 and version.status == "ready"
