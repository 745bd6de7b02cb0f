"""Rows for the OpenAPI fuzz pass to hit, and the schemathesis hooks that draw path ids and body
references from them (real ones as well as missing ones), so generated requests reach the services."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from apps.accounts.services import api_token_create
from apps.core import roles
from apps.core.models import Job, JobStatus
from apps.datasets.models import Dataset, DatasetVersion
from apps.deployments.models import Deployment, Environment
from apps.experiments.models import Experiment, Run
from apps.maturity.models import PipelineChange
from apps.ml.catalog import list_algorithms
from apps.registry.models import ModelVersion, PromotionRequest, PromotionStatus, RegisteredModel, Stage
from tests.factories import (
    DatasetVersionFactory,
    DeploymentFactory,
    DriftReportFactory,
    ExperimentFactory,
    FittedRunFactory,
    JobFactory,
    ModelVersionFactory,
    PredictionLogFactory,
    PromotionRequestFactory,
    RunFactory,
    UserFactory,
    policy_of,
)

ROLES = (roles.VIEWER, roles.ML_ENGINEER, roles.ANALYST, roles.SERVICE, roles.ADMIN)
MISSING_ID = 2_000_000_000  # an id no row has (and still a 32-bit integer)

# The first path segment under /api/v1/ names the model its {id} points at.
PATH_MODELS = {
    "jobs": Job, "datasets": Dataset, "dataset-versions": DatasetVersion, "experiments": Experiment, "runs": Run,
    "models": RegisteredModel, "model-versions": ModelVersion, "promotions": PromotionRequest,
    "deployments": Deployment, "pipeline-changes": PipelineChange,
}


@dataclass
class FuzzWorld:
    users: dict
    ids: dict[str, list[int]] = field(default_factory=dict)
    body_values: dict[str, list] = field(default_factory=dict)
    model_names: list[str] = field(default_factory=list)

    def token_headers(self, role: str) -> dict[str, str]:
        _, key = api_token_create(user=self.users[role], name="fuzz")
        return {"Authorization": f"Token {key}"}


def fuzz_world() -> FuzzWorld:
    """A little of everything: profiled and unprofiled versions, queued, failed and fitted runs, versions
    in each stage, pending and decided promotions, deployments (one replaced, so rollback applies),
    logged predictions, a drift report, a pipeline change and jobs in every state."""
    engineer = UserFactory(username="fuzz-engineer", engineer=True)
    analyst = UserFactory(username="fuzz-analyst", analyst=True)
    users = {roles.VIEWER: UserFactory(username="fuzz-viewer", viewer=True), roles.ML_ENGINEER: engineer,
             roles.ANALYST: analyst, roles.SERVICE: UserFactory(username="fuzz-service", service=True),
             roles.ADMIN: UserFactory(username="fuzz-admin", admin=True)}
    version = DatasetVersionFactory(dataset__name="fuzz-data", dataset__owner=engineer, created_by=engineer)
    DatasetVersionFactory(dataset__name="fuzz-unread", dataset__owner=engineer, created_by=engineer, profiled=False)
    experiment = ExperimentFactory(name="fuzz-exp", dataset=version.dataset, created_by=engineer)
    RunFactory(experiment=experiment, created_by=engineer)
    RunFactory(experiment=experiment, created_by=engineer, status=JobStatus.FAILED)
    finished = FittedRunFactory(experiment=experiment, created_by=engineer)
    unpromoted = ModelVersionFactory(run=finished, model_name="fuzz-model")
    PromotionRequestFactory(model_version=unpromoted)
    staged = ModelVersionFactory(run=FittedRunFactory(experiment=experiment, created_by=engineer),
                                 model_name="fuzz-model", stage=Stage.STAGING, approver=analyst)
    PromotionRequestFactory(model_version=staged, target_stage=Stage.PRODUCTION, status=PromotionStatus.REJECTED,
                            decided_by=analyst)
    first = DeploymentFactory(environment="staging", model_version=staged, deployed_by=analyst)
    served = ModelVersionFactory(run=FittedRunFactory(experiment=experiment, created_by=engineer),
                                 model_name="fuzz-served", stage=Stage.PRODUCTION, approver=analyst)
    deployment = DeploymentFactory(model_version=served, deployed_by=analyst)
    DeploymentFactory(environment="staging", model_version=ModelVersionFactory(
        run=FittedRunFactory(experiment=experiment, created_by=engineer), model_name="fuzz-model",
        stage=Stage.STAGING, approver=analyst), deployed_by=analyst)  # replaces `first`
    logs = PredictionLogFactory.bulk(5, deployment=deployment)
    DriftReportFactory(policy=policy_of(deployment))
    PipelineChange.objects.create(model=unpromoted.model, source_commit="fuzz", run=finished, created_by=engineer)
    for status in (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.FAILED):
        JobFactory(status=status, created_by=engineer)
    assert first.pk in set(Deployment.objects.values_list("previous_id", flat=True))
    world = FuzzWorld(users=users, model_names=["fuzz-served", "fuzz-model", "no-such-model"])
    for segment, model in PATH_MODELS.items():
        world.ids[segment] = [*model.objects.order_by("pk").values_list("pk", flat=True), MISSING_ID]
    environments = [*Environment.objects.values_list("name", flat=True), "nowhere"]
    world.body_values = {
        "dataset": world.ids["datasets"], "dataset_version": world.ids["dataset-versions"],
        "model_version": world.ids["model-versions"], "environment": environments,
        "request_id": [str(log.request_id) for log in logs] + [str(uuid.uuid4())],
        "target_stage": [*Stage.values, "bogus"],
        "algorithm": [a["key"] for a in list_algorithms()] + ["no-such-algorithm"],
        "target": ["target", "x1", "color", "no-such-column"],
        "task_type": ["classification", "regression", ""], "label": ["yes", "no", 1, None],
    }
    world.body_values["environments"] = environments
    return world


def _pick(pool: list, drawn) -> object:
    """A pool member chosen by the generated value, so Hypothesis still steers (and shrinks) the choice."""
    index = drawn if isinstance(drawn, int) else len(str(drawn))
    return pool[index % len(pool)]


def install_hooks(schema, world: FuzzWorld) -> None:
    """Real ids in paths and bodies, most of the time (the rest stays what the generator drew)."""

    @schema.hook("map_path_parameters")
    def real_path_ids(context, path_parameters):
        if not isinstance(path_parameters, dict):
            return path_parameters
        path = context.operation.path
        segment = path.removeprefix("/api/v1/").split("/", 1)[0]
        if "id" in path_parameters and segment in world.ids and isinstance(path_parameters["id"], int):
            path_parameters["id"] = _pick(world.ids[segment], path_parameters["id"])
        if isinstance(path_parameters.get("model"), str) and path_parameters["model"].isalnum():
            path_parameters["model"] = _pick(world.model_names, path_parameters["model"])
        if isinstance(path_parameters.get("environment"), str) and path_parameters["environment"].isalnum():
            path_parameters["environment"] = _pick(world.body_values["environments"], path_parameters["environment"])
        return path_parameters

    @schema.hook("map_body")
    def real_references(context, body):
        if isinstance(body, dict):
            for name, pool in world.body_values.items():
                if name in body and not isinstance(body[name], (dict, list)):
                    body[name] = _pick(pool, body[name])
        return body
