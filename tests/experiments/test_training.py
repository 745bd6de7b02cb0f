"""Training runs: metrics equal scikit-learn's, re-runs reproduce, grids record trials."""

from __future__ import annotations

import pytest
from sklearn.metrics import accuracy_score, f1_score

from apps.datasets.models import Dataset
from apps.datasets.services import load_version_frame
from apps.experiments.services import run_again, run_launch
from apps.ml.persist import load_pipeline
from apps.ml.train import TrainingSpec, build_pipeline, holdout_split
from tests.factories import make_experiment, make_version, mixed_frame, train_inline


@pytest.fixture
def experiment(engineer):
    d = Dataset.objects.create(name="shop", owner=engineer)
    make_version(d, mixed_frame(400, seed=11), engineer)
    return make_experiment(engineer, d, name="buyers")


def test_the_metrics_equal_scikit_learn_on_the_same_split(engineer, experiment):
    run = run_launch(user=engineer, experiment=experiment, algorithm="logistic_regression", params={"C": 0.5})
    train_inline(run)
    frame = load_version_frame(run.dataset_version)
    spec = TrainingSpec.from_dict(run.spec)
    train_idx, hold_idx = holdout_split(frame, spec)
    X, y = frame[spec.feature_names], frame["target"].astype(str).to_numpy()
    model = build_pipeline(spec).fit(X.iloc[train_idx], y[train_idx])
    pred = model.predict(X.iloc[hold_idx])
    assert run.metrics["accuracy"] == accuracy_score(y[hold_idx], pred)
    assert run.metrics["f1"] == f1_score(y[hold_idx], pred, average="macro", zero_division=0)
    assert run.n_holdout == len(hold_idx) == 80
    loaded = load_pipeline(run.artifact.read(), expected_sha256=run.artifact_sha256)
    assert (loaded.predict(X.iloc[hold_idx]) == pred).all()


def test_the_same_spec_twice_and_run_again_give_identical_metrics(engineer, experiment):
    first = run_launch(user=engineer, experiment=experiment, algorithm="random_forest_classifier",
                       params={"n_estimators": 30}, random_state=3)
    second = run_launch(user=engineer, experiment=experiment, algorithm="random_forest_classifier",
                        params={"n_estimators": 30}, random_state=3)
    train_inline(first)
    train_inline(second)
    again = run_again(user=engineer, run=first)
    train_inline(again)
    assert first.metrics == second.metrics == again.metrics
    assert first.cv_scores == again.cv_scores
    assert again.rerun_of == first and again.source == "rerun"


def test_every_run_of_an_experiment_is_scored_on_the_same_holdout_rows(engineer, experiment):
    a = run_launch(user=engineer, experiment=experiment, algorithm="logistic_regression")
    b = run_launch(user=engineer, experiment=experiment, algorithm="knn_classifier")
    frame = load_version_frame(a.dataset_version)
    _, hold_a = holdout_split(frame, TrainingSpec.from_dict(a.spec))
    _, hold_b = holdout_split(frame, TrainingSpec.from_dict(b.spec))
    assert list(hold_a) == list(hold_b)


def test_a_grid_records_every_trial_and_keeps_the_best_by_cross_validation(engineer, experiment):
    run = run_launch(user=engineer, experiment=experiment, algorithm="knn_classifier",
                     grid={"n_neighbors": [1, 5, 15]})
    train_inline(run)
    trials = list(run.trials.order_by("number"))
    assert [t.params["n_neighbors"] for t in trials] == [1, 5, 15]
    best = max(trials, key=lambda t: t.cv_mean["f1"])
    assert run.params["n_neighbors"] == best.params["n_neighbors"]
    assert run.metrics == best.metrics
    assert run.artifact_sha256


def test_a_regression_experiment_trains_and_charts_residuals(engineer):
    d = Dataset.objects.create(name="reg", owner=engineer)
    frame = mixed_frame(300, seed=2)
    frame["price"] = frame["x1"] * 3 + frame["x2"] + (frame["color"] == "red") * 2
    make_version(d, frame, engineer)
    experiment = make_experiment(engineer, d, name="prices", target="price")
    assert experiment.task_type == "regression" and experiment.primary_metric == "rmse"
    run = run_launch(user=engineer, experiment=experiment, algorithm="ridge")
    train_inline(run)
    assert run.metrics["r2"] > 0.8
    assert run.charts["residuals"]["y_true"]


def test_the_run_and_compare_pages_render(engineer, viewer, client_for, experiment):
    a = run_launch(user=engineer, experiment=experiment, algorithm="logistic_regression")
    b = run_launch(user=engineer, experiment=experiment, algorithm="random_forest_classifier",
                   params={"n_estimators": 20})
    train_inline(a)
    train_inline(b)
    client = client_for(viewer)
    page = client.get(f"/experiments/runs/{a.pk}/")
    assert page.status_code == 200
    for chart in (b"confusion-chart", b"roc-chart", b"importance-chart"):
        assert chart in page.content
    detail = client.get(f"/experiments/{experiment.pk}/?sort=-accuracy")
    assert detail.status_code == 200 and b"metric-chart" in detail.content
    compare = client.get(f"/experiments/{experiment.pk}/compare/?runs={a.pk}&runs={b.pk}")
    assert compare.status_code == 200 and b"compare-chart" in compare.content
    assert client.get(f"/experiments/{experiment.pk}/compare/?runs={a.pk}").status_code == 400
    api = client.get(f"/api/v1/runs/{a.pk}/").json()
    assert api["metrics"]["accuracy"] == a.metrics["accuracy"]
    assert api["dataset_version"] == a.dataset_version_id
