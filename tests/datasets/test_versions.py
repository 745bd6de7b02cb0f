"""Upload, dedupe by content, profile and validate dataset versions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.core.models import AuditEvent, Job
from apps.datasets.models import Dataset, DatasetVersion
from apps.datasets.services import dataset_version_override, dataset_version_profile, dataset_version_set_role
from tests.factories import make_version, mixed_frame


@pytest.fixture
def dataset(engineer):
    return Dataset.objects.create(name="customers", owner=engineer)


def test_an_upload_creates_a_version_with_its_hash_and_a_profiling_job(engineer, client_for, dataset, media):
    import hashlib

    content = mixed_frame(50).to_csv(index=False).encode()
    response = client_for(engineer).post(
        f"/api/v1/datasets/{dataset.pk}/versions/", {"file": SimpleUploadedFile("c.csv", content), "note": "first"}
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["sha256"] == hashlib.sha256(content).hexdigest()
    # the header gave the columns; the rows are counted when the worker reads the file
    assert body["number"] == 1 and body["rows"] is None and body["column_count"] == 4
    assert body["status"] == "processing"
    assert body["job"]["status"] == "queued" and body["job"]["kind"] == "datasets.profile"
    version = DatasetVersion.objects.get()
    assert version.file.read() == content
    assert Job.objects.get().target == version
    assert AuditEvent.objects.filter(action="dataset_version.create").count() == 1


def test_the_same_bytes_again_return_the_existing_version(engineer, client_for, dataset, media):
    content = mixed_frame(50).to_csv(index=False).encode()
    client = client_for(engineer)
    first = client.post(f"/api/v1/datasets/{dataset.pk}/versions/", {"file": SimpleUploadedFile("a.csv", content)})
    again = client.post(f"/api/v1/datasets/{dataset.pk}/versions/", {"file": SimpleUploadedFile("b.csv", content)})
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert DatasetVersion.objects.count() == 1
    assert Job.objects.count() == 1


def test_the_profile_equals_pandas_and_numpy_on_the_same_file(engineer, dataset, media):
    frame = mixed_frame(500, seed=4)
    version = make_version(dataset, frame, engineer)
    x1 = version.profile["columns"]["x1"]
    values = frame["x1"].to_numpy()
    assert x1["mean"] == pytest.approx(values.mean(), abs=1e-12)
    assert x1["std"] == pytest.approx(frame["x1"].std(), abs=1e-12)
    assert x1["q25"] == pytest.approx(np.quantile(values, 0.25), abs=1e-12)
    assert x1["max"] == values.max()
    counts, edges = np.histogram(values, bins=30)
    assert x1["histogram"]["counts"] == counts.tolist()
    color = {t["value"]: t["count"] for t in version.profile["columns"]["color"]["top"]}
    assert color == frame["color"].value_counts().to_dict()
    assert set(version.reference) == {"x1", "x2", "color", "target"}
    assert version.status == "ready" and version.rows == 500


def test_validation_rules_pass_then_fail_and_a_failed_version_is_not_usable(engineer, dataset, media):
    dataset.validation_rules = {"ranges": {"x2": {"min": 0, "max": 10}}, "min_rows": 100}
    dataset.save()
    good = make_version(dataset, mixed_frame(200, seed=1), engineer)
    assert good.validation_status == "pass", good.validation
    assert good.usable_for_training
    bad_frame = mixed_frame(200, seed=2)
    bad_frame.loc[:9, "x2"] = 50.0
    bad = make_version(dataset, bad_frame, engineer, name="bad.csv")
    assert bad.validation_status == "fail"
    failing = [r for r in bad.validation["results"] if r["status"] == "fail"]
    assert failing and failing[0]["column"] == "x2" and "outside" in failing[0]["message"]
    assert not bad.usable_for_training


def test_a_removed_column_fails_the_schema_check_against_the_previous_version(engineer, dataset, media):
    make_version(dataset, mixed_frame(100, seed=1), engineer)
    second = make_version(dataset, mixed_frame(100, seed=2).drop(columns=["color"]), engineer, name="v2.csv")
    schema = [r for r in second.validation["results"] if r["rule"].startswith("schema")]
    assert any(r["status"] == "fail" and "color" in r["message"] for r in schema), schema


def test_an_override_needs_a_reason_and_is_audited(engineer, dataset, media):
    from django.core.exceptions import ValidationError

    dataset.validation_rules = {"min_rows": 1000}
    dataset.save()
    version = make_version(dataset, mixed_frame(50), engineer)
    assert version.validation_status == "fail"
    with pytest.raises(ValidationError):
        dataset_version_override(user=engineer, version=version, reason="short")
    dataset_version_override(user=engineer, version=version, reason="Small pilot sample, agreed with the team")
    version.refresh_from_db()
    assert version.usable_for_training
    event = AuditEvent.objects.get(action="dataset_version.override_validation")
    assert event.actor == engineer and "pilot" in event.note


def test_a_viewer_cannot_override(viewer, engineer, dataset, media):
    from django.core.exceptions import PermissionDenied

    dataset.validation_rules = {"min_rows": 1000}
    dataset.save()
    version = make_version(dataset, mixed_frame(50), engineer)
    with pytest.raises(PermissionDenied):
        dataset_version_override(user=viewer, version=version, reason="I would like to, please")


def test_correcting_a_role_reprofiles_with_the_new_role(engineer, dataset, media):
    frame = pd.DataFrame({"code": np.arange(300) % 7, "y": np.arange(300) % 2})
    version = make_version(dataset, frame, engineer)
    assert version.column("code")["role"] == "numeric"
    job = dataset_version_set_role(user=engineer, version=version, column="code", role="categorical")
    assert job.kind == "datasets.profile"
    version.refresh_from_db()
    assert version.column("code")["role_corrected"] is True
    dataset_version_profile(version=version)
    version.refresh_from_db()
    assert "top" in version.profile["columns"]["code"]
    assert AuditEvent.objects.filter(action="dataset_version.set_role").exists()


def test_a_tampered_file_is_refused_when_read_back(engineer, dataset, media):
    from apps.core.jobs import JobFailed

    version = make_version(dataset, mixed_frame(50), engineer, profile=False)
    with open(version.file.path, "ab") as fh:
        fh.write(b"1,2,red,yes\n")
    with pytest.raises(JobFailed, match="does not match its recorded sha256"):
        dataset_version_profile(version=version)


def test_the_version_api_shows_schema_stats_and_validation(engineer, viewer, client_for, dataset, media):
    version = make_version(dataset, mixed_frame(80), engineer)
    body = client_for(viewer).get(f"/api/v1/dataset-versions/{version.pk}/").json()
    assert body["rows"] == 80
    assert [c["name"] for c in body["columns"]] == ["x1", "x2", "color", "target"]
    assert body["columns"][0]["stats"]["count"] == 80
    assert body["validation"]["status"] in {"pass", "warn"}
    detail = client_for(viewer).get(f"/api/v1/datasets/{dataset.pk}/").json()
    assert detail["versions"][0]["id"] == version.pk


def test_the_pages_render_for_a_viewer(engineer, viewer, client_for, dataset, media):
    v1 = make_version(dataset, mixed_frame(80, seed=1), engineer)
    v2 = make_version(dataset, mixed_frame(80, seed=2, shift=2.0), engineer, name="v2.csv")
    client = client_for(viewer)
    assert client.get("/datasets/?q=cust").status_code == 200
    assert b"customers" in client.get(f"/datasets/{dataset.pk}/").content
    page = client.get(f"/datasets/versions/{v2.pk}/")
    assert page.status_code == 200 and b'data-chart="col-chart-0-data"' in page.content
    compare = client.get(f"/datasets/{dataset.pk}/compare/?a={v1.pk}&b={v2.pk}")
    assert compare.status_code == 200
    rows = {f["name"]: f for f in compare.context["comparison"]["features"]}
    assert rows["x1"]["drifted"] is True
    download = client.get(f"/datasets/versions/{v1.pk}/download/")
    assert b"".join(download.streaming_content) == open(v1.file.path, "rb").read()


def test_the_list_page_query_count_stays_constant_as_versions_grow(
    engineer, viewer, client_for, media, django_assert_max_num_queries
):
    client = client_for(viewer)
    for i in range(3):
        d = Dataset.objects.create(name=f"d{i}", owner=engineer)
        make_version(d, mixed_frame(20, seed=i), engineer, profile=False)
    with django_assert_max_num_queries(8) as small:
        client.get("/datasets/")
    for i in range(3, 12):
        d = Dataset.objects.create(name=f"d{i}", owner=engineer)
        for j in range(3):
            make_version(d, mixed_frame(20, seed=100 * i + j), engineer, profile=False, name=f"{j}.csv")
    with django_assert_max_num_queries(len(small.captured_queries)):
        response = client.get("/datasets/")
    assert response.content.count(b"<tr>") >= 12
