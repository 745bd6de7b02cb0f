"""Batch scoring end to end on the real worker."""

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.core.models import Job
from apps.deployments.models import BatchScore, PredictionLog
from apps.deployments.services import deployment_create
from tests.conftest import wait_until

pytestmark = pytest.mark.worker


def test_a_csv_is_scored_by_the_worker_into_a_downloadable_csv(
    worker, transactional_db, engineer, analyst, client_for, environments, prod_version
):
    deployment = deployment_create(user=analyst, version=prod_version, environment=environments["production"])
    content = "x1,x2,color,extra\n" + "".join(f"{i / 10},{i % 7},{['red', 'blue'][i % 2]},z\n" for i in range(250))
    response = client_for(analyst).post(f"/deployments/{deployment.pk}/batches/",
                                         {"file": SimpleUploadedFile("to-score.csv", content.encode())})
    assert response.status_code == 302
    batch = BatchScore.objects.get()
    wait_until(lambda: Job.objects.get(pk=batch.job_id).is_finished, timeout=60, message="batch scoring")
    batch.refresh_from_db()
    assert batch.job.status == "succeeded", batch.job.error
    download = client_for(analyst).get(f"/deployments/batches/{batch.pk}/download/")
    rows = list(csv.DictReader(io.StringIO(b"".join(download.streaming_content).decode())))
    assert len(rows) == 250 and rows[0]["row"] == "1"
    assert {r["prediction"] for r in rows} <= {"yes", "no"}
    assert PredictionLog.objects.filter(source="batch").count() == 250


def test_a_file_missing_feature_columns_fails_its_job_with_the_reason(engineer, analyst, client_for, environments,
                                                                      prod_version):
    from apps.core.jobs import JobContext, JobFailed
    from apps.deployments.services import batch_score

    deployment = deployment_create(user=analyst, version=prod_version, environment=environments["production"])
    response = client_for(analyst).post(f"/deployments/{deployment.pk}/batches/",
                                        {"file": SimpleUploadedFile("x.csv", b"x1,color\n1,red\n")})
    assert response.status_code == 302  # the request stores the file; the job reads it
    batch = BatchScore.objects.get()
    assert batch.rows is None
    Job.objects.filter(pk=batch.job_id).update(status="running")
    with pytest.raises(JobFailed, match="lacks the model's feature columns: x2"):
        batch_score(batch=batch, ctx=JobContext(Job.objects.get(pk=batch.job_id)))
    assert not PredictionLog.objects.exists()


def test_batch_scoring_in_production_needs_the_production_right(engineer, analyst, client_for, environments,
                                                                prod_version):
    deployment = deployment_create(user=analyst, version=prod_version, environment=environments["production"])
    response = client_for(engineer).post(f"/deployments/{deployment.pk}/batches/",
                                         {"file": SimpleUploadedFile("x.csv", b"x1,x2,color\n1,2,red\n")})
    assert response.status_code == 403
    assert not BatchScore.objects.exists()
