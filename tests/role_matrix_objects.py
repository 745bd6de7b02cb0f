"""Objects the role matrix's URLs point at, built for each app that has them."""

from __future__ import annotations


def build(users: dict) -> dict:
    from apps.datasets.models import Dataset
    from tests.factories import make_version, mixed_frame

    engineer = users["ml_engineer"]
    dataset = Dataset.objects.create(name="matrix-data", owner=engineer)
    version = make_version(dataset, mixed_frame(60), engineer)
    from apps.experiments.services import run_launch
    from tests.factories import make_experiment

    experiment = make_experiment(engineer, dataset, name="matrix-exp")
    run = run_launch(user=engineer, experiment=experiment, algorithm="logistic_regression")
    run2 = run_launch(user=engineer, experiment=experiment, algorithm="knn_classifier")
    from apps.registry.services import model_version_register, promotion_request
    from tests.factories import evaluated, trained_run

    trained = trained_run(engineer, experiment)
    model_version = model_version_register(user=engineer, run=trained, model_name="matrix-model")
    promotion = evaluated(
        promotion_request(user=engineer, version=model_version, target_stage="staging", reason="matrix test")
    )
    from apps.deployments.models import BatchScore, Environment
    from apps.deployments.services import deployment_create, environments_ensure
    from tests.factories import production_ready_version

    environments_ensure()
    analyst = users["analyst"]
    served = production_ready_version(engineer, analyst, experiment, model_name="matrix-served")
    deployment = deployment_create(user=analyst, version=served, environment=Environment.objects.get(name="production"))
    batch = BatchScore.objects.create(deployment=deployment, input_name="in.csv", input_sha256="0" * 64, rows=1)
    from apps.monitoring.models import Alert, MonitorPolicy, Retraining
    from apps.monitoring.services import drift_check
    from tests.monitoring.conftest import send

    policy = MonitorPolicy.objects.get(model=deployment.model, environment=deployment.environment)
    window = send(deployment, hours_ago=1, rows=120, seed=1)
    report = drift_check(policy=policy, window_start=window[0], window_end=window[1])
    alert = Alert.objects.create(policy=policy, kind="drift", message="matrix", opened_at=report.window_end,
                                 opened_by=report)
    retraining = Retraining.objects.create(policy=policy, trigger="manual", source_version=served)
    from apps.maturity.models import PipelineChange

    pipeline_change = PipelineChange.objects.create(model=model_version.model, source_commit="matrix", run=trained,
                                                    created_by=engineer)
    return {
        "pipeline_change": pipeline_change,
        "deployment": deployment, "batch": batch, "policy": policy, "report": report, "alert": alert,
        "retraining": retraining,
        "dataset": dataset, "version": version, "experiment": experiment, "run": run, "run2": run2,
        "model_version": model_version, "promotion": promotion,
    }
