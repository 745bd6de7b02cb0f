"""factory_boy factories for the suite's rows, and the builders the tests have always used.

A row is made by the service that makes it in production (so its audit events, jobs and columns
are what the product writes); pure records (jobs, alerts, log rows) are written directly. Nothing
here trains: a run that must predict is fitted in-process (``tests.support.fitting``);
``trained_run`` and ``train_inline`` remain for the tests that are about training."""

from __future__ import annotations

import os
import uuid
from datetime import timedelta

import factory
import pandas as pd
from django.contrib.auth.models import Group, User
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone
from factory.django import DjangoModelFactory

from apps.core import roles
from apps.core.jobs import JobContext
from apps.core.models import AuditEvent, Job, JobStatus
from apps.core.services import audit_record
from apps.datasets.models import Dataset, DatasetVersion
from apps.datasets.services import (
    PROFILE_JOB,
    dataset_version_create,
    dataset_version_profile,
    load_version_frame,
)
from apps.deployments.models import BatchScore, Deployment, Environment, PredictionLog
from apps.deployments.services import deployment_create, environments_ensure
from apps.experiments.models import Experiment, Run, RunSource
from apps.experiments.services import experiment_create, run_launch, run_train
from apps.ml.train import library_versions
from apps.monitoring.models import Alert, AlertStatus, DriftReport, MonitorPolicy, Retraining
from apps.monitoring.services import drift_check
from apps.registry.models import ModelVersion, PromotionRequest, PromotionStatus, RegisteredModel, Stage
from apps.registry.services import (
    model_version_register,
    promotion_approve,
    promotion_evaluate_gates,
    promotion_reject,
    promotion_request,
)
from tests.support.fitting import fitted_artifact
from tests.support.frames import csv_file, mixed_frame

PASSWORD = "pw-for-tests-1"


# --- people ------------------------------------------------------------------------------------------


class UserFactory(DjangoModelFactory):
    """A user; ``UserFactory(analyst=True)`` (or viewer, engineer, admin) gives them that role."""

    class Meta:
        model = User

    class Params:
        viewer = factory.Trait(roles=[roles.VIEWER])
        engineer = factory.Trait(roles=[roles.ML_ENGINEER])
        analyst = factory.Trait(roles=[roles.ANALYST])
        service = factory.Trait(roles=[roles.SERVICE])
        admin = factory.Trait(is_staff=True, is_superuser=True)

    username = factory.Sequence(lambda n: f"user-{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password(PASSWORD)
    is_staff = False
    is_superuser = False
    roles = factory.LazyFunction(list)

    @classmethod
    def _create(cls, model_class, *args, roles=(), **kwargs):
        user = super()._create(model_class, *args, **kwargs)
        groups = list(Group.objects.filter(name__in=roles))
        missing = set(roles) - {g.name for g in groups}
        if missing:
            raise LookupError(f"no role group named {sorted(missing)} (do the role groups exist in this test?)")
        user.groups.add(*groups)
        return user


def make_user(username: str, *, group: str | None = None, staff: bool = False, password: str = PASSWORD):
    return UserFactory(username=username, roles=[group] if group else [], is_staff=staff, is_superuser=staff,
                       password=password)


# --- data --------------------------------------------------------------------------------------------


class DatasetFactory(DjangoModelFactory):
    class Meta:
        model = Dataset

    name = factory.Sequence(lambda n: f"dataset-{n}")
    description = "test data"
    tags = factory.LazyFunction(lambda: ["test"])
    owner = factory.SubFactory(UserFactory, engineer=True)


class DatasetVersionFactory(DjangoModelFactory):
    """A small CSV stored by ``dataset_version_create`` and profiled by ``dataset_version_profile``
    (schema, profile, validation and drift reference are our own code's output); the profiling
    job is then finished as the worker would. ``profiled=False`` leaves it queued, unprofiled."""

    class Meta:
        model = DatasetVersion

    class Params:
        rows = 200
        seed = factory.Sequence(lambda n: n)

    dataset = factory.SubFactory(DatasetFactory)
    frame = factory.LazyAttribute(lambda o: mixed_frame(o.rows, seed=o.seed))
    created_by = factory.LazyAttribute(lambda o: o.dataset.owner)
    original_filename = "data.csv"
    profiled = True

    @classmethod
    def _create(cls, model_class, *, dataset, frame, created_by, original_filename, profiled):
        path = csv_file(frame)
        try:
            version, _ = dataset_version_create(user=created_by, dataset=dataset, path=path,
                                                original_filename=original_filename)
        finally:
            os.unlink(path)
        if profiled:
            result = dataset_version_profile(version=version)
            _finish(Job.objects.filter(kind=PROFILE_JOB, target_id=version.pk, status=JobStatus.QUEUED),
                    JobStatus.SUCCEEDED, message=result["message"])
            version.refresh_from_db()
        return version


def make_version(dataset, frame: pd.DataFrame, user, *, profile: bool = True, name: str = "data.csv"):
    """A version created by the real service, profiled in-process by the job's own service."""
    return DatasetVersionFactory(dataset=dataset, frame=frame, created_by=user, profiled=profile,
                                 original_filename=name)


# --- experiments and runs ----------------------------------------------------------------------------


class ExperimentFactory(DjangoModelFactory):
    """An experiment made by ``experiment_create`` on a dataset that has (or is given) a profiled version."""

    class Meta:
        model = Experiment

    name = factory.Sequence(lambda n: f"experiment-{n}")
    dataset = factory.SubFactory(DatasetFactory)
    target = "target"
    created_by = factory.LazyAttribute(lambda o: o.dataset.owner)

    @classmethod
    def _create(cls, model_class, *, name, dataset, target, created_by, **options):
        if not DatasetVersion.objects.filter(dataset=dataset).exists():
            DatasetVersionFactory(dataset=dataset, created_by=created_by)
        return experiment_create(user=created_by, name=name, dataset=dataset, target=target, **options)


def make_experiment(user, dataset, *, target: str = "target", name: str = "exp", **kwargs):
    return ExperimentFactory(created_by=user, dataset=dataset, target=target, name=name, **kwargs)


def _finish(jobs, status: str, *, message: str = "", error: str = "") -> None:
    """End (or start) jobs the way the worker leaves them."""
    now = timezone.now()
    fields = {"status": status, "message": message or status.capitalize(), "started_at": now, "heartbeat_at": now}
    if status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED):
        fields.update(finished_at=now, progress=100 if status == JobStatus.SUCCEEDED else 0, error=error)
    jobs.update(attempt=1, worker="factory@tests", **fields)


class RunFactory(DjangoModelFactory):
    """A run launched by ``run_launch`` whose job is left ``status``: a queued, running, failed or
    cancelled run has no metrics and no artifact. ``FittedRunFactory`` gives one that can predict."""

    class Meta:
        model = Run

    experiment = factory.SubFactory(ExperimentFactory)
    algorithm = "logistic_regression"
    params = factory.LazyFunction(dict)
    dataset_version = None
    created_by = factory.LazyAttribute(lambda o: o.experiment.created_by)
    source = RunSource.MANUAL
    status = JobStatus.QUEUED

    @classmethod
    def _create(cls, model_class, *, experiment, algorithm, params, dataset_version, created_by, source, status):
        # One transaction: the job's message goes out on commit, when the job is no longer queued,
        # so a real worker running beside the test finds nothing to claim.
        with transaction.atomic():
            run = run_launch(user=created_by, experiment=experiment, algorithm=algorithm, params=params,
                             dataset_version=dataset_version, source=source)
            if status == JobStatus.SUCCEEDED:
                fit_run(run)
            elif status != JobStatus.QUEUED:
                _finish(Job.objects.filter(pk=run.job_id), status,
                        error="failed in a test factory" if status == JobStatus.FAILED else "")
        run.refresh_from_db()
        return run


class FittedRunFactory(RunFactory):
    """A finished run with a real artifact: its spec fitted in milliseconds (no cross-validation,
    no permutation importance), its holdout metrics, charts, classes and signature recorded."""

    status = JobStatus.SUCCEEDED


def fit_run(run: Run) -> Run:
    """Give a launched run what ``run_train`` records, from a quick fit of its own spec."""
    version = run.dataset_version
    fitted = fitted_artifact(lambda: load_version_frame(version), data_sha256=version.sha256, spec=run.spec)
    name = default_storage.save(f"artifacts/runs/{run.pk}/model-{fitted.sha256[:16]}.skops", ContentFile(fitted.blob))
    Run.objects.filter(pk=run.pk).update(
        metrics=fitted.metrics, charts=fitted.charts, classes=fitted.classes, signature=fitted.signature,
        library_versions=library_versions(), n_train=fitted.n_train, n_holdout=fitted.n_holdout,
        artifact=name, artifact_sha256=fitted.sha256, artifact_size=len(fitted.blob), finished_at=timezone.now(),
        log=[{"t": 0.0, "message": "Fitted by the test factory (no cross-validation)"}],
    )
    _finish(Job.objects.filter(pk=run.job_id), JobStatus.SUCCEEDED, message=f"Fitted {run.algorithm}")
    run.refresh_from_db()
    return run


def train_inline(run):
    """Run a queued run's training job body in this process (the worker tests cover the worker)."""
    Job.objects.filter(pk=run.job_id).update(status="running")
    run.job.refresh_from_db()
    result = run_train(run=run, ctx=JobContext(run.job))
    Job.objects.filter(pk=run.job_id).update(status="succeeded", progress=100)
    run.refresh_from_db()
    return result


def trained_run(user, experiment, algorithm: str = "logistic_regression", params: dict | None = None, version=None):
    """A run trained by the real training job body (cross-validation and all): for tests about training."""
    run = RunFactory(created_by=user, experiment=experiment, algorithm=algorithm, params=params or {},
                     dataset_version=version)
    train_inline(run)
    return run


# --- registry ----------------------------------------------------------------------------------------


def evaluated(promotion):
    """Run a promotion's gates in this process and mark its job done, as the worker would."""
    promotion_evaluate_gates(promotion=promotion)
    _finish(Job.objects.filter(pk=promotion.job_id), JobStatus.SUCCEEDED, message="Gates evaluated")
    promotion.refresh_from_db()
    return promotion


def promoted(version, stage: str, *, requester, approver, reason: str = "tests") -> PromotionRequest:
    """Request ``stage``, run the gates and approve (overriding failed gates with a reason)."""
    promotion = evaluated(promotion_request(user=requester, version=version, target_stage=stage, reason=reason))
    promotion_approve(user=approver, promotion=promotion, comment="ok",
                      override_reason="accepted in tests" if promotion.failed_gates else "")
    version.refresh_from_db()
    promotion.refresh_from_db()
    return promotion


class ModelVersionFactory(DjangoModelFactory):
    """A run registered by ``model_version_register``, then taken to ``stage`` through real promotion
    requests, gates and approvals by ``approver`` (staging, then production); ``archived`` means
    replaced in production by a newer version of the same spec, as the registry archives."""

    class Meta:
        model = ModelVersion

    run = factory.SubFactory(FittedRunFactory)
    model_name = factory.Sequence(lambda n: f"model-{n}")
    created_by = factory.LazyAttribute(lambda o: o.run.created_by)
    stage = Stage.NONE
    approver = factory.LazyAttribute(lambda o: UserFactory(analyst=True) if o.stage != Stage.NONE else None)

    @classmethod
    def _create(cls, model_class, *, run, model_name, created_by, stage, approver):
        version = model_version_register(user=created_by, run=run, model_name=model_name)
        for step in {Stage.NONE: [], Stage.STAGING: [Stage.STAGING]}.get(stage, [Stage.STAGING, Stage.PRODUCTION]):
            promoted(version, step, requester=created_by, approver=approver)
        if stage == Stage.ARCHIVED:
            newer = FittedRunFactory(experiment=run.experiment, created_by=created_by, algorithm=run.algorithm,
                                     params=run.params)
            cls(run=newer, model_name=model_name, created_by=created_by, stage=Stage.PRODUCTION, approver=approver)
        version.refresh_from_db()
        return version


def production_ready_version(engineer, analyst, experiment, algorithm="logistic_regression", params=None,
                             model_name="served"):
    """A fitted version walked to production through the real approvals (gates overridden if they fail);
    its model then lets later versions go to production without staging first."""
    run = FittedRunFactory(created_by=engineer, experiment=experiment, algorithm=algorithm, params=params or {})
    version = ModelVersionFactory(run=run, model_name=model_name, stage=Stage.PRODUCTION, approver=analyst)
    RegisteredModel.objects.filter(pk=version.model_id).update(require_staging_first=False)
    return version


class PromotionRequestFactory(DjangoModelFactory):
    """A request opened by ``promotion_request``, its gates run in-process unless ``evaluate=False``;
    an ``approved`` or ``rejected`` one decided by ``decided_by`` through the real services."""

    class Meta:
        model = PromotionRequest

    model_version = factory.SubFactory(ModelVersionFactory)
    target_stage = Stage.STAGING
    reason = "tests"
    requested_by = factory.LazyAttribute(lambda o: o.model_version.created_by)
    evaluate = True
    status = PromotionStatus.PENDING
    decided_by = factory.LazyAttribute(lambda o: UserFactory(analyst=True) if o.status != "pending" else None)

    @classmethod
    def _create(cls, model_class, *, model_version, target_stage, reason, requested_by, evaluate, status,
                decided_by):
        promotion = promotion_request(user=requested_by, version=model_version, target_stage=target_stage,
                                      reason=reason)
        if evaluate or status == PromotionStatus.APPROVED:
            promotion = evaluated(promotion)
        if status == PromotionStatus.APPROVED:
            promotion_approve(user=decided_by, promotion=promotion, comment="ok",
                              override_reason="accepted in tests" if promotion.failed_gates else "")
        elif status == PromotionStatus.REJECTED:
            promotion_reject(user=decided_by, promotion=promotion, comment="not in tests")
        promotion.refresh_from_db()
        return promotion


# --- deployments and monitoring ----------------------------------------------------------------------


def environment_named(name: str) -> Environment:
    environments_ensure()
    return Environment.objects.get(name=name)


class DeploymentFactory(DjangoModelFactory):
    """A deployment made by ``deployment_create`` (the monitoring app then creates its policy).
    ``environment`` is a name; the version is taken to the stage that environment accepts."""

    class Meta:
        model = Deployment

    environment = "production"
    model_version = factory.SubFactory(
        ModelVersionFactory,
        stage=factory.LazyAttribute(
            lambda o: Stage.PRODUCTION if getattr(o.factory_parent.environment, "name", o.factory_parent.environment)
            == "production" else Stage.STAGING),
    )
    deployed_by = factory.SubFactory(UserFactory, analyst=True)

    @classmethod
    def _create(cls, model_class, *, environment, model_version, deployed_by):
        env = environment if isinstance(environment, Environment) else environment_named(environment)
        return deployment_create(user=deployed_by, version=model_version, environment=env)


def policy_of(deployment: Deployment) -> MonitorPolicy:
    return MonitorPolicy.objects.get(model_id=deployment.model_id, environment_id=deployment.environment_id)


class PredictionLogFactory(DjangoModelFactory):
    """One logged instance of a one-instance request; ``PredictionLogFactory.bulk(n, deployment=d)``
    writes many in one INSERT. Features follow the mixed frame's columns."""

    class Meta:
        model = PredictionLog

    deployment = factory.SubFactory(DeploymentFactory)
    model_version_id_logged = factory.LazyAttribute(lambda o: o.deployment.model_version_id)
    request_id = factory.LazyFunction(uuid.uuid4)
    created_at = factory.LazyFunction(timezone.now)
    features = factory.Sequence(lambda n: {"x1": round((n * 37 % 100) / 25 - 2, 4), "x2": float(n * 13 % 10),
                                           "color": ["red", "green", "blue"][n % 3]})
    prediction = factory.LazyAttribute(lambda o: "yes" if o.features["x1"] > 0 else "no")
    probability = 0.75
    latency_ms = factory.Sequence(lambda n: 1.0 + n % 7)
    source = "api"

    @classmethod
    def bulk(cls, size: int, **kwargs) -> list[PredictionLog]:
        return PredictionLog.objects.bulk_create(cls.build_batch(size, **kwargs))


class BatchScoreFactory(DjangoModelFactory):
    """A scored batch as the batch job leaves it (the batch tests make real ones from files)."""

    class Meta:
        model = BatchScore

    deployment = factory.SubFactory(DeploymentFactory)
    input_name = factory.Sequence(lambda n: f"batch-{n}.csv")
    input_sha256 = factory.Sequence(lambda n: f"{n:064x}")
    rows = 10
    created_by = factory.SelfAttribute("deployment.deployed_by")
    job = factory.SubFactory("tests.factories.JobFactory", kind="deployments.batch_score", status=JobStatus.SUCCEEDED,
                             created_by=factory.SelfAttribute("..created_by"))


class DriftReportFactory(DjangoModelFactory):
    """A report written by the real ``drift_check`` over a window of the policy's logs (a window
    without logs gives an honest "not enough data" report). Windows step back an hour each."""

    class Meta:
        model = DriftReport

    class Params:
        hours_ago = factory.Sequence(lambda n: n + 1)

    policy = factory.LazyFunction(lambda: policy_of(DeploymentFactory()))
    window_end = factory.LazyAttribute(lambda o: timezone.now() - timedelta(hours=o.hours_ago))
    window_start = factory.LazyAttribute(lambda o: o.window_end - timedelta(hours=1))

    @classmethod
    def _create(cls, model_class, *, policy, window_start, window_end):
        return drift_check(policy=policy, window_start=window_start, window_end=window_end)


class AlertFactory(DjangoModelFactory):
    """An alert episode opened by a report (resolved ones can be many; one open per policy and kind)."""

    class Meta:
        model = Alert

    opened_by = factory.SubFactory(DriftReportFactory)
    policy = factory.SelfAttribute("opened_by.policy")
    kind = "drift"
    status = AlertStatus.RESOLVED
    message = factory.LazyAttribute(lambda o: f"Dataset drift on {o.policy}")
    opened_at = factory.SelfAttribute("opened_by.window_end")
    resolved_at = factory.LazyAttribute(lambda o: o.opened_at + timedelta(minutes=30) if o.status == "resolved" else None)


class RetrainingFactory(DjangoModelFactory):
    """A continuous-training record awaiting approval, pointing at the deployed version's own rows
    (the monitoring tests walk real retrainings end to end)."""

    class Meta:
        model = Retraining

    policy = factory.LazyFunction(lambda: policy_of(DeploymentFactory()))
    trigger = "manual"
    source_version = factory.LazyAttribute(lambda o: o.policy.model.versions.order_by("-version").first())
    run = factory.LazyAttribute(lambda o: o.source_version.run)
    dataset_version = factory.LazyAttribute(lambda o: o.run.dataset_version)
    model_version = factory.SelfAttribute("source_version")
    status = "awaiting approval"
    job = factory.SubFactory("tests.factories.JobFactory", kind="monitoring.retrain", status=JobStatus.SUCCEEDED)
    finished_at = factory.LazyFunction(timezone.now)


# --- core: jobs and audit events ---------------------------------------------------------------------


class JobFactory(DjangoModelFactory):
    """A job row in ``status`` (the worker's own tests make real ones); ``target`` is any row."""

    class Meta:
        model = Job

    kind = "core.selfcheck"
    status = JobStatus.QUEUED
    created_by = factory.SubFactory(UserFactory, engineer=True)
    message = factory.LazyAttribute(lambda o: o.status.capitalize())
    progress = factory.LazyAttribute(lambda o: 100 if o.status == JobStatus.SUCCEEDED else 0)
    started_at = factory.LazyAttribute(lambda o: None if o.status == JobStatus.QUEUED else timezone.now())
    finished_at = factory.LazyAttribute(
        lambda o: timezone.now() if o.status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED) else None)


class AuditEventFactory(DjangoModelFactory):
    """An event written by ``audit_record``, as every service writes them."""

    class Meta:
        model = AuditEvent

    actor = factory.SubFactory(UserFactory, engineer=True)
    action = factory.Sequence(lambda n: f"test.action-{n % 5}")
    obj = None
    before = None
    after = factory.Sequence(lambda n: {"n": n})
    note = ""

    @classmethod
    def _create(cls, model_class, *, actor, action, obj, before, after, note):
        return audit_record(actor=actor, action=action, obj=obj, before=before, after=after, note=note)
