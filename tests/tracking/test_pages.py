"""Our pages show MLflow work: experiments beside catalog ones, run pages, downloads, filtering,
sorting by a metric, comparing; list pages keep a constant query count."""

from __future__ import annotations

import hashlib

import pytest
from django.urls import reverse

from apps.experiments.models import Experiment, Run

pytestmark = pytest.mark.django_db




def logged_run(api, experiment_id: str, name: str, accuracy: float, depth: str) -> dict:
    info = api.run(experiment_id)
    run_id = info["run_id"]
    metrics = [{"key": "loss", "value": 1.0 / (s + 1), "timestamp": 1000 + s, "step": s} for s in range(4)]
    metrics.append({"key": "accuracy", "value": accuracy, "timestamp": 2000, "step": 0})
    tags = [{"key": "mlflow.runName", "value": name}, {"key": "mlflow.source.name", "value": "train.ipynb"},
            {"key": "mlflow.source.git.commit", "value": "0123456789abcdef"}]
    body = {"run_id": run_id, "metrics": metrics, "params": [{"key": "max_depth", "value": depth}], "tags": tags}
    assert api.post("runs/log-batch", body).status_code == 200
    api.post("runs/update", {"run_id": run_id, "status": "FINISHED", "end_time": 3000})
    return info


def test_mlflow_experiments_are_listed_beside_catalog_ones_with_their_source(api, client_for, viewer):
    api.experiment("from-notebook")
    page = client_for(viewer).get(reverse("experiments:list"))
    assert page.status_code == 200
    assert b'data-source="mlflow"' in page.content and b"MLflow client" in page.content


def test_the_run_page_shows_params_tags_metric_charts_datasets_and_artifacts(api, client_for, viewer):
    info = logged_run(api, api.experiment("pages"), "rf-1", 0.91, "5")
    root = info["artifact_uri"][len("mlflow-artifacts:/"):]
    assert api.put_artifact(f"{root}/plots/roc.png", b"png bytes").status_code == 200
    dataset = {"name": "train", "digest": "abc123", "source_type": "local", "source": '{"uri": "/tmp/x.csv"}',
               "schema": '{"mlflow_colspec": [{"type": "long", "name": "tenure"}]}', "profile": '{"num_rows": 10}'}
    api.post("runs/log-inputs", {"run_id": info["run_id"], "datasets": [
        {"tags": [{"key": "mlflow.data.context", "value": "training"}], "dataset": dataset}]})
    run = Run.objects.get(uuid=info["run_id"])
    page = client_for(viewer).get(run.get_absolute_url())
    text = page.content.decode()
    assert page.status_code == 200
    assert "max_depth" in text and "train.ipynb" in text and "0123456789abcdef" in text
    assert 'id="metric-chart-1"' in text and "loss by step" in text  # one chart per metric, step on x
    assert "tenure" in text and "training" in text
    assert "roc.png" in text and hashlib.sha256(b"png bytes").hexdigest()[:10] in text
    download = client_for(viewer).get(reverse("experiments:run_artifact", args=[run.pk, f"{root}/plots/roc.png"]))
    assert download.status_code == 200 and b"".join(download.streaming_content) == b"png bytes"
    assert download["Content-Type"] == "application/octet-stream"


def test_runs_filter_sort_by_a_metric_and_compare(api, client_for, viewer):
    experiment_id = api.experiment("compare-me")
    for name, accuracy, depth in (("a", 0.7, "3"), ("b", 0.9, "5"), ("c", 0.8, "5")):
        logged_run(api, experiment_id, name, accuracy, depth)
    experiment = Experiment.objects.get(pk=experiment_id)
    browser = client_for(viewer)
    sorted_page = browser.get(experiment.get_absolute_url(), {"sort": "-metrics.accuracy"})
    runs = [r.name for r in sorted_page.context["runs"]]
    assert runs == ["b", "c", "a"]
    filtered = browser.get(experiment.get_absolute_url(), {"filter": "params.max_depth = '5' and metrics.accuracy < 0.85"})
    assert [r.name for r in filtered.context["runs"]] == ["c"]
    bad = browser.get(experiment.get_absolute_url(), {"filter": "metrics.accuracy >"})
    assert bad.status_code == 400 and b"Invalid filter" in bad.content
    pks = list(experiment.runs.values_list("pk", flat=True)[:2])
    compare = browser.get(reverse("experiments:compare", args=[experiment.pk]), {"runs": pks})
    assert compare.status_code == 200 and b"accuracy" in compare.content and b"max_depth" in compare.content


def test_the_mlflow_experiment_page_keeps_a_constant_query_count(api, client_for, viewer):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    experiment_id = api.experiment("many")
    browser = client_for(viewer)
    url = Experiment.objects.get(pk=experiment_id).get_absolute_url()
    logged_run(api, experiment_id, "first", 0.5, "1")
    browser.get(url)
    with CaptureQueriesContext(connection) as one:
        browser.get(url, {"sort": "-metrics.accuracy"})
    for index in range(15):
        logged_run(api, experiment_id, f"r{index}", 0.5 + index / 100, str(index))
    with CaptureQueriesContext(connection) as many:
        browser.get(url, {"sort": "-metrics.accuracy"})
    # session, user, groups, the count, the page of runs, the pending-promotions badge...: the same number
    assert len(many.captured_queries) == len(one.captured_queries) <= 10


def test_the_runs_table_opens_when_a_run_has_lost_its_creator(api, client_for, viewer):
    experiment_id = api.experiment("orphans")
    logged_run(api, experiment_id, "orphan", 0.5, "1")
    Run.objects.filter(experiment_id=experiment_id).update(created_by=None, client_user="")
    page = client_for(viewer).get(Experiment.objects.get(pk=experiment_id).get_absolute_url())
    assert page.status_code == 200 and b"orphan" in page.content
