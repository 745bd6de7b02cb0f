"""Bad input on the tracking routes: MLflow's error JSON with the right status, and nothing half-written."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from apps.experiments.models import ArtifactFile, MetricPoint, Run
from apps.registry.models import ModelVersion
from tests.conftest import make_user
from tests.tracking.helpers import ARTIFACTS, Protocol, assert_mlflow_error, crafted_skops, skops_mlmodel

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def artifact_limit(settings):
    settings.TRACKING_ARTIFACT_MAX_BYTES = 10_000


@pytest.fixture
def run_info(api):
    return api.run(api.experiment())


def stored_files(media: Path) -> list[Path]:
    return [p for p in (media / "mlflow").rglob("*") if p.is_file()] if (media / "mlflow").exists() else []


def test_unknown_ids_are_resource_does_not_exist(api):
    assert_mlflow_error(api.get("runs/get", run_id="nope"), 404, "RESOURCE_DOES_NOT_EXIST")
    assert_mlflow_error(api.get("experiments/get", experiment_id="999999"), 404, "RESOURCE_DOES_NOT_EXIST")
    assert_mlflow_error(api.get("experiments/get-by-name", experiment_name="none"), 404, "RESOURCE_DOES_NOT_EXIST")
    assert_mlflow_error(api.get("registered-models/get", name="none"), 404, "RESOURCE_DOES_NOT_EXIST")
    assert_mlflow_error(api.get("logged-models/m-0000"), 404, "RESOURCE_DOES_NOT_EXIST")
    assert_mlflow_error(api.post("runs/log-metric", {"run_id": "nope", "key": "k", "value": 1, "timestamp": 1}),
                        404, "RESOURCE_DOES_NOT_EXIST")
    assert_mlflow_error(api.get(f"{ARTIFACTS}/1/nope/artifacts/x"), 404, "RESOURCE_DOES_NOT_EXIST")


def test_odd_characters_in_ids_are_invalid_not_server_errors(api, run_info):
    assert_mlflow_error(api.get("experiments/get", experiment_id="\u00b2"), 404, "RESOURCE_DOES_NOT_EXIST")
    assert_mlflow_error(api.get("runs/get", run_id="a\x00b"), 400, "INVALID_PARAMETER_VALUE")
    assert_mlflow_error(api.call("DELETE", "logged-models/%00/tags/k"), 400, "INVALID_PARAMETER_VALUE")


def test_a_param_relogged_with_another_value_is_refused_and_the_same_value_is_accepted(api, run_info):
    body = {"run_id": run_info["run_id"], "key": "lr", "value": "0.1"}
    assert api.post("runs/log-parameter", body).status_code == 200
    assert api.post("runs/log-parameter", body).status_code == 200
    error = assert_mlflow_error(api.post("runs/log-parameter", {**body, "value": "0.2"}), 400,
                                "INVALID_PARAMETER_VALUE")
    assert "lr" in error["message"]
    assert Run.objects.get(uuid=run_info["run_id"]).params == {"lr": "0.1"}


def test_a_batch_with_one_bad_item_writes_nothing(api, run_info):
    body = {"run_id": run_info["run_id"], "metrics": [{"key": "ok", "value": 1, "timestamp": 1, "step": 0}],
            "params": [{"key": "bad key?", "value": "x"}]}
    assert_mlflow_error(api.post("runs/log-batch", body), 400, "INVALID_PARAMETER_VALUE")
    assert not MetricPoint.objects.exists()
    assert Run.objects.get(uuid=run_info["run_id"]).params == {}


@pytest.mark.parametrize("route,body,field", [
    ("experiments/create", {"name": 7}, "name"),
    ("runs/create", {"experiment_id": 7}, "experiment_id"),
    ("runs/log-parameter", {"run_id": "x", "key": "k", "value": 0.5}, "value"),
    ("runs/log-metric", {"run_id": "x", "key": "k", "value": "high", "timestamp": 1}, "value"),
    ("runs/log-batch", {"run_id": "x", "params": {"k": "v"}}, "params"),
])
def test_numbers_where_strings_belong_are_invalid_parameter_values(api, route, body, field):
    error = assert_mlflow_error(api.post(route, body), 400, "INVALID_PARAMETER_VALUE")
    assert field in error["message"]


@pytest.mark.parametrize("path", ["{root}/../../etc/passwd", "{root}/a/../../b", "{root}/a\\b", "{root}/a%00b",
                                  "%2Fetc/passwd", "{root}/./x"])
def test_unsafe_artifact_paths_are_refused(api, run_info, path, media):
    root = run_info["artifact_uri"][len("mlflow-artifacts:/"):]
    response = api.put_artifact(path.format(root=root), b"data")
    assert_mlflow_error(response, 400, "INVALID_PARAMETER_VALUE")
    assert not ArtifactFile.objects.exists() and not stored_files(media)


def test_an_artifact_over_the_limit_leaves_no_file(api, run_info, media):
    root = run_info["artifact_uri"][len("mlflow-artifacts:/"):]
    assert_mlflow_error(api.put_artifact(f"{root}/big.bin", b"x" * 10_001), 413, "INVALID_PARAMETER_VALUE")
    assert not ArtifactFile.objects.exists() and not stored_files(media)
    assert api.put_artifact(f"{root}/small.bin", b"x" * 10_000).status_code == 200
    assert [p.stat().st_size for p in stored_files(media)] == [10_000]


def test_an_unparsable_filter_and_an_unknown_experiment_in_a_search_are_refused(api, run_info):
    experiment_id = run_info["experiment_id"]
    for bad in ("metrics.acc >", "params.x = 1", "tags.`x = 'y'", "foo.bar = 'x'", "metrics.a > 1 OR metrics.b < 2"):
        assert_mlflow_error(api.post("runs/search", {"experiment_ids": [experiment_id], "filter": bad}), 400,
                            "INVALID_PARAMETER_VALUE")
    assert_mlflow_error(api.post("runs/search", {"experiment_ids": ["424242"]}), 404, "RESOURCE_DOES_NOT_EXIST")
    ok = api.post("runs/search", {"experiment_ids": [experiment_id],
                                  "filter": "attributes.status = 'RUNNING' and tags.`mlflow.runName` LIKE 'run-%'"})
    assert [r["info"]["run_id"] for r in ok.json()["runs"]] == [run_info["run_id"]]


def test_a_viewer_and_a_service_token_cannot_write(db, engineer, token_for, run_info):
    viewer = Protocol(Client(), token_for(make_user("v1", group="viewer")))
    service = Protocol(Client(), token_for(make_user("svc", group="service")))
    body = {"run_id": run_info["run_id"], "key": "k", "value": "v"}
    assert_mlflow_error(viewer.post("runs/set-tag", body), 403, "PERMISSION_DENIED")
    assert_mlflow_error(viewer.post("experiments/create", {"name": "viewer-exp"}), 403, "PERMISSION_DENIED")
    assert viewer.get("runs/get", run_id=run_info["run_id"]).status_code == 200
    assert_mlflow_error(service.post("runs/set-tag", body), 403, "PERMISSION_DENIED")
    assert_mlflow_error(service.get("runs/get", run_id=run_info["run_id"]), 403, "PERMISSION_DENIED")
    assert "k" not in Run.objects.get(uuid=run_info["run_id"]).tags


def test_missing_or_wrong_credentials_are_unauthenticated(db, engineer):
    assert_mlflow_error(Protocol(Client(), None).get("experiments/search"), 401, "UNAUTHENTICATED")
    assert_mlflow_error(Protocol(Client(), "mlw_wrong").get("experiments/search"), 401, "UNAUTHENTICATED")
    basic = Client(HTTP_AUTHORIZATION="Basic ZW5naW5lZXI6d3Jvbmc=")  # engineer:wrong
    assert_mlflow_error(basic.get("/mlflow/api/2.0/mlflow/experiments/search"), 401, "UNAUTHENTICATED")
    good = Client(HTTP_AUTHORIZATION="Basic ZW5naW5lZXI6cHctZm9yLXRlc3RzLTE=")  # engineer:pw-for-tests-1
    assert good.get("/mlflow/api/2.0/mlflow/experiments/search").status_code == 200


def test_unknown_routes_and_wrong_methods_answer_json(api):
    assert_mlflow_error(api.get("no/such/route"), 404, "ENDPOINT_NOT_FOUND")
    assert_mlflow_error(api.get("/mlflow/anything/else/"), 404, "ENDPOINT_NOT_FOUND")
    response = api.call("PUT", "runs/get")
    assert_mlflow_error(response, 405, "BAD_REQUEST")
    assert response["Allow"] == "GET"


CANARY = "tests_tracking_canary_module"


@pytest.fixture
def canary(tmp_path, monkeypatch):
    """A module that leaves a file behind if anything ever imports it."""
    marker = tmp_path / "imported"
    (tmp_path / f"{CANARY}.py").write_text(f"open({str(marker)!r}, 'w').write('imported')\ndef boom(): pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield marker
    sys.modules.pop(CANARY, None)


@pytest.mark.parametrize("module,name", [("builtins", "eval"), ("posix", "system"), (CANARY, "boom")])
def test_a_crafted_skops_model_trusting_itself_is_refused_and_never_loaded(api, run_info, canary, module, name,
                                                                           client_for, engineer):
    experiment_id = run_info["experiment_id"]
    info = api.upload_model(experiment_id, run_info["run_id"], skops_mlmodel([f"{module}.{name}"]),
                            {"model.skops": crafted_skops(module, name)})
    assert api.post("registered-models/create", {"name": "crafted"}).status_code == 200
    response = api.post("model-versions/create", {"name": "crafted", "source": f"models:/{info['model_id']}",
                                                  "model_id": info["model_id"]})
    assert response.json()["model_version"]["status"] == "READY"
    version = ModelVersion.objects.get(model__name="crafted")
    assert not version.deployable
    assert any(f"{module}.{name}" in reason for reason in version.not_deployable_reasons)
    assert version.declared_trusted_types == [f"{module}.{name}"]
    assert client_for(engineer).get(version.get_absolute_url()).status_code == 200
    assert not canary.exists() and CANARY not in sys.modules


def test_a_pickle_model_is_stored_and_says_how_to_use_skops(api, run_info):
    info = api.upload_model(run_info["experiment_id"], run_info["run_id"],
                            skops_mlmodel([], model_file="model.pkl", fmt="cloudpickle"),
                            {"model.pkl": os.urandom(64)})
    api.post("registered-models/create", {"name": "pickled"})
    api.post("model-versions/create", {"name": "pickled", "source": f"models:/{info['model_id']}"})
    version = ModelVersion.objects.get(model__name="pickled")
    assert not version.deployable and version.artifact_sha256
    assert any('serialization_format="skops"' in r for r in version.not_deployable_reasons)


def test_files_of_a_registered_model_cannot_be_replaced(api, run_info):
    info = api.upload_model(run_info["experiment_id"], run_info["run_id"], skops_mlmodel([]),
                            {"model.skops": crafted_skops("builtins", "eval")})
    api.post("registered-models/create", {"name": "frozen"})
    api.post("model-versions/create", {"name": "frozen", "source": f"models:/{info['model_id']}"})
    root = info["artifact_uri"][len("mlflow-artifacts:/"):]
    before = ArtifactFile.objects.get(path=f"{root}/model.skops").sha256
    assert_mlflow_error(api.put_artifact(f"{root}/model.skops", b"other bytes"), 400, "INVALID_PARAMETER_VALUE")
    assert ArtifactFile.objects.get(path=f"{root}/model.skops").sha256 == before
    assert len([p for p in Path(settings.MEDIA_ROOT, "mlflow").rglob("*") if p.is_file()]) == 2
