"""An experiment of thousands of runs is read a page at a time, sorted by the database."""

from __future__ import annotations

import json
import re

import pytest

from apps.core.models import JobStatus
from apps.experiments import views as experiment_views
from apps.experiments.models import Run
from tests.factories import ExperimentFactory, FittedRunFactory, RunFactory

pytestmark = pytest.mark.django_db


def run_numbers(body: str) -> list[int]:
    return [int(n) for n in re.findall(r'<tr data-run="(\d+)">', body)]


def with_accuracy(run: Run, value: float | None) -> Run:
    metrics = dict(run.metrics or {})
    if value is None:
        metrics.pop("accuracy", None)
    else:
        metrics["accuracy"] = value
    Run.objects.filter(pk=run.pk).update(metrics=metrics)
    return run


def test_runs_sorted_by_a_metric_run_across_pages_best_first_and_unscored_last(
        viewer, client_for, engineer, experiment, monkeypatch):
    monkeypatch.setattr(experiment_views, "RUNS_PER_PAGE", 2)
    scores = {0.71: None, 0.93: None, 0.85: None}
    for score in scores:
        scores[score] = with_accuracy(FittedRunFactory(experiment=experiment, created_by=engineer), score).number
    queued = RunFactory(experiment=experiment, status=JobStatus.QUEUED).number
    client = client_for(viewer)
    pages = [run_numbers(client.get(f"/experiments/{experiment.pk}/?sort=-accuracy&page={n}").content.decode())
             for n in (1, 2)]
    assert pages == [[scores[0.93], scores[0.85]], [scores[0.71], queued]]
    ascending = run_numbers(client.get(f"/experiments/{experiment.pk}/?sort=accuracy").content.decode())
    assert ascending == [scores[0.71], scores[0.85]]


def test_the_runs_pager_keeps_the_filters_and_the_sort(viewer, client_for, engineer, experiment, monkeypatch):
    monkeypatch.setattr(experiment_views, "RUNS_PER_PAGE", 1)
    for _ in range(2):
        FittedRunFactory(experiment=experiment, created_by=engineer, algorithm="knn_classifier")
    FittedRunFactory(experiment=experiment, created_by=engineer)
    body = client_for(viewer).get(
        f"/experiments/{experiment.pk}/?algorithm=knn_classifier&sort=-f1").content.decode()
    assert "Runs 1–1 of 2" in body
    assert "?algorithm=knn_classifier&amp;status=&amp;sort=-f1&amp;page=2" in body


def test_the_charts_draw_only_the_newest_finished_runs(viewer, client_for, engineer, experiment, monkeypatch):
    monkeypatch.setattr(experiment_views, "CHART_RUNS", 2)
    numbers = [FittedRunFactory(experiment=experiment, created_by=engineer).number for _ in range(3)]
    body = client_for(viewer).get(f"/experiments/{experiment.pk}/").content.decode()
    figure = json.loads(re.search(r'<script type="application/json" id="metric-chart-data">(.*?)</script>',
                                  body, re.S).group(1))
    assert [x for trace in figure["data"] for x in trace["x"]] == [f"#{n}" for n in numbers[1:]]
    assert "The charts show the newest 2 finished runs." in body


def test_the_experiments_list_is_paged_with_each_experiments_own_run_count(
        viewer, client_for, engineer, experiment, monkeypatch):
    monkeypatch.setattr(experiment_views, "EXPERIMENTS_PER_PAGE", 1)
    newer = ExperimentFactory(name="newer", dataset=experiment.dataset, created_by=engineer)
    for _ in range(2):
        RunFactory(experiment=newer)
    client = client_for(viewer)
    first = client.get("/experiments/").content.decode()
    second = client.get("/experiments/?page=2").content.decode()
    assert newer.get_absolute_url() in first and experiment.get_absolute_url() not in first
    assert re.search(r'<td class="num">2</td>', first)
    assert experiment.get_absolute_url() in second and re.search(r'<td class="num">0</td>', second)
