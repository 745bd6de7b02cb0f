"""The gates of a version trained elsewhere: chosen in the form, and scored against the champion on the same
rows of the evaluation data (our measurement, not the metrics the client logged)."""

from __future__ import annotations

import pytest
from django.test import Client

from apps.datasets.models import Dataset
from apps.registry.models import ModelVersion, PromotionRequest
from apps.registry.services import promotion_approve, promotion_request
from tests.factories import evaluated, make_version
from tests.tracking.conftest import forest_pipeline
from tests.tracking.helpers import Protocol, log_version, logged_input

pytestmark = pytest.mark.django_db

FEATURES = ["tenure", "charges", "contract"]



@pytest.fixture
def data(engineer, churn_frame):
    dataset = Dataset.objects.create(name="gates-churn", owner=engineer)
    return {"training": make_version(dataset, churn_frame, engineer, name="train.csv"),
            "evaluation": make_version(dataset, churn_frame.sample(frac=0.6, random_state=8), engineer,
                                       name="eval.csv")}


def _log(engineer, token, frame, data, pipeline):
    url = f"http://testserver/datasets/versions/{data['training'].pk}/"
    return log_version(Protocol(Client(), token), name="gated-ext", pipeline=pipeline, frame=frame,
                       features=FEATURES, inputs=[logged_input(url, frame)])


def test_the_form_requests_a_promotion_on_the_evaluation_data_chosen(engineer, token_for, churn_frame, data,
                                                                     client_for):
    _log(engineer, token_for(engineer), churn_frame, data, forest_pipeline(churn_frame))
    version = ModelVersion.objects.get(model__name="gated-ext")
    page = client_for(engineer).get(version.get_absolute_url()).content.decode()
    assert f'<option value="{data["evaluation"].pk}">' in page  # offered: read, with the features
    assert f'<option value="{data["training"].pk}">' not in page  # its own training data is never offered
    response = client_for(engineer).post(f"/models/versions/{version.pk}/promote/", {
        "target_stage": "staging", "reason": "from the form", "evaluation_dataset_version": data["evaluation"].pk})
    promotion = PromotionRequest.objects.get(model_version=version)
    assert response.status_code == 302 and response["Location"] == promotion.get_absolute_url()
    assert promotion.evaluation_dataset_version == data["evaluation"] and promotion.evaluation_target == "churned"


def test_challenger_and_champion_are_scored_on_the_same_rows_of_the_evaluation_data(
        engineer, analyst, token_for, churn_frame, data):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    token = token_for(engineer)
    champion_pipe = forest_pipeline(churn_frame)
    _log(engineer, token, churn_frame, data, champion_pipe)
    champion = ModelVersion.objects.get(model__name="gated-ext", version=1)
    first = evaluated(promotion_request(user=engineer, version=champion, target_stage="staging", reason="first",
                                        evaluation_dataset_version=data["evaluation"].pk))
    promotion_approve(user=analyst, promotion=first, comment="ok",
                      override_reason="accepted in tests" if first.failed_gates else "")
    # a weaker challenger: the charges alone, through a pipeline of its own
    challenger_pipe = Pipeline([("model", LogisticRegression())]).fit(churn_frame[["charges"]], churn_frame["churned"])
    log_version(Protocol(Client(), token), name="gated-ext", pipeline=challenger_pipe, frame=churn_frame,
                features=["charges"], experiment_name="gated-ext-exp-2")
    challenger = ModelVersion.objects.get(model__name="gated-ext", version=2)
    promotion = evaluated(promotion_request(user=engineer, version=challenger, target_stage="staging",
                                            reason="cheaper", evaluation_dataset_version=data["evaluation"].pk,
                                            evaluation_target="churned"))
    assert promotion.champion == champion
    same = promotion.evidence["same_holdout"]
    evaluation = churn_frame.loc[churn_frame.sample(frac=0.6, random_state=8).index]
    assert same["rows"] == len(evaluation) == same["champion"]["rows"]
    truth = evaluation["churned"]
    expected = {"challenger": challenger_pipe.predict(evaluation[["charges"]]),
                "champion": champion_pipe.predict(evaluation[FEATURES])}
    for side, predicted in expected.items():
        assert same[side]["metrics"]["accuracy"] == pytest.approx(float((predicted == truth).mean())), side
    gate = next(g for g in promotion.gates if g["key"] == "champion")
    assert str(champion) in gate["detail"] and gate["passed"] is False  # the forest is far better here
