"""Bad input for the promotion of a version trained elsewhere: each refused with a 400 naming the field,
and nothing written (no request, no job); a version that cannot be deployed never gets anywhere."""

from __future__ import annotations

import numpy as np
import pytest

from apps.core.models import Job
from apps.datasets.models import Dataset, DatasetVersion
from apps.deployments.models import Deployment
from apps.deployments.services import environments_ensure
from apps.registry.external import trusted_type_add, trusted_type_remove
from apps.registry.models import ModelVersion, PromotionRequest, TrustedType
from tests.factories import evaluated, make_version
from tests.tracking.conftest import forest_pipeline
from tests.tracking.helpers import log_version, logged_input

pytestmark = pytest.mark.django_db

FEATURES = ["tenure", "charges", "contract"]




@pytest.fixture
def data(engineer, churn_frame):
    dataset = Dataset.objects.create(name="bad-input-churn", owner=engineer)
    return {"training": make_version(dataset, churn_frame, engineer, name="train.csv"),
            "evaluation": make_version(dataset, churn_frame.sample(frac=0.5, random_state=1), engineer,
                                       name="eval.csv"),
            "dataset": dataset}


@pytest.fixture
def version(api, data, churn_frame):
    url = f"http://testserver/datasets/versions/{data['training'].pk}/"
    log_version(api, name="bad-input-model", pipeline=forest_pipeline(churn_frame), frame=churn_frame,
                features=FEATURES, inputs=[logged_input(url, churn_frame)], commit="abc1234def")
    return ModelVersion.objects.get(model__name="bad-input-model", version=1)


def _request(client, version, **fields):
    return client.post(f"/api/v1/model-versions/{version.pk}/promotions/",
                       {"target_stage": "staging", "reason": "notebook model", **fields},
                       content_type="application/json")


def _assert_refused(response, field: str, words: str) -> dict:
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert field in error["fields"], error
    assert words in str(error["fields"][field]), error
    assert not PromotionRequest.objects.exists() and not Job.objects.filter(kind="registry.evaluate_gates").exists()
    return error


def _other_version(engineer, frame, name: str) -> DatasetVersion:
    return make_version(Dataset.objects.create(name=name, owner=engineer), frame, engineer)


def test_an_unknown_evaluation_dataset_version_is_refused(version, client_for, engineer):
    _assert_refused(_request(client_for(engineer), version, evaluation_dataset_version=987654),
                    "evaluation_dataset_version", "no dataset version #987654")


def test_an_evaluation_dataset_version_that_is_not_a_number_is_refused(version, client_for, engineer):
    _assert_refused(_request(client_for(engineer), version, evaluation_dataset_version="v2"),
                    "evaluation_dataset_version", "integer")


def test_the_runs_own_training_data_is_refused_as_evaluation_data(version, data, client_for, engineer):
    _assert_refused(_request(client_for(engineer), version, evaluation_dataset_version=data["training"].pk),
                    "evaluation_dataset_version", "did not learn from")


def test_evaluation_data_without_the_models_features_is_refused(version, client_for, engineer, churn_frame):
    other = _other_version(engineer, churn_frame.drop(columns=["charges"]), "no-charges")
    _assert_refused(_request(client_for(engineer), version, evaluation_dataset_version=other.pk),
                    "evaluation_dataset_version", "lacks the model's feature columns charges")


def test_evaluation_data_whose_columns_do_not_match_the_signature_is_refused(version, client_for, engineer,
                                                                             churn_frame):
    frame = churn_frame.assign(tenure=np.where(churn_frame["tenure"] > 30, "long", "short"))
    other = _other_version(engineer, frame, "text-tenure")
    _assert_refused(_request(client_for(engineer), version, evaluation_dataset_version=other.pk),
                    "evaluation_dataset_version", "tenure (long in the signature")


def test_evaluation_data_that_was_not_read_is_refused(version, client_for, engineer, churn_frame):
    unread = make_version(Dataset.objects.create(name="unread", owner=engineer), churn_frame, engineer, profile=False)
    DatasetVersion.objects.filter(pk=unread.pk).update(status="processing", schema=[])
    _assert_refused(_request(client_for(engineer), version, evaluation_dataset_version=unread.pk),
                    "evaluation_dataset_version", "only a version that was read")


def test_an_unknown_or_feature_target_column_is_refused(version, data, client_for, engineer):
    client = client_for(engineer)
    _assert_refused(_request(client, version, evaluation_dataset_version=data["evaluation"].pk,
                             evaluation_target="left"), "evaluation_target", "no column 'left'")
    _assert_refused(_request(client, version, evaluation_dataset_version=data["evaluation"].pk,
                             evaluation_target="tenure"), "evaluation_target", "one of the model's features")


def test_a_target_that_cannot_be_inferred_must_be_named(api, client_for, engineer, churn_frame):
    # no logged training data, two columns beyond the signature and no default target
    log_version(api, name="no-inputs-model", pipeline=forest_pipeline(churn_frame), frame=churn_frame,
                features=FEATURES)
    version = ModelVersion.objects.get(model__name="no-inputs-model")
    other = _other_version(engineer, churn_frame.assign(region="north"), "two-extra")
    error = _assert_refused(_request(client_for(engineer), version, evaluation_dataset_version=other.pk),
                            "evaluation_target", "cannot be inferred")
    assert "churned" in str(error["fields"]["evaluation_target"]) and "region" in str(error["fields"])
    response = _request(client_for(engineer), version, evaluation_dataset_version=other.pk,
                        evaluation_target="churned")
    assert response.status_code == 201 and response.json()["evaluation_target_how"] == "named with the request"


def test_without_evaluation_data_named_or_proposed_the_request_says_what_is_missing(version, client_for, engineer):
    error = _assert_refused(_request(client_for(engineer), version), "evaluation_dataset_version", "None was named")
    assert "mlflow.log_input" in str(error["fields"])


def test_the_form_refuses_bad_evaluation_data_with_a_message(version, client_for, engineer):
    response = client_for(engineer).post(f"/models/versions/{version.pk}/promote/", {
        "target_stage": "staging", "reason": "notebook model", "evaluation_dataset_version": "987654"}, follow=True)
    assert b"no dataset version #987654" in response.content
    assert not PromotionRequest.objects.exists()


def test_the_version_page_proposes_the_evaluation_data_the_run_logged(api, data, client_for, engineer, churn_frame):
    url = f"http://testserver/datasets/versions/{data['evaluation'].pk}/"
    log_version(api, name="proposed-model", pipeline=forest_pipeline(churn_frame), frame=churn_frame,
                features=FEATURES, inputs=[logged_input(url, churn_frame, context="evaluation", name="holdout")])
    version = ModelVersion.objects.get(model__name="proposed-model")
    page = client_for(engineer).get(version.get_absolute_url()).content.decode()
    assert f"proposed: {data['evaluation']}" in page and "context &#x27;evaluation&#x27;" in page
    response = _request(client_for(engineer), version)
    assert response.status_code == 201 and response.json()["evaluation_dataset_version"] == data["evaluation"].pk


def test_a_catalog_version_takes_no_evaluation_data(client_for, engineer, data):
    from apps.registry.services import model_version_register
    from tests.factories import FittedRunFactory, make_experiment, mixed_frame

    dataset = Dataset.objects.create(name="catalog-data", owner=engineer)
    dv = make_version(dataset, mixed_frame(200, seed=2), engineer)
    run = FittedRunFactory(experiment=make_experiment(engineer, dataset, name="catalog"), dataset_version=dv)
    catalog = model_version_register(user=engineer, run=run, model_name="catalog-model")
    _assert_refused(_request(client_for(engineer), catalog, evaluation_dataset_version=data["evaluation"].pk),
                    "evaluation_dataset_version", "trained here")


def test_a_pickle_version_is_refused_at_request_with_the_reason(api, client_for, engineer, data, churn_frame):
    log_version(api, name="pickled-model", pipeline=forest_pipeline(churn_frame), frame=churn_frame,
                features=FEATURES, fmt="cloudpickle")
    version = ModelVersion.objects.get(model__name="pickled-model")
    assert not version.deployable
    error = _assert_refused(_request(client_for(engineer), version, evaluation_dataset_version=data["evaluation"].pk),
                            "model_version", "cloudpickle")
    assert "never" in str(error["fields"]["model_version"])
    page = client_for(engineer).get(version.get_absolute_url()).content.decode()
    assert 'data-testid="promotion-refused"' in page and 'data-testid="promotion-form"' not in page


def test_a_type_removed_from_the_allow_list_stops_approval_deployment_and_loading(
        api, data, client_for, engineer, analyst, admin_user, churn_frame):
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import Pipeline

    from apps.deployments import runtime

    environments_ensure()
    numeric = ["tenure", "charges"]
    pipeline = Pipeline([("knn", KNeighborsClassifier(algorithm="ball_tree"))]).fit(
        churn_frame[numeric], churn_frame["churned"])
    ball_tree = "sklearn.neighbors._ball_tree.BallTree"
    trusted_type_add(user=admin_user, name=ball_tree, note="tests")
    log_version(api, name="ball-tree-model", pipeline=pipeline, frame=churn_frame, features=numeric)
    version = ModelVersion.objects.get(model__name="ball-tree-model")
    assert version.deployable and ball_tree in version.untrusted_types
    response = _request(client_for(engineer), version, evaluation_dataset_version=data["evaluation"].pk,
                        evaluation_target="churned")
    assert response.status_code == 201, response.content
    promotion = evaluated(PromotionRequest.objects.get(pk=response.json()["id"]))

    trusted_type_remove(user=admin_user, entry=TrustedType.objects.get(name=ball_tree))
    approve = client_for(analyst).post(f"/api/v1/promotions/{promotion.pk}/approve/",
                                       {"comment": "ok", "override_reason": "accepted in tests"},
                                       content_type="application/json")
    assert approve.status_code == 400 and ball_tree in approve.content.decode()
    version.refresh_from_db()
    assert version.stage == "none" and PromotionRequest.objects.get(pk=promotion.pk).status == "pending"

    # even in a stage (it was approved before the removal), it is never deployed nor loaded
    ModelVersion.objects.filter(pk=version.pk).update(stage="staging")
    deploy = client_for(analyst).post("/api/v1/deployments/", {"model_version": version.pk, "environment": "staging"},
                                      content_type="application/json")
    assert deploy.status_code == 400 and ball_tree in deploy.content.decode()
    assert not Deployment.objects.exists()
    version.refresh_from_db()
    with pytest.raises(runtime.ArtifactRefused, match="no longer on our allow-list"):
        runtime.get_loaded(version)
