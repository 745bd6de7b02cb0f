"""A batch is logged all at once or not at all, and a retried batch is not logged twice."""

import hashlib

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.core.jobs import JobCancelled, JobContext, JobFailed
from apps.core.models import Job
from apps.deployments.models import BatchScore, PredictionError, PredictionLog
from apps.deployments.services import BATCH_CHUNK, batch_score, deployment_create


def _rows(n: int, *, blank_x1_at: int | None = None) -> bytes:
    lines = ["x1,x2,color"]
    for i in range(n):
        x1 = "" if i == blank_x1_at else f"{i / 10}"
        lines.append(f"{x1},{i % 7},{['red', 'blue'][i % 2]}")
    return ("\n".join(lines) + "\n").encode()


def _batch(client_for, analyst, deployment, content: bytes) -> BatchScore:
    response = client_for(analyst).post(f"/deployments/{deployment.pk}/batches/",
                                        {"file": SimpleUploadedFile("b.csv", content)})
    assert response.status_code == 302, response.content
    batch = BatchScore.objects.get()
    Job.objects.filter(pk=batch.job_id).update(status="running")
    return batch


def _run(batch: BatchScore) -> dict:
    return batch_score(batch=batch, ctx=JobContext(Job.objects.get(pk=batch.job_id)))


def _outputs(deployment) -> list[str]:
    folder = f"batches/{deployment.pk}"
    return [n for n in default_storage.listdir(folder)[1] if "scored" in n] if default_storage.exists(folder) else []


@pytest.fixture
def deployment(analyst, environments, prod_version):
    return deployment_create(user=analyst, version=prod_version, environment=environments["production"])


def test_a_bad_row_after_the_first_chunk_leaves_no_prediction_logged(client_for, analyst, deployment):
    bad = BATCH_CHUNK + 500  # the first chunk scores fine; the second holds the bad row
    batch = _batch(client_for, analyst, deployment, _rows(BATCH_CHUNK + 800, blank_x1_at=bad))
    with pytest.raises(JobFailed, match=f"Row {bad + 2} of the file") as failure:
        _run(batch)
    assert "x1" in str(failure.value) and "Nothing was logged" in str(failure.value)
    assert not PredictionLog.objects.exists()
    assert not PredictionError.objects.exists()  # a batch's bad row is the job's error, not an API error
    batch.refresh_from_db()
    assert batch.output_file == "" and _outputs(deployment) == []


def test_a_retried_batch_is_logged_once(client_for, analyst, deployment):
    batch = _batch(client_for, analyst, deployment, _rows(1200))
    assert _run(batch)["message"] == "Scored 1,200 rows"
    first_ids = set(PredictionLog.objects.values_list("request_id", flat=True))
    assert len(first_ids) == 1200
    # the job ran again (its completion was lost with the worker): nothing is scored or logged twice
    assert _run(batch)["message"] == "Already scored"
    assert set(PredictionLog.objects.values_list("request_id", flat=True)) == first_ids
    batch.refresh_from_db()
    assert len(_outputs(deployment)) == 1 and batch.output_file.name.endswith(f"{batch.pk}-scored.csv")


def test_an_output_left_by_a_killed_attempt_is_replaced_not_duplicated(client_for, analyst, deployment):
    batch = _batch(client_for, analyst, deployment, _rows(30))
    stray = default_storage.save(f"batches/{deployment.pk}/{batch.pk}-scored.csv", SimpleUploadedFile("s", b"half"))
    _run(batch)
    batch.refresh_from_db()
    assert batch.output_file.name == stray and _outputs(deployment) == [stray.rsplit("/", 1)[1]]
    with default_storage.open(stray) as fh:
        assert fh.read().startswith(b"row,request_id,prediction")
    assert PredictionLog.objects.filter(source="batch").count() == 30


class _CancelAfterFirstChunk(JobContext):
    """A user presses Cancel while the job runs: after the first chunk is scored."""

    def progress(self, percent, message=""):
        if message.startswith("Scored"):
            Job.objects.filter(pk=self.job.pk).update(cancel_requested=True)
        super().progress(percent, message)


def test_a_batch_cancelled_part_way_logs_nothing(client_for, analyst, deployment):
    batch = _batch(client_for, analyst, deployment, _rows(BATCH_CHUNK * 3))
    with pytest.raises(JobCancelled):
        batch_score(batch=batch, ctx=_CancelAfterFirstChunk(Job.objects.get(pk=batch.job_id)))
    assert Job.objects.get(pk=batch.job_id).message == f"Scored {BATCH_CHUNK:,} rows"  # it did score a chunk
    assert not PredictionLog.objects.exists() and _outputs(deployment) == []


class _OverlappingAttempt(JobContext):
    """A second attempt of the same job publishes while this one is about to (a requeued job)."""

    def progress(self, percent, message=""):
        super().progress(percent, message)
        if message.startswith("Logging"):
            batch = BatchScore.objects.get(pk=self.job.target_id)
            assert batch_score(batch=batch, ctx=JobContext(self.job))["message"].startswith("Scored")


def test_of_two_overlapping_attempts_one_publishes_and_the_other_logs_nothing(client_for, analyst, deployment):
    batch = _batch(client_for, analyst, deployment, _rows(300))
    result = batch_score(batch=batch, ctx=_OverlappingAttempt(Job.objects.get(pk=batch.job_id)))
    assert result["message"] == "Already scored"
    assert PredictionLog.objects.filter(source="batch").count() == 300
    batch.refresh_from_db()
    assert _outputs(deployment) == [f"{batch.pk}-scored.csv"]
    with default_storage.open(batch.output_file.name) as fh:
        body = fh.read()
    assert hashlib.sha256(body).hexdigest() == batch.output_sha256
    logged = {str(r) for r in PredictionLog.objects.values_list("request_id", flat=True)}
    assert {line.split(b",")[1].decode() for line in body.splitlines()[1:]} == logged


def test_a_file_with_a_nul_character_is_refused_at_upload(client_for, analyst, deployment):
    content = _rows(BATCH_CHUNK + 10).replace(b",red\n", b",re\x00d\n", 1)
    response = client_for(analyst).post(f"/deployments/{deployment.pk}/batches/",
                                        {"file": SimpleUploadedFile("b.csv", content)}, follow=True)
    assert b"b.csv looks like binary data, not a CSV (text) or Parquet file." in response.content
    assert not BatchScore.objects.exists() and not default_storage.exists(f"batches/{deployment.pk}")


def test_the_upload_request_stores_the_file_without_reading_it(client_for, analyst, deployment):
    uneven = b"x1,x2,color\n1,2,red\n3,4\n"  # a CSV only parsing finds wrong
    batch = _batch(client_for, analyst, deployment, uneven)
    assert batch.rows is None and batch.input_file.name.endswith(".csv")
    with pytest.raises(JobFailed, match="b.csv"):
        _run(batch)
    assert not PredictionLog.objects.exists()


def test_a_file_over_the_row_cap_fails_its_job_and_logs_nothing(client_for, analyst, deployment, settings):
    settings.BATCH_MAX_ROWS = 50
    batch = _batch(client_for, analyst, deployment, _rows(51))
    with pytest.raises(JobFailed, match="Batch scoring takes at most 50 rows"):
        _run(batch)
    assert not PredictionLog.objects.exists() and _outputs(deployment) == []
    settings.BATCH_MAX_ROWS = 51
    assert _run(batch)["message"] == "Scored 51 rows"
    batch.refresh_from_db()
    assert batch.rows == 51


def test_labels_that_a_spreadsheet_would_run_are_escaped_in_the_output(client_for, engineer, analyst, environments):
    import numpy as np

    from apps.datasets.models import Dataset
    from tests.factories import make_experiment, make_version, mixed_frame, production_ready_version

    frame = mixed_frame(300, seed=8)
    frame["target"] = np.select([frame["x1"] < -0.5, frame["x1"] < 0.5], ["=1+1", "-1"], "@SUM(A1)")
    dataset = Dataset.objects.create(name="evil-labels", owner=engineer)
    make_version(dataset, frame, engineer)
    version = production_ready_version(engineer, analyst, make_experiment(engineer, dataset, name="evil"),
                                       model_name="evil")
    deployment = deployment_create(user=analyst, version=version, environment=environments["production"])
    rows = "".join(f"{x},{1.0},red\n" for x in (-2.0, 0.0, 2.0))
    batch = _batch(client_for, analyst, deployment, ("x1,x2,color\n" + rows).encode())
    _run(batch)
    batch.refresh_from_db()
    with default_storage.open(batch.output_file.name) as fh:
        lines = fh.read().decode().splitlines()
    predictions = [line.split(",")[2] for line in lines[1:]]
    assert predictions == ["'=1+1", "-1", "'@SUM(A1)"]  # "-1" is a number to a spreadsheet: kept
    assert sorted(PredictionLog.objects.values_list("prediction", flat=True)) == ["-1", "=1+1", "@SUM(A1)"]


def test_csv_cells_that_start_a_formula_get_an_apostrophe():
    from apps.deployments.services import csv_cell

    for evil in ("=cmd|' /C calc'!A0", "+1+2", "-2+3", "@SUM(1)", "\tx", "\rx", "-", "-1e", "+ 1"):
        assert csv_cell(evil) == "'" + evil
    for plain in ("yes", "-1", "+2.5", "-.5", "1e-3", "", " =x", 3, -1.5, None):
        assert csv_cell(plain) == plain
