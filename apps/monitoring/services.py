"""Drift checks, alert episodes with notifications, and retraining that closes the loop."""

from __future__ import annotations

import logging
import os
import tempfile
from datetime import UTC, datetime, timedelta

import pandas as pd
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.services import system_user
from apps.core import roles
from apps.core.jobs import JobContext, JobFailed
from apps.core.models import Job
from apps.core.services import audit_record, job_create
from apps.datasets.models import VersionSource
from apps.datasets.services import dataset_version_create, dataset_version_profile, load_version_frame
from apps.deployments.models import Deployment, PredictionLog, PredictionSource
from apps.experiments.models import Run, RunSource
from apps.experiments.services import run_launch
from apps.ml import drift as D
from apps.ml import monitor
from apps.registry.models import OwnerReason
from apps.registry.services import model_version_register, promotion_request

from . import webhooks
from .external import OWNER_EVENT, drift_reference_of, expected_metrics, notify_owner, retrain_elsewhere_text
from .models import (
    UNFINISHED_RETRAINING,
    Alert,
    AlertStatus,
    DriftReport,
    MonitorPolicy,
    ReportStatus,
    Retraining,
    RetrainingStatus,
    RetrainPolicy,
)

logger = logging.getLogger(__name__)

CHECK_JOB = "monitoring.drift_check"
NOTIFY_JOB = "monitoring.notify"
RETRAIN_JOB = "monitoring.retrain"
MAX_WINDOW_ROWS = 200_000
# Batch scoring and smoke tests are not what production sees.
NOT_PRODUCTION_SOURCES = (PredictionSource.BATCH, PredictionSource.SMOKE)
# People trying the model (the try-it form, personal tokens) can send it anything.
INTERACTIVE_SOURCE = PredictionSource.INTERACTIVE


def _is_admin(user) -> bool:
    return bool(getattr(user, "is_authenticated", False) and user.is_active and user.is_staff)


def policy_may_edit(user) -> bool:
    """ML engineers and admins change how a model is watched."""
    return _is_admin(user) or roles.can(user, "launch_training")


def policy_may_set_webhook(user) -> bool:
    """Only admins point the worker at a URL (the worker's network is theirs to open)."""
    return _is_admin(user)


def may_request_check(user) -> bool:
    return roles.can(user, "launch_training") or roles.can(user, "decide_promotion") or _is_admin(user)


def policy_ensure(*, model, environment) -> MonitorPolicy:
    # The first scheduled check comes one period after the deployment, when there is a window to judge.
    policy, _ = MonitorPolicy.objects.get_or_create(
        model=model, environment=environment,
        defaults={"enabled": environment.is_production, "next_run_at": timezone.now() + timedelta(minutes=60)})
    return policy


def policy_update(*, user, policy: MonitorPolicy, values: dict) -> MonitorPolicy:
    """Change a policy's settings (``values``: field name -> new value), validated by the model."""
    if not policy_may_edit(user):
        raise PermissionDenied("Only ML engineers and admins change monitor policies.")
    with transaction.atomic():
        current = MonitorPolicy.objects.select_for_update().get(pk=policy.pk)
        if "webhook_url" in values and values["webhook_url"] != current.webhook_url and not policy_may_set_webhook(user):
            raise PermissionDenied("Only admins set webhook URLs.")
        before = {k: getattr(current, k) for k in values}
        for key, value in values.items():
            setattr(current, key, value)
        current.changed_by = user
        current.full_clean()
        current.save()
        audit_record(actor=user, action="monitor_policy.update", obj=current, before=before, after=values)
    return current


def active_deployment_of(policy: MonitorPolicy) -> Deployment | None:
    return (Deployment.objects.filter(model=policy.model, environment=policy.environment, status="active")
            .select_related("model_version__run__dataset_version", "model_version__run__experiment").first())


def check_request(*, user, policy: MonitorPolicy, window_start: datetime | None = None,
                  window_end: datetime | None = None) -> Job:
    """Queue a drift check now (the API's and the button's action)."""
    if not may_request_check(user):
        raise PermissionDenied("Only ML engineers, analysts and admins run drift checks.")
    if window_start and window_end and window_start >= window_end:
        raise ValidationError({"window_start": "The window must start before it ends."})
    _check_window_bounds(window_start=window_start, window_end=window_end)
    if active_deployment_of(policy) is None:
        raise ValidationError({"deployment": f"{policy.model.name} has no active deployment in {policy.environment}."})
    params = {}
    if window_start:
        params["window_start"] = window_start.isoformat()
    if window_end:
        params["window_end"] = window_end.isoformat()
    return job_create(kind=CHECK_JOB, created_by=user, target=policy, params=params, message="Waiting to check")


EARLIEST_WINDOW = datetime(2000, 1, 1, tzinfo=UTC)


def _check_window_bounds(**bounds: datetime | None) -> None:
    # the job subtracts the policy's window from its end: a year-1 end would overflow in the worker
    latest = timezone.now() + timedelta(days=1)
    for name, moment in bounds.items():
        if moment is not None and not EARLIEST_WINDOW <= moment <= latest:
            raise ValidationError({name: f"{name} must lie between {EARLIEST_WINDOW:%Y-%m-%d} and tomorrow; "
                                         f"got {moment.isoformat()}."})


def _window(policy: MonitorPolicy, deployment_ids: list[int], start: datetime | None, end: datetime | None):
    excluded = NOT_PRODUCTION_SOURCES if policy.include_interactive else (*NOT_PRODUCTION_SOURCES, INTERACTIVE_SOURCE)
    logs = PredictionLog.objects.filter(deployment_id__in=deployment_ids).exclude(source__in=excluded)
    end = end or timezone.now()
    if start is None and policy.window_predictions:
        rows = list(logs.filter(created_at__lte=end).order_by("-id")
                    .values_list("created_at", "features", "prediction", "probability", "label")
                    [:policy.window_predictions])
        start = min((r[0] for r in rows), default=end)
        return start, end, rows
    start = start or end - timedelta(hours=policy.window_hours)
    rows = list(logs.filter(created_at__gte=start, created_at__lt=end).order_by("-id")
                .values_list("created_at", "features", "prediction", "probability", "label")[:MAX_WINDOW_ROWS])
    return start, end, rows


def _drift_settings(policy: MonitorPolicy) -> monitor.DriftSettings:
    return monitor.DriftSettings(
        numeric_method=policy.numeric_method, numeric_threshold=policy.numeric_threshold,
        categorical_method=policy.categorical_method, categorical_threshold=policy.categorical_threshold,
        min_rows=policy.min_rows,
    )


def drift_check(*, policy: MonitorPolicy, window_start: datetime | None = None, window_end: datetime | None = None,
                job: Job | None = None, progress=None) -> DriftReport:
    """Compare a window of logged inputs with the stored reference summary (never the training file)."""
    deployment = active_deployment_of(policy)
    if deployment is None:
        raise JobFailed(f"{policy.model.name} has no active deployment in {policy.environment}.")
    version = deployment.model_version
    chosen = drift_reference_of(policy, version)
    reference_version = chosen.dataset_version
    if reference_version is None:
        raise JobFailed(chosen.why)
    reference = reference_version.reference or {}
    if not reference:
        raise JobFailed(f"{reference_version} has no reference summary (was it profiled?).")
    slot = list(Deployment.objects.filter(model=policy.model, environment=policy.environment)
                .values_list("pk", flat=True))
    if progress:
        progress(10, "Reading the window of logged predictions")
    start, end, rows = _window(policy, slot, window_start, window_end)
    if progress:
        progress(40, f"Comparing {len(rows):,} rows with {reference_version}")
    verdicts = monitor.feature_verdicts(version.signature, reference, [r[1] for r in rows], _drift_settings(policy))
    summary = D.dataset_drift(verdicts, share=policy.drift_share)
    predictions = [r[2] for r in rows]
    prediction = monitor.prediction_drift(reference.get(chosen.target), predictions, min_rows=policy.min_rows)
    performance = monitor.live_performance(chosen.task_type, predictions, [r[3] for r in rows],
                                           [r[4] for r in rows], version.classes)
    performance["holdout"] = expected_metrics(version)
    enough = len(rows) >= policy.min_rows and summary["dataset_drift"] is not None
    status = (ReportStatus.NOT_ENOUGH_DATA if not enough
              else ReportStatus.DRIFTING if summary["dataset_drift"] else ReportStatus.OK)
    with transaction.atomic():
        report = DriftReport.objects.create(
            policy=policy, deployment=deployment, model_version=version, reference_dataset_version=reference_version,
            window_start=start, window_end=end, rows=len(rows), status=status,
            dataset_drift=summary["dataset_drift"] if enough else None,
            drift_share=summary["drift_share"] if enough else None, drifted_features=summary["drifted"],
            features=[v.to_dict() for v in verdicts], prediction_drift=prediction, performance=performance, job=job,
        )
        MonitorPolicy.objects.filter(pk=policy.pk).update(last_run_at=timezone.now())
        newest = policy.reports.exclude(pk=report.pk).order_by("-window_end").values_list("window_end", flat=True).first()
        # A check of an older window is a look back: it must not open or resolve today's episode.
        if newest is None or report.window_end >= newest:
            _update_alerts(policy, report)
    return report


def _performance_breached(policy: MonitorPolicy, report: DriftReport) -> bool | None:
    metric = policy.performance_metric or policy.model.primary_metric
    value = (report.performance.get("metrics") or {}).get(metric)
    return monitor.performance_breached(metric, value, policy.performance_threshold)


def _alert_message(policy: MonitorPolicy, report: DriftReport, kind: str) -> str:
    if kind == "drift":
        judged = sum(1 for f in report.features if f.get("drifted") is not None)
        return (f"Dataset drift on {policy}: {len(report.drifted_features)} of {judged} features drifted "
                f"({', '.join(report.drifted_features)}), share {report.drift_share:.0%} ≥ {policy.drift_share:.0%}.")
    metric = policy.performance_metric or policy.model.primary_metric
    value = report.performance["metrics"][metric]
    return (f"Performance on {policy}: {metric} {value:.4f} on {report.performance['labelled_rows']} "
            f"labelled rows breaks the threshold {policy.performance_threshold}.")


def _notify_on_commit(alert: Alert, event: str) -> None:
    transaction.on_commit(lambda pk=alert.pk: job_create(kind=NOTIFY_JOB, target=Alert.objects.get(pk=pk),
                                                         params={"event": event}))


def _update_alerts(policy: MonitorPolicy, report: DriftReport) -> None:
    """Open an alert when a threshold is crossed, resolve it when back to normal; never repeat."""
    states = {"drift": report.dataset_drift if report.status != ReportStatus.NOT_ENOUGH_DATA else None,
              "performance": _performance_breached(policy, report)}
    for kind, breached in states.items():
        if breached is None:
            continue
        open_alert = Alert.objects.select_for_update().filter(policy=policy, kind=kind, status=AlertStatus.OPEN).first()
        if breached and open_alert is None:
            message = _alert_message(policy, report, kind)
            try:
                with transaction.atomic():
                    alert = Alert.objects.create(policy=policy, kind=kind, message=message, opened_at=report.window_end,
                                                 opened_by=report)
            except IntegrityError:
                continue  # a concurrent check opened it
            audit_record(actor=None, action="alert.open", obj=alert, note=message)
            _notify_on_commit(alert, "opened")
            trigger = policy.retrain_policy == RetrainPolicy.ON_DRIFT and kind == "drift" or (
                policy.retrain_policy == RetrainPolicy.ON_PERFORMANCE and kind == "performance")
            if report.model_version is not None and report.model_version.is_external:
                _notify_on_commit(alert, OWNER_EVENT)  # its code is not ours: its owner retrains it, whatever the policy
            elif trigger:
                # a check someone asked for (and whose window they chose) retrains on their behalf
                retraining_start(policy=policy, trigger=kind, alert=alert, window_start=report.window_start,
                                 window_end=report.window_end, user=report.job.created_by if report.job else None)
        elif not breached and open_alert is not None:
            open_alert.resolve(report=report)
            audit_record(actor=None, action="alert.resolve", obj=open_alert)
            _notify_on_commit(open_alert, "resolved")


def alert_payload(alert: Alert, event: str) -> dict:
    report = alert.resolved_by if event == "resolved" and alert.resolved_by else alert.opened_by
    return {
        "event": f"alert.{event}",
        "alert": {"id": alert.pk, "kind": alert.kind, "status": alert.status, "message": alert.message,
                  "opened_at": alert.opened_at.isoformat(),
                  "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None},
        "model": alert.policy.model.name,
        "environment": alert.policy.environment.name,
        "report": {"id": report.pk, "window_start": report.window_start.isoformat(),
                   "window_end": report.window_end.isoformat(), "drift_share": report.drift_share,
                   "drifted_features": report.drifted_features, "url": report.get_absolute_url()},
    }


def alert_notify(*, alert: Alert, event: str) -> dict:
    """Email and webhook, each recorded; the webhook is retried a bounded number of times (see webhooks).
    ``OWNER_EVENT`` tells the owner of a model trained elsewhere to retrain it."""
    policy = alert.policy
    if event == OWNER_EVENT:
        return _record_outcomes(alert, event, [notify_owner(alert)])
    payload = alert_payload(alert, event)
    outcomes = []
    if policy.email_list:
        try:
            send_mail(subject=f"[MLOps] {alert.get_kind_display()} alert {event}: {policy}",
                      message=f"{alert.message}\n\nReport: {payload['report']['url']}\n", from_email=None,
                      recipient_list=policy.email_list)
            outcomes.append({"channel": "email", "ok": True, "to": policy.email_list})
        except Exception as exc:  # recorded, not raised: the webhook still goes out
            outcomes.append({"channel": "email", "ok": False, "error": str(exc)[:300]})
    if policy.webhook_url:
        outcomes.append(webhooks.deliver(policy.webhook_url, payload))
    return _record_outcomes(alert, event, outcomes)


def _record_outcomes(alert: Alert, event: str, outcomes: list[dict]) -> dict:
    with transaction.atomic():
        alert = Alert.objects.select_for_update().get(pk=alert.pk)
        alert.notifications = [*alert.notifications, {"event": event, "at": timezone.now().isoformat(),
                                                      "outcomes": outcomes}]
        alert.save(update_fields=["notifications"])
    return {"message": f"Notified: {', '.join(o['channel'] + (' ok' if o['ok'] else ' failed') for o in outcomes) or 'no channel'}"}


def retraining_start(*, policy: MonitorPolicy, trigger: str, alert: Alert | None = None,
                     window_start: datetime | None = None, window_end: datetime | None = None,
                     user=None) -> Retraining | None:
    """Queue a retraining; None when the policy already has an unfinished one (one at a time), or when the
    deployed version was trained elsewhere (its code is not ours to run)."""
    deployment = active_deployment_of(policy)
    if deployment is not None and deployment.model_version.is_external:
        return None
    if has_unfinished_retraining(policy):
        return None
    try:
        with transaction.atomic():
            retraining = Retraining.objects.create(policy=policy, trigger=trigger, alert=alert,
                                                   source_version=deployment.model_version if deployment else None)
    except IntegrityError:  # a concurrent start won
        return None
    params = {}
    if window_start:
        params["window_start"] = window_start.isoformat()
    if window_end:
        params["window_end"] = window_end.isoformat()
    retraining.job = job_create(kind=RETRAIN_JOB, created_by=user, target=retraining, params=params,
                                message="Waiting to retrain")
    retraining.save(update_fields=["job"])
    audit_record(actor=user, action="retraining.start", obj=retraining, after={"trigger": trigger})
    return retraining


def has_unfinished_retraining(policy: MonitorPolicy) -> bool:
    unfinished = policy.retrainings.filter(status__in=UNFINISHED_RETRAINING).select_related("job", "run__job")
    return any(retraining_refresh(r).status in UNFINISHED_RETRAINING for r in unfinished)


def retraining_request(*, user, policy: MonitorPolicy) -> Retraining:
    """Retrain now, by hand (the button's action)."""
    roles.require(user, "launch_training")
    deployment = active_deployment_of(policy)
    if deployment is None:
        raise ValidationError({"deployment": "Nothing is deployed to retrain."})
    if deployment.model_version.is_external:
        raise ValidationError({"retraining": retrain_elsewhere_text(deployment.model_version)})
    with transaction.atomic():
        retraining = retraining_start(policy=policy, trigger="manual", user=user)
    if retraining is None:
        raise ValidationError({"retraining": f"A retraining of {policy} is still running; wait for it to finish."})
    return retraining


def retraining_prepare(*, retraining: Retraining, ctx: JobContext) -> dict:
    """Build the new training data (training rows + labelled production rows) and launch the run."""
    policy = retraining.policy
    version = retraining.source_version
    if version is None:
        raise JobFailed("There was no deployed version to retrain.")
    run = version.run
    source = run.dataset_version
    target = run.experiment.target
    ctx.progress(5, f"Loading the training data {source}")
    frame = load_version_frame(source)
    added = 0
    if policy.include_production_rows:
        start = ctx.params.get("window_start")
        end = ctx.params.get("window_end")
        slot = Deployment.objects.filter(model=policy.model, environment=policy.environment).values_list("pk", flat=True)
        logs = PredictionLog.objects.filter(deployment_id__in=list(slot), label__isnull=False)
        if start:
            logs = logs.filter(created_at__gte=datetime.fromisoformat(start))
        if end:
            logs = logs.filter(created_at__lt=datetime.fromisoformat(end))
        labelled = [dict(features, **{target: label}) for features, label in logs.values_list("features", "label")]
        if labelled:
            extra = pd.DataFrame(labelled)
            extra = extra[[c for c in frame.columns if c in extra.columns]]
            _fill_identifiers(extra, frame, source.schema)
            frame = pd.concat([frame, extra], ignore_index=True)
            added = len(labelled)
    ctx.progress(30, f"Writing the new training data ({len(frame):,} rows, {added:,} from production)")
    fd, path = tempfile.mkstemp(suffix=".csv")
    os.close(fd)
    system = system_user()
    try:
        frame.to_csv(path, index=False)
        new_version, _ = dataset_version_create(
            user=system, dataset=source.dataset, path=path, original_filename=f"retraining-{retraining.pk}.csv",
            note=f"Retraining #{retraining.pk}: {source} + {added} labelled production rows", source=VersionSource.FEEDBACK,
        )
    finally:
        os.unlink(path)
    ctx.progress(45, f"Profiling and validating {new_version}")
    if new_version.status != "ready":
        dataset_version_profile(version=new_version)
        new_version.refresh_from_db()
    Retraining.objects.filter(pk=retraining.pk).update(dataset_version=new_version, production_rows=added)
    if not new_version.usable_for_training:
        raise JobFailed(f"The new training data {new_version} failed validation; retraining stopped "
                        "(fix the data or override the validation, then retrain).")
    ctx.progress(70, "Launching the training run with the deployed version's spec")
    new_run = run_launch(user=system, experiment=run.experiment, dataset_version=new_version, algorithm=run.algorithm,
                         params=run.params, random_state=run.random_state, source=RunSource.RETRAINING)
    Retraining.objects.filter(pk=retraining.pk).update(run=new_run, status="training")
    audit_record(actor=system, action="retraining.run", obj=retraining, after={"run": new_run.pk})
    return {"message": f"Run #{new_run.number} is training on {new_version}", "run": new_run.pk}


def _fill_identifiers(extra: pd.DataFrame, frame: pd.DataFrame, schema: list[dict]) -> None:
    """Production rows carry no record identifier; give them fresh ones so that unique-key and
    missing-value rules judge the data, not the absence of an id the model never used."""
    for column in schema:
        name = column["name"]
        if column.get("role") != "id" or name in extra.columns:
            continue
        existing = pd.to_numeric(frame[name], errors="coerce")
        if existing.notna().all():
            start = int(existing.max()) + 1
            extra[name] = range(start, start + len(extra))
        else:
            extra[name] = [f"production-{i}" for i in range(len(extra))]


def retraining_finish(*, run: Run) -> Retraining | None:
    """After the retraining run trained: register it and open a promotion request as the system user."""
    retraining = Retraining.objects.select_related("policy__model", "source_version", "job__created_by").filter(run=run).first()
    if retraining is None or retraining.model_version_id:
        return retraining
    system = system_user()
    version = model_version_register(user=system, run=run, model_name=retraining.policy.model.name)
    target = "staging" if retraining.policy.model.require_staging_first else "production"
    why = {"drift": "drift alert", "performance": "performance alert", "schedule": "scheduled retraining",
           "manual": "manual retraining"}[retraining.trigger]
    promotion = promotion_request(
        user=system, version=version, target_stage=target,
        on_behalf_of=retraining.job.created_by if retraining.job else None, owners=_retraining_owners(retraining),
        reason=f"Continuous training after a {why} on {retraining.policy}: retrained on {run.dataset_version} "
               f"({retraining.production_rows} labelled production rows added).",
    )
    Retraining.objects.filter(pk=retraining.pk).update(model_version=version, promotion=promotion, status="awaiting approval",
                                                       finished_at=timezone.now())
    audit_record(actor=system, action="retraining.registered", obj=retraining,
                 after={"model_version": version.pk, "promotion": promotion.pk})
    retraining.refresh_from_db()
    return retraining


def _retraining_owners(retraining: Retraining) -> list[tuple[int | None, str]]:
    """Who shaped what a retraining learned, besides whoever started it: for an automated one the
    policy's last editor, and whoever labelled the production rows of its training window."""
    policy = retraining.policy
    owners = [] if retraining.trigger == "manual" else [(policy.changed_by_id, OwnerReason.POLICY_EDITOR)]
    if retraining.production_rows:
        params = retraining.job.params if retraining.job else {}
        slot = Deployment.objects.filter(model_id=policy.model_id, environment_id=policy.environment_id)
        logs = PredictionLog.objects.filter(deployment_id__in=list(slot.values_list("pk", flat=True)),
                                            labelled_by__isnull=False)
        if params.get("window_start"):
            logs = logs.filter(created_at__gte=datetime.fromisoformat(params["window_start"]))
        if params.get("window_end"):
            logs = logs.filter(created_at__lt=datetime.fromisoformat(params["window_end"]))
        labellers = logs.order_by().values_list("labelled_by", flat=True).distinct()  # no ordering: one row a person
        owners += [(pk, OwnerReason.LABELLER) for pk in labellers]
    return owners


def retraining_refresh(retraining: Retraining) -> Retraining:
    """A retraining whose job or run ended without success says so (it never stays 'training')."""
    failed = None
    if retraining.status == RetrainingStatus.STARTED and retraining.job is None:
        failed = "The retraining was never queued."
    elif retraining.status == "started" and retraining.job and retraining.job.status in ("failed", "cancelled"):
        failed = retraining.job.error or f"The retraining job was {retraining.job.status}."
    elif retraining.status == "training" and retraining.run and retraining.run.job and \
            retraining.run.job.status in ("failed", "cancelled"):
        failed = retraining.run.job.error or f"The training run was {retraining.run.job.status}."
    if failed:
        Retraining.objects.filter(pk=retraining.pk).update(status="failed", error=failed[:2000],
                                                           finished_at=timezone.now())
        retraining.status, retraining.error = "failed", failed
    return retraining


def schedule_due_checks(*, now: datetime | None = None) -> dict:
    """Beat: queue the drift checks that are due, and scheduled retrainings."""
    now = now or timezone.now()
    queued, retrained = [], []
    for policy in MonitorPolicy.objects.filter(enabled=True, next_run_at__lte=now).select_related("model", "environment"):
        with transaction.atomic():
            claimed = MonitorPolicy.objects.filter(pk=policy.pk, next_run_at=policy.next_run_at).update(
                next_run_at=now + timedelta(minutes=max(1, policy.schedule_minutes)))
            if not claimed or active_deployment_of(policy) is None:
                continue
            job_create(kind=CHECK_JOB, target=policy, message="Scheduled drift check")
            queued.append(policy.pk)
    for policy in MonitorPolicy.objects.filter(enabled=True, retrain_policy=RetrainPolicy.ON_SCHEDULE):
        last = policy.retrainings.order_by("-created_at").first()
        every = timedelta(days=max(1, policy.retrain_every_days))  # a row saved before the rule said at least 1
        due = last is None or last.created_at < now - every
        if not due or has_unfinished_retraining(policy) or active_deployment_of(policy) is None:
            continue
        with transaction.atomic():
            if retraining_start(policy=policy, trigger="schedule") is not None:
                retrained.append(policy.pk)
    return {"checks": queued, "retrainings": retrained}
