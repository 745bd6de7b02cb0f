"""Each model's MLOps maturity, computed from the records only (never self-declared).

Level 0: manual. Level 1: pipeline automation / continuous training. Level 2: CI/CD
automation (after Google's definition). A model's level is the highest whose criteria
all hold (level 2 needs every level-1 criterion too); progress is the share of the next
level's criteria met.

Each criterion is one function of a model's facts (``facts.ModelFacts``), registered with its
key, level and title by ``@criterion``; the checklist is the registration order, so adding a
criterion touches one place. ``judge`` is pure: it reads no database. ``evaluate_all(at=...)``
loads every model's facts in bulk, as the records stood at ``at``, and judges them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.urls import reverse
from django.utils import timezone

from apps.monitoring.models import RetrainPolicy
from apps.registry.models import ModelVersion, RegisteredModel

from .facts import ModelFacts, ReportFacts, RetrainingFacts, load_facts

MAX_LEVEL = 2
NO_PRODUCTION = "Nothing is in production yet: request a promotion to production and have an analyst approve it."
NO_POLICY = "Deploy the model to production: every production deployment gets a monitor policy."


@dataclass(frozen=True)
class Verdict:
    met: bool
    evidence: list[dict]
    hint: str  # what to do to meet it (shown only while it is not met)
    hint_url: str
    detail: str = ""


@dataclass(frozen=True)
class Criterion:
    key: str
    level: int
    title: str
    judge: Callable[[ModelFacts], Verdict]
    needs_production: bool  # without a production version it is simply not met

    def result(self, facts: ModelFacts) -> dict:
        if self.needs_production and facts.version is None:
            verdict = Verdict(False, [], NO_PRODUCTION, _model_url(facts), "no production version")
        else:
            verdict = self.judge(facts)
        met = bool(verdict.met)
        return {"key": self.key, "level": self.level, "title": self.title, "met": met,
                "evidence": verdict.evidence, "detail": verdict.detail,
                "hint": "" if met else verdict.hint, "hint_url": "" if met else verdict.hint_url}


REGISTRY: dict[str, Criterion] = {}


def criterion(key: str, *, level: int, title: str, needs_production: bool = True):
    """Register the decorated function as the judge of one checklist item."""
    def register(judge: Callable[[ModelFacts], Verdict]):
        if key in REGISTRY:
            raise ValueError(f"maturity criterion {key!r} is registered twice")
        REGISTRY[key] = Criterion(key=key, level=level, title=title, judge=judge, needs_production=needs_production)
        return judge
    return register


def judge(facts: ModelFacts) -> list[dict]:
    """Every criterion's result for one model, in checklist order."""
    return [c.result(facts) for c in REGISTRY.values()]


# --- helpers of the criteria -------------------------------------------------------------------


def _link(label: str, name: str, pk: int) -> dict:
    return {"label": label, "url": reverse(name, args=[pk])}


def _model_url(f: ModelFacts) -> str:
    return reverse("registry:model", args=[f.model_id])


def _settings_url(f: ModelFacts) -> str:
    # the monitoring page, which everyone may read; its Settings button is there for those who may change them
    return reverse("monitoring:detail", args=[f.policy.id]) if f.policy else reverse("deployments:list")


def _within(moment: datetime | None, f: ModelFacts, days: int) -> bool:
    return moment is not None and moment >= f.now - timedelta(days=days)


def _change_links(f: ModelFacts) -> list[dict]:
    c = f.change
    return [_link(f"pipeline change #{c.id} ({c.status})", "maturity:pipeline_change", c.id)] if c else []


def _no_policy() -> Verdict:
    return Verdict(False, [], NO_POLICY, reverse("deployments:list"))


# --- level 1 -----------------------------------------------------------------------------------


@criterion("pipeline_run", level=1, title="The production version was trained by a pipeline run of this system")
def pipeline_run(f: ModelFacts) -> Verdict:
    run = f.version.run
    evidence = [_link(f"{f.version.label} ← run {run.label}", "experiments:run", run.id)]
    if f.version.external:
        # trained by the team's own code: the evidence of a pipeline is a finished run at a commit, with its model
        commit, sha = run.git_commit, f.version.artifact_sha256
        ok = bool(commit and sha)
        detail = f"logged with the MLflow client at commit {commit[:12]}" if commit else "no git commit logged"
        return Verdict(ok, evidence, "Log the run from your training code in git, so the run carries "
                       "mlflow.source.git.commit (or set it: mlflow.set_tag(\"mlflow.source.git.commit\", <sha>)), "
                       "and log the model with mlflow.sklearn.log_model.", reverse("experiments:run", args=[run.id]),
                       detail)
    trained = bool(run.artifact_sha256) and run.job_id is not None and run.job_status == "succeeded"
    if run.job_id:
        evidence.append(_link(f"training job #{run.job_id} ({run.job_status})", "core:job_detail", run.job_id))
    return Verdict(trained, evidence, "Train the model with a run of this system and register that run.",
                   reverse("experiments:list"), f"source: {run.source_label}")


@criterion("continuous_training", level=1, needs_production=False,
           title="Continuous training is on and produced a version within its period")
def continuous_training(f: ModelFacts) -> Verdict:
    policy = f.policy
    if policy is None:
        return Verdict(False, [], NO_POLICY, reverse("deployments:list"), "no production monitor policy")
    evidence = [_link(f"monitor policy: retraining {policy.retrain_policy_label.lower()}", "monitoring:detail",
                      policy.id)]
    success = f.last_success
    if success is not None:
        evidence.append(_link(f"retraining #{success.id} produced a version on {success.finished_at:%Y-%m-%d}",
                              "monitoring:retraining", success.id))
    days = f.cfg.retraining_period_days
    if f.version is not None and f.version.external:
        # its code is not ours: continuous training is the team's pipeline logging new versions through CI
        recent = _within(f.ci_version_at, f, days)
        if f.ci_version_at:
            evidence.append({"label": f"CI brought a logged version on {f.ci_version_at:%Y-%m-%d}",
                             "url": reverse("maturity:model", args=[f.model_id])})
        return Verdict(recent, evidence, f"Retraining runs in your own pipeline: have it retrain at least every "
                       f"{days} days, log the version with the MLflow client and send POST /api/v1/models/"
                       f"{f.model_id}/pipeline-changes/ with {{\"source_commit\", \"model_version\"}}.",
                       reverse("maturity:model", args=[f.model_id]))
    if policy.retrain_policy == RetrainPolicy.OFF:
        return Verdict(False, evidence, "Turn retraining on in the model's monitor policy (on drift, on schedule or "
                       "on performance).", _settings_url(f))
    recent = success is not None and _within(success.finished_at, f, days)
    return Verdict(recent, evidence, f"Continuous training has not produced a version in the last {days} days: "
                   "start a retraining from the monitoring page, or check why the last one failed.",
                   reverse("monitoring:detail", args=[policy.id]))


@criterion("data_validated", level=1, title="The training data passed validation (no override)")
def data_validated(f: ModelFacts) -> Verdict:
    data = f.version.data
    if data is None:
        return Verdict(False, [], "Log the training data with mlflow.log_input(mlflow.data.from_pandas(df, "
                       "source=<the URL of its dataset version here>), context=\"training\"), so it is linked to a "
                       "dataset version of ours and validated.", reverse("datasets:list"), "no training data linked")
    overridden = data.overridden_at is not None and data.overridden_at <= f.now
    ok = data.validation_status in ("pass", "warn") and not overridden
    detail = f"validation {data.validation_status}" + (" (overridden)" if overridden else "")
    return Verdict(ok, [_link(f"training data {data.label}: {detail}", "datasets:version", data.id)],
                   "Fix the data so it passes validation, upload it as a new version and retrain on it.",
                   reverse("datasets:version", args=[data.id]), detail)


@criterion("gates_passed", level=1, title="The production promotion passed every gate")
def gates_passed(f: ModelFacts) -> Verdict:
    promotion = f.production_promotion
    if promotion is None:
        return Verdict(False, [], "Promote through a request so the gates run (not by hand).", _model_url(f),
                       "no production promotion request")
    failed = promotion.failed_gate_names
    ok = bool(promotion.gates) and not failed and not promotion.override_reason
    label = f"failed {', '.join(failed)} (overridden)" if failed else "all gates passed"
    return Verdict(ok, [_link(f"production request #{promotion.id}: {label}", "registry:promotion", promotion.id)],
                   "Train a version that passes every gate and promote it without override.", _model_url(f))


@criterion("lineage", level=1, title="Lineage is complete: data hash, spec, seeds, code and library versions")
def lineage(f: ModelFacts) -> Verdict:
    run = f.version.run
    if f.version.external:
        return _external_lineage(f)
    missing = [name for name, present in (
        ("dataset hash", bool(run.dataset_sha256)), ("spec", bool(run.spec.get("algorithm"))),
        ("split seed", run.spec.get("split_seed") is not None), ("random state", run.random_state is not None),
        ("app version", bool(run.app_version)), ("library versions", bool(run.library_versions))) if not present]
    detail = "complete" if not missing else f"missing {', '.join(missing)}"
    return Verdict(not missing, [_link(f"run {run.label}: lineage {detail}", "experiments:run", run.id)],
                   "Retrain with a run of this version of the system: it records the full lineage.",
                   reverse("experiments:run", args=[run.id]), detail)


EXTERNAL_LINEAGE_HINTS = {
    "git commit": "set mlflow.source.git.commit (log from a git checkout, or mlflow.set_tag it)",
    "training data": "log the training data with mlflow.log_input, its source naming one of our dataset versions",
    "artifact sha256": "log the model with mlflow.sklearn.log_model so its file is uploaded here",
    "scikit-learn version": "log the model with mlflow.sklearn.log_model (its MLmodel records sklearn_version)",
}


def _external_lineage(f: ModelFacts) -> Verdict:
    """A version trained elsewhere: its code by git commit, its data by the logged dataset, its bytes by sha256."""
    run, version = f.version.run, f.version
    missing = [name for name, present in (
        ("git commit", bool(run.git_commit)), ("training data", version.data is not None),
        ("artifact sha256", bool(version.artifact_sha256)), ("scikit-learn version", bool(version.sklearn_version)))
        if not present]
    detail = "complete" if not missing else f"missing {', '.join(missing)}"
    hint = "; ".join(EXTERNAL_LINEAGE_HINTS[name] for name in missing)
    return Verdict(not missing, [_link(f"run {run.label}: lineage {detail}", "experiments:run", run.id)],
                   hint[:1].upper() + hint[1:] + "." if hint else "", reverse("experiments:run", args=[run.id]),
                   detail)


@criterion("staging_first", level=1, title="The version ran in staging before production")
def staging_first(f: ModelFacts) -> Verdict:
    staged, version = f.staged_at, f.version
    ok = f.promoted_at is not None and staged is not None and staged < f.promoted_at
    label = f"{version.label}: staging {staged:%Y-%m-%d %H:%M}" if staged else f"{version.label}: never in staging"
    return Verdict(ok, [_link(label, "registry:version", version.id)],
                   "Promote the next version to staging first, then to production "
                   "(set \"production only after staging\" in the model's gate policy).", _model_url(f))


@criterion("drift_checks", level=1, title="Drift checks of production ran within the period")
def drift_checks(f: ModelFacts) -> Verdict:
    if f.policy is None:
        return _no_policy()
    report, days = f.last_report, f.cfg.drift_period_days
    evidence = [_link(f"drift report {report.created_at:%Y-%m-%d %H:%M}: {report.status}", "monitoring:report",
                      report.id)] if report else []
    return Verdict(report is not None and _within(report.created_at, f, days), evidence,
                   f"Run drift checks at least every {days} days: enable the scheduled checks in the monitor "
                   "policy, or press \"Check drift now\".", reverse("monitoring:detail", args=[f.policy.id]))


# --- level 2 -----------------------------------------------------------------------------------


@criterion("ci_pipeline", level=2,
           title="The production version came from a CI pipeline change, trained and gated automatically")
def ci_pipeline(f: ModelFacts) -> Verdict:
    run, change = f.version.run, f.change
    staging = change.staging_promotion if change else None
    from_ci = change is not None if f.version.external else run.source == "ci"
    ok = from_ci and staging is not None and bool(staging.gates)
    hint = (f"Have CI log the version with the MLflow client, then POST /api/v1/models/{f.model_id}/pipeline-changes/ "
            'with {"source_commit", "model_version"}; promote the version it stages.' if f.version.external else
            f"Send the next change from CI: POST /api/v1/models/{f.model_id}/pipeline-changes/ with the commit and "
            "the spec, then promote the version it produces.")
    return Verdict(ok, [_link(f"run {run.label}: source {run.source}", "experiments:run", run.id), *_change_links(f)],
                   hint, reverse("maturity:model", args=[f.model_id]))


@criterion("auto_staging", level=2, title="Deployment to staging after the gates was automatic")
def auto_staging(f: ModelFacts) -> Verdict:
    change = f.change
    ok = change is not None and change.auto_approved and change.deployment_id is not None
    evidence = _change_links(f)
    if change and change.deployment_id:
        evidence.append(_link(f"staging deployment #{change.deployment_id}", "deployments:detail",
                              change.deployment_id))
    return Verdict(ok, evidence, "Ask an admin to turn on \"auto-approve staging when all gates pass\" in the "
                   "model's pipeline policy (Django admin), then send a change from CI.",
                   reverse("admin:maturity_pipelinepolicy_changelist"))


@criterion("smoke_test", level=2, title="A smoke test of the staging deployment ran before the production approval")
def smoke_test(f: ModelFacts) -> Verdict:
    smoked = f.change.smoke_passed_at if f.change else None
    ok = smoked is not None and f.promoted_at is not None and smoked < f.promoted_at
    return Verdict(ok, _change_links(f), "Send the change from CI: its pipeline smoke-tests the staging deployment "
                   "before the production request opens.", reverse("maturity:model", args=[f.model_id]),
                   f"smoke test passed {smoked:%Y-%m-%d %H:%M}" if smoked else "no smoke test")


@criterion("alerting", level=2, needs_production=False,
           title="Alerts have a channel and performance is measured against ground truth")
def alerting(f: ModelFacts) -> Verdict:
    policy, perf, days = f.policy, f.perf_report, f.cfg.performance_period_days
    if policy is None:
        return _no_policy()
    channels = " + ".join(name for name, on in (("email", policy.has_email), ("webhook", policy.has_webhook)) if on)
    evidence = [_link(f"alert channel: {channels}" if channels else "no alert channel", "monitoring:detail",
                      policy.id)]
    if perf:
        evidence.append(_link(f"performance measured on labelled traffic ({perf.created_at:%Y-%m-%d})",
                              "monitoring:report", perf.id))
    measured = perf is not None and _within(perf.created_at, f, days)
    if not policy.has_channel:
        return Verdict(False, evidence, "Add alert emails or a webhook to the monitor policy.", _settings_url(f))
    return Verdict(measured, evidence, f"Send ground truth (POST /api/v1/feedback/) for production predictions so "
                   f"the drift checks measure performance (at least 10 labelled rows within {days} days).",
                   reverse("monitoring:detail", args=[policy.id]))


@criterion("rollback", level=2, title="A rollback target exists and a rollback has been exercised")
def rollback(f: ModelFacts) -> Verdict:
    active = next((d for d in f.deployments if d.is_production and (d.retired_at is None or d.retired_at > f.now)),
                  None)
    exercised = [d for d in f.deployments if d.is_rollback]
    evidence = []
    if active:
        target = f"can roll back to #{active.previous_id}" if active.previous_id else "nothing to roll back to"
        evidence.append(_link(f"active production deployment #{active.id} ({target})", "deployments:detail",
                              active.id))
    if exercised:
        d = exercised[-1]
        evidence.append(_link(f"rollback exercised in {d.environment} on {d.deployed_at:%Y-%m-%d}",
                              "deployments:detail", d.id))
    ok = active is not None and active.previous_id is not None and bool(exercised)
    return Verdict(ok, evidence, "Deploy a second version to production so a rollback target exists, and rehearse "
                   "a rollback (in staging or production) from the deployment page.", reverse("deployments:list"))


@criterion("releases", level=2, needs_production=False, title="Enough production releases in the release window")
def releases(f: ModelFacts) -> Verdict:
    n, cfg = f.releases, f.cfg
    label = f"{n} production release{'s' if n != 1 else ''} in {cfg.releases_window_days} days"
    return Verdict(n >= cfg.min_releases, [{"label": label, "url": _model_url(f)}],
                   f"Release to production at least {cfg.min_releases} times in {cfg.releases_window_days} days.",
                   _model_url(f), f"{n} of {cfg.min_releases}")


# key, level, title: the checklist, in order (for charts and tests)
CRITERIA: list[tuple[str, int, str]] = [(c.key, c.level, c.title) for c in REGISTRY.values()]


# --- levels and evaluation ---------------------------------------------------------------------


def level_from(criteria: list[dict]) -> tuple[int, float]:
    """The highest level whose criteria (and every lower level's) all hold; progress toward the next."""
    level = 0
    for candidate in range(1, MAX_LEVEL + 1):
        if all(c["met"] for c in criteria if c["level"] == candidate):
            level = candidate
        else:
            break
    if level >= MAX_LEVEL:
        return level, 1.0
    nxt = [c for c in criteria if c["level"] == level + 1]
    return level, (sum(c["met"] for c in nxt) / len(nxt)) if nxt else 0.0


def health_of(last_report: ReportFacts | None, open_alerts: bool) -> str:
    """Monitoring's verdict: ok, warning or drifting from the latest drift report and open alerts."""
    if last_report is None:
        return "unknown"
    if open_alerts or last_report.status == "drifting":
        return "drifting"
    if last_report.status == "not_enough_data" or last_report.drifted_features:
        return "warning"
    return "ok"


@dataclass
class ModelMaturity:
    model: RegisteredModel
    level: int
    progress: float
    criteria: list[dict]
    production_version: ModelVersion | None = None
    health: str = "unknown"
    last_report: ReportFacts | None = None
    last_retraining: RetrainingFacts | None = None
    releases: int = 0

    def as_dict(self) -> dict:
        return {"model": self.model.name, "model_id": self.model.pk, "level": self.level,
                "progress": round(self.progress, 4), "criteria": self.criteria}


def evaluate_all(*, at: datetime | None = None, model_ids: list[int] | None = None) -> list[ModelMaturity]:
    """Every model's maturity as the records stood at ``at`` (now by default), in name order."""
    results = []
    for loaded in load_facts(at=at or timezone.now(), model_ids=model_ids):
        facts = loaded.facts
        criteria = judge(facts)
        level, progress = level_from(criteria)
        results.append(ModelMaturity(
            model=loaded.model, level=level, progress=progress, criteria=criteria,
            production_version=loaded.production_version, health=health_of(facts.last_report, facts.open_alert),
            last_report=facts.last_report, last_retraining=facts.last_retraining, releases=facts.releases))
    return results


def evaluate_model(model: RegisteredModel, *, at: datetime | None = None) -> ModelMaturity | None:
    found = evaluate_all(at=at, model_ids=[model.pk])
    return found[0] if found else None

