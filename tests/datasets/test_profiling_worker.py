"""The profiling job run end to end by the real worker on Redis."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.core.models import Job
from apps.datasets.models import Dataset, DatasetVersion
from tests.conftest import wait_until
from tests.factories import mixed_frame

pytestmark = pytest.mark.worker


def test_an_uploaded_version_is_profiled_and_validated_by_the_worker(worker, engineer, client_for):
    dataset = Dataset.objects.create(name="worker-data", owner=engineer, validation_rules={"min_rows": 10})
    content = mixed_frame(400).to_csv(index=False).encode()
    response = client_for(engineer).post(
        f"/api/v1/datasets/{dataset.pk}/versions/", {"file": SimpleUploadedFile("w.csv", content)}
    )
    assert response.status_code == 201
    job = Job.objects.get(pk=response.json()["job"]["id"])
    wait_until(lambda: Job.objects.get(pk=job.pk).is_finished, timeout=60, message="profiling to finish")
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    version = DatasetVersion.objects.get()
    assert version.status == "ready"
    assert version.validation_status == "pass"
    assert version.profile["columns"]["x1"]["count"] == 400
    assert version.reference["x1"]["kind"] == "numeric"


def test_a_version_whose_file_vanished_fails_its_job_with_the_reason(worker, engineer):
    from tests.factories import make_version

    dataset = Dataset.objects.create(name="vanishing", owner=engineer)
    version = make_version(dataset, mixed_frame(30), engineer, profile=False)
    job = Job.objects.get(target_id=version.pk)
    wait_until(lambda: Job.objects.get(pk=job.pk).is_finished, timeout=60, message="the first profile")
    import os

    os.unlink(version.file.path)
    from apps.datasets.services import dataset_version_set_role

    job = dataset_version_set_role(user=engineer, version=version, column="color", role="text")
    wait_until(lambda: Job.objects.get(pk=job.pk).is_finished, timeout=60, message="the job to fail")
    job.refresh_from_db()
    version.refresh_from_db()
    assert job.status == "failed"
    assert "missing from storage" in job.error
    assert version.status == "failed" and "missing from storage" in version.error


def test_a_file_the_worker_cannot_read_ends_refused_with_its_reason_and_no_file(worker, engineer, client_for):
    import os

    from django.conf import settings

    dataset = Dataset.objects.create(name="worker-ragged", owner=engineer)
    content = b"a,b,c\n" + b"1,2,3\n" * 50 + b"4,5\n"
    response = client_for(engineer).post(
        f"/api/v1/datasets/{dataset.pk}/versions/", {"file": SimpleUploadedFile("ragged.csv", content)}
    )
    assert response.status_code == 201  # the cheap checks pass: the header is fine
    job = Job.objects.get(pk=response.json()["job"]["id"])
    stored = os.path.join(settings.MEDIA_ROOT, DatasetVersion.objects.get().file.name)
    assert os.path.exists(stored)
    wait_until(lambda: Job.objects.get(pk=job.pk).is_finished, timeout=60, message="the read to fail")
    job.refresh_from_db()
    assert job.status == "failed" and "line 52 has 2 fields" in job.error
    body = client_for(engineer).get(f"/api/v1/dataset-versions/{response.json()['id']}/").json()
    assert body["status"] == "rejected" and "line 52" in body["error"]
    # the worker deletes the bytes once the rejection has committed (on_commit), a moment after the status
    wait_until(lambda: not os.path.exists(stored), timeout=10, message="the rejected file to be deleted")
