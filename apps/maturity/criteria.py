"""Each model's MLOps maturity, computed from the records only (never self-declared).

``evaluate_all(at=...)`` answers for every model as the records stood at ``at``
(rows created later are ignored), in a constant number of queries whatever the number
of models: everything is loaded in bulk and judged in Python.

Level 0: manual. Level 1: pipeline automation / continuous training. Level 2: CI/CD
automation (after Google's definition). A model's level is the highest whose criteria
all hold (level 2 needs every level-1 criterion too); progress is the share of the next
level's criteria met.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import OuterRef, Q, Subquery
from django.urls import reverse
from django.utils import timezone

from apps.deployments.models import Deployment
from apps.monitoring.models import Alert, DriftReport, MonitorPolicy, Retraining, RetrainPolicy
from apps.registry.models import ModelVersion, PromotionRequest, RegisteredModel, Stage, StageTransition

from .models import MaturitySettings, PipelineChange

MAX_LEVEL = 2

# key, level, title: the checklist, in order
CRITERIA: list[tuple[str, int, str]] = [
    ("pipeline_run", 1, "The production version was trained by a pipeline run of this system"),
    ("continuous_training", 1, "Continuous training is on and produced a version within its period"),
    ("data_validated", 1, "The training data passed validation (no override)"),
    ("gates_passed", 1, "The production promotion passed every gate"),
    ("lineage", 1, "Lineage is complete: data hash, spec, seeds, code and library versions"),
    ("staging_first", 1, "The version ran in staging before production"),
    ("drift_checks", 1, "Drift checks of production ran within the period"),
    ("ci_pipeline", 2, "The production version came from a CI pipeline change, trained and gated automatically"),
    ("auto_staging", 2, "Deployment to staging after the gates was automatic"),
    ("smoke_test", 2, "A smoke test of the staging deployment ran before the production approval"),
    ("alerting", 2, "Alerts have a channel and performance is measured against ground truth"),
    ("rollback", 2, "A rollback target exists and a rollback has been exercised"),
    ("releases", 2, "Enough production releases in the release window"),
]
TITLES = {key: title for key, _, title in CRITERIA}
LEVEL_OF = {key: level for key, level, _ in CRITERIA}


@dataclass
class ModelMaturity:
    model: RegisteredModel
    level: int
    progress: float
    criteria: list[dict]
    production_version: ModelVersion | None = None
    health: str = "unknown"
    last_report: dict | None = None
    last_retraining: dict | None = None
    releases: int = 0
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"model": self.model.name, "model_id": self.model.pk, "level": self.level,
                "progress": round(self.progress, 4), "criteria": self.criteria}


def _link(label: str, name: str, pk: int) -> dict:
    return {"label": label, "url": reverse(name, args=[pk])}


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


def health_of(last_report: dict | None, open_alerts: bool) -> str:
    """Monitoring's verdict: ok, warning or drifting from the latest drift report and open alerts."""
    if last_report is None:
        return "unknown"
    if open_alerts or last_report["status"] == "drifting":
        return "drifting"
    if last_report["status"] == "not_enough_data" or last_report["drifted_features"]:
        return "warning"
    return "ok"


def evaluate_all(*, at: datetime | None = None, model_ids: list[int] | None = None) -> list[ModelMaturity]:
    now = at or timezone.now()
    cfg = MaturitySettings.load()
    models_qs = RegisteredModel.objects.filter(created_at__lte=now).order_by("name")
    if model_ids is not None:
        models_qs = models_qs.filter(pk__in=model_ids)
    models = list(models_qs)
    ids = [m.pk for m in models]
    if not ids:
        return []

    # stage history, replayed: the production version at `now`, staging first, releases
    transitions = list(StageTransition.objects.filter(model_version__model_id__in=ids, created_at__lte=now)
                       .order_by("created_at", "id")
                       .values("model_version_id", "model_version__model_id", "from_stage", "to_stage",
                               "created_at", "promotion_id"))
    production: dict[int, int] = {}
    prod_transition: dict[int, dict] = {}
    staged_at: dict[int, datetime] = {}
    releases: dict[int, int] = dict.fromkeys(ids, 0)
    window_start = now - timedelta(days=cfg.releases_window_days)
    for t in transitions:
        model_id, version_id = t["model_version__model_id"], t["model_version_id"]
        if t["to_stage"] == Stage.PRODUCTION:
            production[model_id] = version_id
            prod_transition[version_id] = t
            if t["created_at"] >= window_start:
                releases[model_id] += 1
        elif t["from_stage"] == Stage.PRODUCTION and production.get(model_id) == version_id:
            production.pop(model_id, None)
        if t["to_stage"] == Stage.STAGING:
            staged_at.setdefault(version_id, t["created_at"])

    versions = ModelVersion.objects.filter(pk__in=list(production.values())).select_related(
        "run__dataset_version__dataset", "run__job", "run__experiment").defer(
        "signature", "metrics", "classes", "run__charts", "run__log", "run__importances", "run__cv_scores",
        "run__cv_mean", "run__signature", "run__classes", "run__metrics", "run__dataset_version__profile",
        "run__dataset_version__reference", "run__dataset_version__schema", "run__dataset_version__validation")
    by_id = {m.pk: m for m in models}
    versions = {v.pk: v for v in versions}
    for v in versions.values():
        v.model = by_id[v.model_id]  # labels name the model; no query per version

    changes: dict[int, dict] = {}
    run_ids = [v.run_id for v in versions.values()]
    for c in (PipelineChange.objects.filter(run_id__in=run_ids, created_at__lte=now).order_by("created_at")
              .values("id", "run_id", "status", "staging_promotion_id", "auto_approved", "deployment_id",
                      "smoke_passed_at", "smoke", "model_id")):
        changes[c["run_id"]] = c

    promotion_ids = [t["promotion_id"] for v, t in prod_transition.items() if v in versions and t["promotion_id"]]
    promotion_ids += [c["staging_promotion_id"] for c in changes.values() if c["staging_promotion_id"]]
    promotions = {p["id"]: p for p in PromotionRequest.objects.filter(pk__in=promotion_ids).values(
        "id", "gates", "override_reason", "status", "decided_at")}

    latest_report = DriftReport.objects.filter(policy=OuterRef("pk"), created_at__lte=now).order_by(
        "-created_at", "-id").values("pk")[:1]
    latest_perf = DriftReport.objects.filter(policy=OuterRef("pk"), created_at__lte=now,
                                             performance__has_key="metrics").order_by("-created_at", "-id").values("pk")[:1]
    latest_retraining = Retraining.objects.filter(policy=OuterRef("pk"), created_at__lte=now).order_by(
        "-created_at", "-id").values("pk")[:1]
    latest_success = Retraining.objects.filter(policy=OuterRef("pk"), model_version__isnull=False,
                                               finished_at__lte=now).order_by("-finished_at", "-id").values("pk")[:1]
    policies: dict[int, MonitorPolicy] = {}
    for p in (MonitorPolicy.objects.filter(model_id__in=ids, environment__is_production=True)
              .order_by("environment__order", "pk")
              .annotate(latest_report_id=Subquery(latest_report), latest_perf_id=Subquery(latest_perf),
                        latest_retraining_id=Subquery(latest_retraining),
                        latest_success_id=Subquery(latest_success))):
        policies.setdefault(p.model_id, p)
    report_ids = {i for p in policies.values() for i in (p.latest_report_id, p.latest_perf_id) if i}
    reports = {r["id"]: r for r in DriftReport.objects.filter(pk__in=report_ids).values(
        "id", "created_at", "window_end", "status", "drifted_features", "drift_share", "rows")}
    retraining_ids = {i for p in policies.values() for i in (p.latest_retraining_id, p.latest_success_id) if i}
    retrainings = {r["id"]: r for r in Retraining.objects.filter(pk__in=retraining_ids).values(
        "id", "status", "created_at", "finished_at", "model_version_id", "trigger")}
    alerting_policies = set(Alert.objects.filter(policy_id__in=[p.pk for p in policies.values()], opened_at__lte=now)
                            .filter(Q(resolved_at__isnull=True) | Q(resolved_at__gt=now))
                            .values_list("policy_id", flat=True))

    deployments: dict[int, list[dict]] = {}
    for d in (Deployment.objects.filter(model_id__in=ids, deployed_at__lte=now)
              .values("id", "model_id", "previous_id", "is_rollback", "retired_at", "deployed_at",
                      "environment__is_production", "environment__name")):
        deployments.setdefault(d["model_id"], []).append(d)

    results = []
    for model in models:
        version = versions.get(production.get(model.pk))
        policy = policies.get(model.pk)
        last_report = reports.get(policy.latest_report_id) if policy else None
        context = {
            "cfg": cfg, "now": now, "model": model, "version": version, "policy": policy,
            "transition": prod_transition.get(version.pk) if version else None,
            "staged_at": staged_at.get(version.pk) if version else None,
            "promotions": promotions, "change": changes.get(version.run_id) if version else None,
            "last_report": last_report,
            "perf_report": reports.get(policy.latest_perf_id) if policy else None,
            "success": retrainings.get(policy.latest_success_id) if policy else None,
            "deployments": deployments.get(model.pk, []), "releases": releases[model.pk],
        }
        criteria = [_criterion(key, context) for key, _, _ in CRITERIA]
        level, progress = level_from(criteria)
        results.append(ModelMaturity(
            model=model, level=level, progress=progress, criteria=criteria, production_version=version,
            health=health_of(last_report, policy is not None and policy.pk in alerting_policies),
            last_report=last_report,
            last_retraining=retrainings.get(policy.latest_retraining_id) if policy else None,
            releases=releases[model.pk], extra={"policy": policy},
        ))
    return results


def evaluate_model(model: RegisteredModel, *, at: datetime | None = None) -> ModelMaturity | None:
    found = evaluate_all(at=at, model_ids=[model.pk])
    return found[0] if found else None


def _result(key: str, met: bool, evidence: list[dict], hint: str, hint_url: str, detail: str = "") -> dict:
    return {"key": key, "level": LEVEL_OF[key], "title": TITLES[key], "met": bool(met), "evidence": evidence,
            "detail": detail, "hint": "" if met else hint, "hint_url": "" if met else hint_url}


def _criterion(key: str, c: dict) -> dict:
    model, version, cfg, now = c["model"], c["version"], c["cfg"], c["now"]
    model_url = reverse("registry:model", args=[model.pk])
    no_production = "Nothing is in production yet: request a promotion to production and have an analyst approve it."
    if version is None and key not in ("continuous_training", "alerting", "releases"):
        return _result(key, False, [], no_production, model_url, "no production version")
    policy = c["policy"]
    settings_url = reverse("monitoring:settings", args=[policy.pk]) if policy else reverse("deployments:list")
    no_policy = "Deploy the model to production: every production deployment gets a monitor policy."

    if key == "pipeline_run":
        run = version.run
        trained = bool(run.artifact_sha256) and run.job_id is not None and run.job.status == "succeeded"
        evidence = [_link(f"{version} ← run {run}", "experiments:run", run.pk)]
        if run.job_id:
            evidence.append(_link(f"training job #{run.job_id} ({run.job.status})", "core:job_detail", run.job_id))
        return _result(key, trained, evidence, "Train the model with a run of this system and register that run.",
                       reverse("experiments:list"), f"source: {run.get_source_display()}")

    if key == "continuous_training":
        if policy is None:
            return _result(key, False, [], no_policy, reverse("deployments:list"), "no production monitor policy")
        evidence = [_link(f"monitor policy: retraining {policy.get_retrain_policy_display().lower()}",
                          "monitoring:detail", policy.pk)]
        enabled = policy.retrain_policy != RetrainPolicy.OFF
        success = c["success"]
        recent = success is not None and success["finished_at"] >= now - timedelta(days=cfg.retraining_period_days)
        if success is not None:
            evidence.append(_link(f"retraining #{success['id']} produced a version on "
                                  f"{success['finished_at']:%Y-%m-%d}", "monitoring:retraining", success["id"]))
        if not enabled:
            hint = "Turn retraining on in the model's monitor policy (on drift, on schedule or on performance)."
        else:
            hint = (f"Continuous training has not produced a version in the last {cfg.retraining_period_days} days: "
                    "start a retraining from the monitoring page, or check why the last one failed.")
        return _result(key, enabled and recent, evidence, hint,
                       settings_url if not enabled else reverse("monitoring:detail", args=[policy.pk]))

    if key == "data_validated":
        data = version.run.dataset_version
        overridden = data.overridden_at is not None and data.overridden_at <= now
        ok = data.validation_status in ("pass", "warn") and not overridden
        detail = f"validation {data.validation_status}" + (" (overridden)" if overridden else "")
        return _result(key, ok, [_link(f"training data {data}: {detail}", "datasets:version", data.pk)],
                       "Fix the data so it passes validation, upload it as a new version and retrain on it.",
                       reverse("datasets:version", args=[data.pk]), detail)

    if key == "gates_passed":
        t = c["transition"]
        promotion = c["promotions"].get(t["promotion_id"]) if t and t["promotion_id"] else None
        if promotion is None:
            return _result(key, False, [], "Promote through a request so the gates run (not by hand).", model_url,
                           "no production promotion request")
        failed = [g["name"] for g in promotion["gates"] or [] if not g["passed"]]
        ok = bool(promotion["gates"]) and not failed and not promotion["override_reason"]
        evidence = [_link(f"production request #{promotion['id']}: "
                          + (f"failed {', '.join(failed)} (overridden)" if failed else "all gates passed"),
                          "registry:promotion", promotion["id"])]
        return _result(key, ok, evidence, "Train a version that passes every gate and promote it without override.",
                       model_url)

    if key == "lineage":
        run = version.run
        spec = run.spec or {}
        missing = [name for name, present in (
            ("dataset hash", bool(run.dataset_sha256)), ("spec", bool(spec.get("algorithm"))),
            ("split seed", spec.get("split_seed") is not None), ("random state", run.random_state is not None),
            ("app version", bool(run.app_version)), ("library versions", bool(run.library_versions))) if not present]
        detail = "complete" if not missing else f"missing {', '.join(missing)}"
        return _result(key, not missing, [_link(f"run {run}: lineage {detail}", "experiments:run", run.pk)],
                       "Retrain with a run of this version of the system: it records the full lineage.",
                       reverse("experiments:run", args=[run.pk]), detail)

    if key == "staging_first":
        t, staged = c["transition"], c["staged_at"]
        ok = t is not None and staged is not None and staged < t["created_at"]
        evidence = [_link(f"{version}: staging {staged:%Y-%m-%d %H:%M}" if staged else f"{version}: never in staging",
                          "registry:version", version.pk)]
        return _result(key, ok, evidence, "Promote the next version to staging first, then to production "
                       "(set \"production only after staging\" in the model's gate policy).", model_url)

    if key == "drift_checks":
        report = c["last_report"]
        if policy is None:
            return _result(key, False, [], no_policy, reverse("deployments:list"))
        ok = report is not None and report["created_at"] >= now - timedelta(days=cfg.drift_period_days)
        evidence = [_link(f"drift report {report['created_at']:%Y-%m-%d %H:%M}: {report['status']}",
                          "monitoring:report", report["id"])] if report else []
        return _result(key, ok, evidence, f"Run drift checks at least every {cfg.drift_period_days} days: enable "
                       "the scheduled checks in the monitor policy, or press \"Check drift now\".",
                       reverse("monitoring:detail", args=[policy.pk]))

    change = c["change"]
    change_link = [_link(f"pipeline change #{change['id']} ({change['status']})", "maturity:pipeline_change",
                         change["id"])] if change else []
    ci_hint = ("Send the next change from CI: POST /api/v1/models/{id}/pipeline-changes/ with the commit and "
               "the spec, then promote the version it produces.").replace("{id}", str(model.pk))

    if key == "ci_pipeline":
        run = version.run
        staging = c["promotions"].get(change["staging_promotion_id"]) if change else None
        ok = run.source == "ci" and change is not None and staging is not None and bool(staging["gates"])
        return _result(key, ok, [_link(f"run {run}: source {run.source}", "experiments:run", run.pk), *change_link],
                       ci_hint, reverse("maturity:model", args=[model.pk]))

    if key == "auto_staging":
        ok = change is not None and change["auto_approved"] and change["deployment_id"] is not None
        evidence = list(change_link)
        if change and change["deployment_id"]:
            evidence.append(_link(f"staging deployment #{change['deployment_id']}", "deployments:detail",
                                  change["deployment_id"]))
        return _result(key, ok, evidence, "Ask an admin to turn on \"auto-approve staging when all gates pass\" in "
                       "the model's pipeline policy (Django admin), then send a change from CI.",
                       reverse("admin:maturity_pipelinepolicy_changelist"))

    if key == "smoke_test":
        t = c["transition"]
        smoked = change["smoke_passed_at"] if change else None
        ok = smoked is not None and t is not None and smoked < t["created_at"]
        return _result(key, ok, change_link, "Send the change from CI: its pipeline smoke-tests the staging "
                       "deployment before the production request opens.", reverse("maturity:model", args=[model.pk]),
                       f"smoke test passed {smoked:%Y-%m-%d %H:%M}" if smoked else "no smoke test")

    if key == "alerting":
        if policy is None:
            return _result(key, False, [], no_policy, reverse("deployments:list"))
        perf = c["perf_report"]
        measured = perf is not None and perf["created_at"] >= now - timedelta(days=cfg.performance_period_days)
        evidence = [_link(f"alert channel: {'email' if policy.email_list else ''}"
                          f"{' + ' if policy.email_list and policy.webhook_url else ''}"
                          f"{'webhook' if policy.webhook_url else ''}" if policy.has_channel else "no alert channel",
                          "monitoring:detail", policy.pk)]
        if perf:
            evidence.append(_link(f"performance measured on labelled traffic ({perf['created_at']:%Y-%m-%d})",
                                  "monitoring:report", perf["id"]))
        if not policy.has_channel:
            hint, url = "Add alert emails or a webhook to the monitor policy.", settings_url
        else:
            hint = (f"Send ground truth (POST /api/v1/feedback/) for production predictions so the drift checks "
                    f"measure performance (at least 10 labelled rows within {cfg.performance_period_days} days).")
            url = reverse("monitoring:detail", args=[policy.pk])
        return _result(key, policy.has_channel and measured, evidence, hint, url)

    if key == "rollback":
        prod = [d for d in c["deployments"] if d["environment__is_production"]]
        active = next((d for d in sorted(prod, key=lambda d: d["deployed_at"], reverse=True)
                       if d["retired_at"] is None or d["retired_at"] > now), None)
        exercised = [d for d in c["deployments"] if d["is_rollback"]]
        evidence = []
        if active:
            evidence.append(_link(f"active production deployment #{active['id']}"
                                  + (f" (can roll back to #{active['previous_id']})" if active["previous_id"]
                                     else " (nothing to roll back to)"), "deployments:detail", active["id"]))
        if exercised:
            d = exercised[-1]
            evidence.append(_link(f"rollback exercised in {d['environment__name']} on {d['deployed_at']:%Y-%m-%d}",
                                  "deployments:detail", d["id"]))
        ok = active is not None and active["previous_id"] is not None and bool(exercised)
        hint = ("Deploy a second version to production so a rollback target exists, and rehearse a rollback "
                "(in staging or production) from the deployment page.")
        return _result(key, ok, evidence, hint, reverse("deployments:list"))

    if key == "releases":
        n = c["releases"]
        return _result(key, n >= cfg.min_releases,
                       [{"label": f"{n} production release{'s' if n != 1 else ''} in {cfg.releases_window_days} days",
                         "url": model_url}],
                       f"Release to production at least {cfg.min_releases} times in {cfg.releases_window_days} days.",
                       model_url, f"{n} of {cfg.min_releases}")
    raise KeyError(key)
