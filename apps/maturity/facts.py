"""What the maturity criteria judge: each model's facts as the records stood at a moment.

The dataclasses are plain values, so a criterion is a pure function of them (tests build them by
hand). ``load_facts`` fills them for every model at once in a constant number of queries, whatever
the number of models and rows; rows created after ``at`` are ignored, so a snapshot of a past day
answers from the records of that day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import OuterRef, Q, Subquery

from apps.datasets.models import DatasetVersion
from apps.deployments.models import Deployment
from apps.experiments.models import RunInput
from apps.monitoring.models import Alert, DriftReport, MonitorPolicy, Retraining
from apps.registry.evaluation import is_evaluation_context
from apps.registry.models import ModelVersion, PromotionRequest, RegisteredModel, Stage, StageTransition

from .models import MaturitySettings, PipelineChange


@dataclass(frozen=True)
class Thresholds:
    retraining_period_days: int
    drift_period_days: int
    performance_period_days: int
    releases_window_days: int
    min_releases: int

    @classmethod
    def of(cls, cfg: MaturitySettings) -> Thresholds:
        return cls(retraining_period_days=cfg.retraining_period_days, drift_period_days=cfg.drift_period_days,
                   performance_period_days=cfg.performance_period_days,
                   releases_window_days=cfg.releases_window_days, min_releases=cfg.min_releases)


@dataclass(frozen=True)
class RunFacts:
    id: int
    label: str
    source: str
    source_label: str
    artifact_sha256: str
    job_id: int | None
    job_status: str | None
    dataset_sha256: str
    spec: dict
    random_state: int | None
    app_version: str
    library_versions: dict
    git_commit: str = ""  # the mlflow.source.git.commit tag of a run logged with the MLflow client


@dataclass(frozen=True)
class DataFacts:
    id: int
    label: str
    validation_status: str
    overridden_at: datetime | None


@dataclass(frozen=True)
class VersionFacts:
    id: int
    label: str
    run: RunFacts
    data: DataFacts | None  # the training data (for a version trained elsewhere: what its run logged, if linked)
    external: bool = False  # logged with the MLflow client, trained by code that is not ours
    artifact_sha256: str = ""
    sklearn_version: str = ""


@dataclass(frozen=True)
class PromotionFacts:
    id: int
    gates: list
    override_reason: str

    @property
    def failed_gate_names(self) -> list[str]:
        return [g["name"] for g in self.gates or [] if not g["passed"]]


@dataclass(frozen=True)
class ChangeFacts:
    id: int
    status: str
    auto_approved: bool
    deployment_id: int | None
    smoke_passed_at: datetime | None
    staging_promotion: PromotionFacts | None


@dataclass(frozen=True)
class PolicyFacts:
    id: int
    retrain_policy: str
    retrain_policy_label: str
    has_email: bool
    has_webhook: bool

    @property
    def has_channel(self) -> bool:
        return self.has_email or self.has_webhook


@dataclass(frozen=True)
class ReportFacts:
    id: int
    created_at: datetime
    window_end: datetime
    status: str
    drifted_features: list
    drift_share: float | None
    rows: int


@dataclass(frozen=True)
class RetrainingFacts:
    id: int
    status: str
    created_at: datetime
    finished_at: datetime | None
    model_version_id: int | None
    trigger: str


@dataclass(frozen=True)
class DeploymentFacts:
    id: int
    previous_id: int | None
    is_rollback: bool
    deployed_at: datetime
    retired_at: datetime | None
    is_production: bool
    environment: str


@dataclass(frozen=True)
class ModelFacts:
    """One model at ``now``: its production version and what the records say about it."""

    model_id: int
    model_name: str
    now: datetime
    cfg: Thresholds
    version: VersionFacts | None = None
    promoted_at: datetime | None = None  # when ``version`` last entered production
    production_promotion: PromotionFacts | None = None  # the request that put it there
    staged_at: datetime | None = None  # when ``version`` first entered staging
    change: ChangeFacts | None = None  # the CI pipeline change that trained ``version``
    policy: PolicyFacts | None = None  # the production monitor policy
    last_report: ReportFacts | None = None
    perf_report: ReportFacts | None = None  # the latest report that measured performance
    last_retraining: RetrainingFacts | None = None
    last_success: RetrainingFacts | None = None  # the latest retraining that produced a version
    open_alert: bool = False
    deployments: tuple[DeploymentFacts, ...] = ()  # newest first
    releases: int = 0  # production releases within the release window
    ci_version_at: datetime | None = None  # the latest version a CI pipeline change brought (logged elsewhere)


@dataclass(frozen=True)
class Loaded:
    """A model, its production version as a row (for links and pages), and its facts."""

    model: RegisteredModel
    production_version: ModelVersion | None
    facts: ModelFacts


def load_facts(*, at: datetime, model_ids: list[int] | None = None) -> list[Loaded]:
    cfg = Thresholds.of(MaturitySettings.load())
    models_qs = RegisteredModel.objects.filter(created_at__lte=at).order_by("name")
    if model_ids is not None:
        models_qs = models_qs.filter(pk__in=model_ids)
    models = list(models_qs)
    ids = [m.pk for m in models]
    if not ids:
        return []
    history = _StageHistory.replay(ids, at=at, window_start=at - timedelta(days=cfg.releases_window_days))
    versions = _production_versions(history.production.values(), {m.pk: m for m in models})
    changes = _changes_by_run([v.run_id for v in versions.values()], at=at)
    logged_data = _logged_training_data([v.run_id for v in versions.values() if v.is_external], at=at)
    ci_versions = _ci_versions(ids, at=at)
    promotions = _promotions([history.promotion_of.get(v) for v in versions]
                             + [c["staging_promotion_id"] for c in changes.values()])
    monitoring = _Monitoring.load(ids, at=at)
    deployments = _deployments(ids, at=at)

    loaded = []
    for model in models:
        row = versions.get(history.production.get(model.pk))
        change = changes.get(row.run_id) if row else None
        policy = monitoring.policies.get(model.pk)
        facts = ModelFacts(
            model_id=model.pk, model_name=model.name, now=at, cfg=cfg,
            version=_version_facts(row, logged_data.get(row.run_id)) if row else None,
            promoted_at=history.promoted_at.get(row.pk) if row else None,
            production_promotion=promotions.get(history.promotion_of.get(row.pk)) if row else None,
            staged_at=history.staged_at.get(row.pk) if row else None,
            change=_change_facts(change, promotions) if change else None,
            **monitoring.facts_of(policy),
            deployments=tuple(deployments.get(model.pk, ())), releases=history.releases[model.pk],
            ci_version_at=ci_versions.get(model.pk),
        )
        loaded.append(Loaded(model=model, production_version=row, facts=facts))
    return loaded


@dataclass
class _StageHistory:
    """The stage transitions up to ``at``, replayed: who is in production, when versions were staged."""

    production: dict[int, int]  # model id -> version id
    promoted_at: dict[int, datetime]  # version id -> its last production transition
    promotion_of: dict[int, int | None]  # version id -> the request of that transition
    staged_at: dict[int, datetime]  # version id -> its first staging transition
    releases: dict[int, int]  # model id -> production transitions in the window

    @classmethod
    def replay(cls, ids: list[int], *, at: datetime, window_start: datetime) -> _StageHistory:
        history = cls(production={}, promoted_at={}, promotion_of={}, staged_at={}, releases=dict.fromkeys(ids, 0))
        for t in (StageTransition.objects.filter(model_version__model_id__in=ids, created_at__lte=at)
                  .order_by("created_at", "id")
                  .values("model_version_id", "model_version__model_id", "from_stage", "to_stage", "created_at",
                          "promotion_id")):
            model_id, version_id = t["model_version__model_id"], t["model_version_id"]
            if t["to_stage"] == Stage.PRODUCTION:
                history.production[model_id] = version_id
                history.promoted_at[version_id] = t["created_at"]
                history.promotion_of[version_id] = t["promotion_id"]
                if t["created_at"] >= window_start:
                    history.releases[model_id] += 1
            elif t["from_stage"] == Stage.PRODUCTION and history.production.get(model_id) == version_id:
                history.production.pop(model_id, None)
            if t["to_stage"] == Stage.STAGING:
                history.staged_at.setdefault(version_id, t["created_at"])
        return history


def _production_versions(version_ids, models: dict[int, RegisteredModel]) -> dict[int, ModelVersion]:
    rows = ModelVersion.objects.filter(pk__in=list(version_ids)).select_related(
        "run__dataset_version__dataset", "run__job", "run__experiment").defer(
        "signature", "metrics", "classes", "run__charts", "run__log", "run__importances", "run__cv_scores",
        "run__cv_mean", "run__signature", "run__classes", "run__metrics", "run__dataset_version__profile",
        "run__dataset_version__reference", "run__dataset_version__schema", "run__dataset_version__validation")
    versions = {v.pk: v for v in rows}
    for v in versions.values():
        v.model = models[v.model_id]  # labels name the model; no query per version
    return versions


def _data_facts(data: DatasetVersion | None) -> DataFacts | None:
    if data is None:
        return None
    return DataFacts(id=data.pk, label=str(data), validation_status=data.validation_status,
                     overridden_at=data.overridden_at)


def _version_facts(version: ModelVersion, logged_data: DatasetVersion | None) -> VersionFacts:
    run = version.run
    return VersionFacts(
        id=version.pk, label=str(version),
        run=RunFacts(id=run.pk, label=str(run), source=run.source, source_label=run.get_source_display(),
                     artifact_sha256=run.artifact_sha256, job_id=run.job_id,
                     job_status=run.job.status if run.job_id else None, dataset_sha256=run.dataset_sha256,
                     spec=run.spec or {}, random_state=run.random_state, app_version=run.app_version,
                     library_versions=run.library_versions, git_commit=run.git_commit),
        data=_data_facts(logged_data if version.is_external else run.dataset_version),
        external=version.is_external, artifact_sha256=version.artifact_sha256,
        sklearn_version=version.sklearn_version)


def _logged_training_data(run_ids: list[int], *, at: datetime) -> dict[int, DatasetVersion]:
    """run id -> the dataset version of ours its run logged as training data (first such input), by ``at``."""
    found: dict[int, DatasetVersion] = {}
    for logged in (RunInput.objects.filter(run_id__in=run_ids, dataset_version__isnull=False, created_at__lte=at)
                   .select_related("dataset_version__dataset").defer(
                       "schema", "profile", "source", "dataset_version__profile", "dataset_version__reference",
                       "dataset_version__schema", "dataset_version__validation").order_by("id")):
        if not is_evaluation_context(logged.context):
            found.setdefault(logged.run_id, logged.dataset_version)
    return found


def _ci_versions(ids: list[int], *, at: datetime) -> dict[int, datetime]:
    """model id -> when a CI pipeline change last brought a version logged elsewhere."""
    found: dict[int, datetime] = {}
    for model_id, created_at in (PipelineChange.objects.filter(model_id__in=ids, created_at__lte=at,
                                                               model_version__origin="mlflow")
                                 .order_by("created_at").values_list("model_id", "created_at")):
        found[model_id] = created_at
    return found


def _changes_by_run(run_ids: list[int], *, at: datetime) -> dict[int, dict]:
    changes: dict[int, dict] = {}
    for c in (PipelineChange.objects.filter(run_id__in=run_ids, created_at__lte=at).order_by("created_at")
              .values("id", "run_id", "status", "staging_promotion_id", "auto_approved", "deployment_id",
                      "smoke_passed_at")):
        changes[c["run_id"]] = c  # a run's latest change
    return changes


def _change_facts(change: dict, promotions: dict[int, PromotionFacts]) -> ChangeFacts:
    return ChangeFacts(id=change["id"], status=change["status"], auto_approved=change["auto_approved"],
                       deployment_id=change["deployment_id"], smoke_passed_at=change["smoke_passed_at"],
                       staging_promotion=promotions.get(change["staging_promotion_id"]))


def _promotions(ids: list[int | None]) -> dict[int, PromotionFacts]:
    wanted = [i for i in ids if i]
    return {p["id"]: PromotionFacts(id=p["id"], gates=p["gates"], override_reason=p["override_reason"])
            for p in PromotionRequest.objects.filter(pk__in=wanted).values("id", "gates", "override_reason")}


@dataclass
class _Monitoring:
    """Each model's production monitor policy with its latest reports and retrainings at ``at``."""

    policies: dict[int, MonitorPolicy]
    reports: dict[int, ReportFacts]
    retrainings: dict[int, RetrainingFacts]
    alerting: set[int]

    @classmethod
    def load(cls, ids: list[int], *, at: datetime) -> _Monitoring:
        def latest(model, order: str, **where):
            return model.objects.filter(policy=OuterRef("pk"), **where).order_by(order, "-id").values("pk")[:1]

        policies: dict[int, MonitorPolicy] = {}
        for p in (MonitorPolicy.objects.filter(model_id__in=ids, environment__is_production=True)
                  .order_by("environment__order", "pk")
                  .annotate(latest_report_id=Subquery(latest(DriftReport, "-created_at", created_at__lte=at)),
                            latest_perf_id=Subquery(latest(DriftReport, "-created_at", created_at__lte=at,
                                                           performance__has_key="metrics")),
                            latest_retraining_id=Subquery(latest(Retraining, "-created_at", created_at__lte=at)),
                            latest_success_id=Subquery(latest(Retraining, "-finished_at", finished_at__lte=at,
                                                              model_version__isnull=False)))):
            policies.setdefault(p.model_id, p)
        report_ids = {i for p in policies.values() for i in (p.latest_report_id, p.latest_perf_id) if i}
        retraining_ids = {i for p in policies.values() for i in (p.latest_retraining_id, p.latest_success_id) if i}
        return cls(
            policies=policies,
            reports={r["id"]: ReportFacts(**r) for r in DriftReport.objects.filter(pk__in=report_ids).values(
                "id", "created_at", "window_end", "status", "drifted_features", "drift_share", "rows")},
            retrainings={r["id"]: RetrainingFacts(**r) for r in Retraining.objects.filter(
                pk__in=retraining_ids).values("id", "status", "created_at", "finished_at", "model_version_id",
                                              "trigger")},
            alerting=set(Alert.objects.filter(policy_id__in=[p.pk for p in policies.values()], opened_at__lte=at)
                         .filter(Q(resolved_at__isnull=True) | Q(resolved_at__gt=at))
                         .values_list("policy_id", flat=True)),
        )

    def facts_of(self, policy: MonitorPolicy | None) -> dict:
        if policy is None:
            return {}
        return {
            "policy": PolicyFacts(id=policy.pk, retrain_policy=policy.retrain_policy,
                                  retrain_policy_label=policy.get_retrain_policy_display(),
                                  has_email=bool(policy.email_list), has_webhook=bool(policy.webhook_url)),
            "last_report": self.reports.get(policy.latest_report_id),
            "perf_report": self.reports.get(policy.latest_perf_id),
            "last_retraining": self.retrainings.get(policy.latest_retraining_id),
            "last_success": self.retrainings.get(policy.latest_success_id),
            "open_alert": policy.pk in self.alerting,
        }


def _deployments(ids: list[int], *, at: datetime) -> dict[int, list[DeploymentFacts]]:
    deployments: dict[int, list[DeploymentFacts]] = {}
    for d in (Deployment.objects.filter(model_id__in=ids, deployed_at__lte=at).order_by("-deployed_at", "-id")
              .values("id", "model_id", "previous_id", "is_rollback", "retired_at", "deployed_at",
                      "environment__is_production", "environment__name")):
        deployments.setdefault(d["model_id"], []).append(DeploymentFacts(
            id=d["id"], previous_id=d["previous_id"], is_rollback=d["is_rollback"], deployed_at=d["deployed_at"],
            retired_at=d["retired_at"], is_production=d["environment__is_production"],
            environment=d["environment__name"]))
    return deployments
