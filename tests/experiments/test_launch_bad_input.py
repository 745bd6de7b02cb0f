"""Bad launches are a 400 naming the field (or a 403), and leave no run and no job."""

from __future__ import annotations

import numpy as np
import pytest

from apps.core.models import Job
from apps.datasets.models import Dataset
from apps.experiments.models import Experiment, Run
from tests.factories import make_experiment, make_version, mixed_frame


@pytest.fixture
def dataset(engineer):
    d = Dataset.objects.create(name="shop", owner=engineer)
    make_version(d, mixed_frame(200), engineer)
    return d


@pytest.fixture
def experiment(engineer, dataset):
    return make_experiment(engineer, dataset, name="shop-buyers")


def create(client, **body):
    return client.post("/api/v1/experiments/", body, content_type="application/json")


def launch(client, experiment, **body):
    return client.post(f"/api/v1/experiments/{experiment.pk}/runs/", body, content_type="application/json")


def assert_nothing_written():
    assert not Run.objects.exists()
    assert not Job.objects.filter(kind="experiments.train").exists()


def test_a_target_not_in_the_dataset_is_named(engineer, client_for, dataset):
    response = create(client_for(engineer), name="e1", dataset=dataset.pk, target="price")
    assert response.status_code == 400
    assert "'price' is not a column" in response.json()["error"]["fields"]["target"]
    assert not Experiment.objects.exists()


def test_a_constant_target_is_refused(engineer, client_for):
    d = Dataset.objects.create(name="flat", owner=engineer)
    frame = mixed_frame(100)
    frame["target"] = "yes"
    make_version(d, frame, engineer)
    response = create(client_for(engineer), name="e2", dataset=d.pk, target="target")
    assert response.status_code == 400
    assert "constant" in response.json()["error"]["fields"]["target"]


def test_a_text_regression_target_is_refused(engineer, client_for, dataset):
    response = create(client_for(engineer), name="e3", dataset=dataset.pk, target="color", task_type="regression")
    assert response.status_code == 400
    assert "cannot be a regression target" in response.json()["error"]["fields"]["target"]


def test_a_target_with_no_values_is_refused(engineer, client_for):
    d = Dataset.objects.create(name="empty-target", owner=engineer)
    frame = mixed_frame(50)
    frame["target"] = np.nan
    make_version(d, frame, engineer)
    response = create(client_for(engineer), name="e4", dataset=d.pk, target="target")
    assert response.status_code == 400
    assert "no rows are left after dropping missing targets" in response.json()["error"]["fields"]["target"]


def test_an_unknown_algorithm_is_named(engineer, client_for, experiment):
    response = launch(client_for(engineer), experiment, algorithm="deep_magic")
    assert response.status_code == 400
    assert "deep_magic" in response.json()["error"]["fields"]["algorithm"]
    assert_nothing_written()


def test_a_regression_algorithm_for_a_classification_experiment_is_refused(engineer, client_for, experiment):
    response = launch(client_for(engineer), experiment, algorithm="ridge")
    assert response.status_code == 400
    assert "algorithm" in response.json()["error"]["fields"]
    assert_nothing_written()


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"n_estimators": 0}, "params.n_estimators"),
        ({"n_estimators": -5}, "params.n_estimators"),
        ({"max_depth": "deep"}, "params.max_depth"),
        ({"criterion": "wisdom"}, "params.criterion"),
        ({"learning_rate": 0.1}, "params.learning_rate"),
    ],
)
def test_a_bad_hyperparameter_is_a_400_naming_it(engineer, client_for, experiment, params, field):
    response = launch(client_for(engineer), experiment, algorithm="random_forest_classifier", params=params)
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"], response.json()
    assert_nothing_written()


def test_a_logistic_regression_with_negative_c_is_refused(engineer, client_for, experiment):
    response = launch(client_for(engineer), experiment, algorithm="logistic_regression", params={"C": -1})
    assert response.status_code == 400
    assert "params.C" in response.json()["error"]["fields"]
    assert_nothing_written()


def test_a_version_that_failed_validation_needs_an_override(engineer, client_for, dataset, experiment):
    from apps.datasets.services import dataset_version_override

    dataset.validation_rules = {"min_rows": 10_000}
    dataset.save()
    failing = make_version(dataset, mixed_frame(210, seed=5), engineer, name="v2.csv")
    assert failing.validation_status == "fail"
    response = launch(client_for(engineer), experiment, algorithm="logistic_regression", dataset_version=failing.pk)
    assert response.status_code == 400
    assert "failed validation" in response.json()["error"]["fields"]["dataset_version"]
    assert_nothing_written()
    dataset_version_override(user=engineer, version=failing, reason="known small sample, accepted")
    response = launch(client_for(engineer), experiment, algorithm="logistic_regression", dataset_version=failing.pk)
    assert response.status_code == 202


def test_a_viewer_cannot_launch(viewer, client_for, experiment):
    response = launch(client_for(viewer), experiment, algorithm="logistic_regression")
    assert response.status_code == 403
    assert_nothing_written()


def test_the_web_form_shows_the_bad_parameter(engineer, client_for, experiment):
    response = client_for(engineer).post(
        f"/experiments/{experiment.pk}/runs/",
        {"algorithm": "random_forest_classifier", "param_n_estimators": "0"},
        follow=True,
    )
    assert b"params.n_estimators" in response.content
    assert_nothing_written()


def test_a_good_launch_answers_202_with_its_job(engineer, client_for, experiment):
    response = launch(client_for(engineer), experiment, algorithm="random_forest_classifier",
                      params={"n_estimators": "20", "max_depth": "none"})
    assert response.status_code == 202
    body = response.json()
    assert body["job"]["status"] == "queued"
    assert body["params"]["n_estimators"] == 20 and body["params"]["max_depth"] is None


@pytest.mark.parametrize(
    ("algorithm", "params", "field"),
    [
        ("random_forest_classifier", {"n_estimators": 10**9}, "params.n_estimators"),
        ("random_forest_classifier", {"max_depth": 10**6}, "params.max_depth"),
        ("hist_gradient_boosting_classifier", {"max_iter": 10**7}, "params.max_iter"),
        ("logistic_regression", {"max_iter": 10**8}, "params.max_iter"),
        ("knn_classifier", {"n_neighbors": 10**6}, "params.n_neighbors"),
    ],
)
def test_a_costly_hyperparameter_above_the_site_limit_is_a_400_naming_it(
    engineer, client_for, experiment, algorithm, params, field
):
    response = launch(client_for(engineer), experiment, algorithm=algorithm, params=params)
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]
    assert "at most" in response.json()["error"]["fields"][field]
    assert_nothing_written()


def test_the_limits_come_from_the_settings(engineer, client_for, experiment, settings):
    settings.TRAINING_PARAM_LIMITS = {**settings.TRAINING_PARAM_LIMITS, "n_estimators": 10}
    response = launch(client_for(engineer), experiment, algorithm="random_forest_classifier",
                      params={"n_estimators": 11})
    assert response.status_code == 400
    assert "at most 10 " in response.json()["error"]["fields"]["params.n_estimators"]
    response = launch(client_for(engineer), experiment, algorithm="random_forest_classifier",
                      params={"n_estimators": 10})
    assert response.status_code == 202


def test_a_grid_above_the_site_limit_is_refused(engineer, client_for, experiment, settings):
    settings.TRAINING_MAX_GRID_CANDIDATES = 3
    response = launch(client_for(engineer), experiment, algorithm="logistic_regression",
                      grid={"C": [0.1, 1, 10], "max_iter": [100, 200]})
    assert response.status_code == 400
    assert "6 combinations; at most 3" in response.json()["error"]["fields"]["grid"]
    response = launch(client_for(engineer), experiment, algorithm="logistic_regression",
                      grid={"max_iter": [100, 10**9]})
    assert response.status_code == 400 and "params.max_iter" in response.json()["error"]["fields"]
    assert_nothing_written()


def test_the_web_form_names_a_bad_seed_and_a_foreign_dataset_version(engineer, client_for, experiment):
    other = Dataset.objects.create(name="other", owner=engineer)
    foreign = make_version(other, mixed_frame(60), engineer, profile=False)
    client = client_for(engineer)
    response = client.post(f"/experiments/{experiment.pk}/runs/",
                           {"algorithm": "logistic_regression", "random_state": "x"}, follow=True)
    assert b"The random seed must be a whole number." in response.content
    response = client.post(f"/experiments/{experiment.pk}/runs/",
                           {"algorithm": "logistic_regression", "dataset_version": foreign.pk}, follow=True)
    assert b"Choose a version of this experiment&#x27;s dataset." in response.content
    assert_nothing_written()


def test_a_viewer_posting_to_the_web_forms_gets_403_whatever_the_input(viewer, client_for, experiment, dataset):
    client = client_for(viewer)
    assert client.post(f"/experiments/{experiment.pk}/runs/", {}).status_code == 403
    assert client.post(f"/experiments/{experiment.pk}/runs/", {"algorithm": "logistic_regression"}).status_code == 403
    assert client.post("/experiments/new/", {}).status_code == 403
    assert client.post("/experiments/new/", {"name": "x", "dataset": dataset.pk, "target": "target"}).status_code == 403
    assert not Experiment.objects.exclude(pk=experiment.pk).exists()
    assert_nothing_written()


def test_the_new_experiment_form_creates_one_and_names_a_bad_target(engineer, client_for, dataset):
    client = client_for(engineer)
    bad = client.post("/experiments/new/", {"name": "web-exp", "dataset": dataset.pk, "target": "nope"})
    assert bad.status_code == 400 and b"is not a column" in bad.content
    no_dataset = client.post("/experiments/new/", {"name": "web-exp", "dataset": "abc", "target": "target"})
    assert no_dataset.status_code == 400 and b"Choose a dataset that has at least one version." in no_dataset.content
    good = client.post("/experiments/new/", {"name": "web-exp", "dataset": dataset.pk, "target": "target"})
    assert good.status_code == 302
    assert Experiment.objects.get(name="web-exp").target == "target"


def test_a_retraining_launch_as_the_automation_account_needs_no_bypass(engineer, experiment):
    from apps.accounts.services import system_user
    from apps.experiments.services import run_launch

    run = run_launch(user=system_user(), experiment=experiment, algorithm="logistic_regression")
    assert run.job.status == "queued" and run.created_by.username == "mlops-system"


def test_an_experiment_waits_for_its_data_to_be_read(engineer, client_for):
    d = Dataset.objects.create(name="unread", owner=engineer)
    make_version(d, mixed_frame(60), engineer, profile=False)
    response = create(client_for(engineer), name="early", dataset=d.pk, target="target")
    assert response.status_code == 400
    assert "is still being read" in response.json()["error"]["fields"]["target"]


def test_a_refused_newest_version_leaves_experiments_on_the_last_good_one(
    engineer, client_for, dataset, django_capture_on_commit_callbacks
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from apps.core.jobs import JobFailed
    from apps.datasets.models import DatasetVersion
    from apps.datasets.services import dataset_version_profile

    ragged = b"x1,x2,color,target\n1,2,red,yes\n3,4\n"  # the header passes; the worker finds line 3
    response = client_for(engineer).post(f"/api/v1/datasets/{dataset.pk}/versions/",
                                         {"file": SimpleUploadedFile("v2.csv", ragged)})
    refused = DatasetVersion.objects.get(pk=response.json()["id"])
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(JobFailed):
        dataset_version_profile(version=refused)
    response = create(client_for(engineer), name="after-refusal", dataset=dataset.pk, target="target")
    assert response.status_code == 201, response.content
    response = launch(client_for(engineer), Experiment.objects.get(name="after-refusal"), algorithm="logistic_regression")
    assert response.status_code == 202 and response.json()["dataset_version"] != refused.pk
