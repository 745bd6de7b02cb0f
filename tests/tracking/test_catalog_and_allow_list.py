"""Catalog runs are visible to the client read-only; logged datasets link to our versions; the
allow-list grows only by admins, with scikit-learn, numpy and scipy names, each addition audited."""

from __future__ import annotations

import pytest

from apps.core.models import AuditEvent
from apps.datasets.models import Dataset
from apps.experiments.models import RunInput
from apps.registry.models import ModelVersion, TrustedType
from tests.factories import make_experiment, make_version, mixed_frame, trained_run
from tests.tracking.helpers import assert_mlflow_error, crafted_skops, skops_mlmodel

pytestmark = pytest.mark.django_db




@pytest.fixture
def catalog_run(engineer):
    data = Dataset.objects.create(name="visible-data", owner=engineer)
    make_version(data, mixed_frame(120, seed=5), engineer)
    return trained_run(engineer, make_experiment(engineer, data, name="visible-exp"), "logistic_regression",
                       {"C": 0.5})


def test_a_catalog_run_reads_like_an_mlflow_run_and_refuses_writes(api, catalog_run):
    run = api.get("runs/get", run_id=catalog_run.uuid).json()["run"]
    assert run["info"]["status"] == "FINISHED" and run["info"]["experiment_id"] == str(catalog_run.experiment_id)
    assert {"key": "C", "value": "0.5"} in run["data"]["params"]
    assert {m["key"] for m in run["data"]["metrics"]} >= {"f1", "accuracy"}
    found = api.post("runs/search", {"experiment_ids": [str(catalog_run.experiment_id)],
                                     "filter": "metrics.f1 >= 0 and params.C = '0.5'"}).json()["runs"]
    assert [r["info"]["run_id"] for r in found] == [catalog_run.uuid]
    error = assert_mlflow_error(api.post("runs/log-metric", {"run_id": catalog_run.uuid, "key": "x", "value": 1,
                                                             "timestamp": 1}), 400, "INVALID_PARAMETER_VALUE")
    assert "read-only" in error["message"]
    assert_mlflow_error(api.post("runs/create", {"experiment_id": str(catalog_run.experiment_id)}), 400,
                        "INVALID_PARAMETER_VALUE")


def test_a_run_started_without_an_experiment_goes_to_mlflows_default_experiment(api):
    first = api.post("runs/create", {"experiment_id": "0"})
    second = api.post("runs/create", {"experiment_id": "0"})
    assert first.status_code == second.status_code == 200
    assert first.json()["run"]["info"]["experiment_id"] == "0"
    assert api.get("experiments/get", experiment_id="0").json()["experiment"]["name"] == "Default"


def test_a_logged_dataset_whose_digest_is_our_sha256_links_to_our_version(api, engineer):
    data = Dataset.objects.create(name="linked", owner=engineer)
    version = make_version(data, mixed_frame(50, seed=9), engineer)
    run = api.run(api.experiment("linking"))
    dataset = {"name": "d", "digest": version.sha256[:16], "source_type": "local", "source": "{}"}
    assert api.post("runs/log-inputs", {"run_id": run["run_id"], "datasets": [{"dataset": dataset}]}).status_code == 200
    logged = RunInput.objects.get(run__uuid=run["run_id"])
    assert logged.dataset_version == version and "sha256" in logged.link_reason


def _register(api, name: str, module: str, cls: str) -> ModelVersion:
    run = api.run(api.experiment(f"{name}-exp"))
    info = api.upload_model(run["experiment_id"], run["run_id"], skops_mlmodel([]),
                            {"model.skops": crafted_skops(module, cls)})
    api.post("registered-models/create", {"name": name})
    api.post("model-versions/create", {"name": name, "source": f"models:/{info['model_id']}"})
    return ModelVersion.objects.get(model__name=name)


def test_an_admin_trusts_a_scikit_learn_type_and_the_next_version_is_judged_with_it(api, admin_user, client_for,
                                                                                    engineer):
    before = _register(api, "needs-type", "sklearn.some_module", "Thing")
    assert not before.deployable and "sklearn.some_module.Thing" in " ".join(before.not_deployable_reasons)
    admin = client_for(admin_user)
    refused = admin.post("/admin/registry/trustedtype/add/", {"name": "builtins.eval", "note": "no"})
    assert refused.status_code == 200 and not TrustedType.objects.exists()
    assert client_for(engineer).post("/admin/registry/trustedtype/add/", {"name": "sklearn.x.Y"}).status_code == 302
    assert not TrustedType.objects.exists()
    added = admin.post("/admin/registry/trustedtype/add/", {"name": "sklearn.some_module.Thing", "note": "reviewed"})
    assert added.status_code == 302
    assert AuditEvent.objects.filter(action="trusted_type.add", actor=admin_user).count() == 1
    after = _register(api, "needs-type-2", "sklearn.some_module", "Thing")
    assert after.deployable, after.not_deployable_reasons


def test_pages_of_later_apps_still_open_once_an_external_version_exists(api, client_for, viewer):
    _register(api, "external-only", "builtins", "eval")
    browser = client_for(viewer)
    for url in ("/", "/maturity/", "/models/", "/deployments/", "/monitoring/", "/experiments/"):
        assert browser.get(url).status_code == 200, url
