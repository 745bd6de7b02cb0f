"""Registry workflows: register a run, request a promotion (gates run as a job), approve
or reject it under the four-eyes rule, and answer what was in production when."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from datetime import datetime

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.db.models.functions import Lower
from django.utils import timezone

from apps.core import roles
from apps.core.api_errors import Conflict
from apps.core.jobs import JobContext
from apps.core.services import audit_record, job_create
from apps.datasets.services import load_version_frame
from apps.experiments.models import Run, RunSource
from apps.ml import gates as G
from apps.ml.errors import ArtifactError
from apps.ml.metrics import METRICS
from apps.ml.train import TrainingSpec, _target_array, holdout_split

from .evaluation import Evaluation, evaluation_resolve
from .loading import deployability_now, refusal_text
from .models import (
    OWNERSHIP_OF_THE_VERSION,
    PROMOTION_TARGETS,
    ModelVersion,
    OwnerReason,
    PromotionOwner,
    PromotionRequest,
    PromotionStatus,
    RegisteredModel,
    Stage,
    StageTransition,
)
from .scoring import SCORING_ERRORS, external_gates, score_on
from .signals import gates_evaluated, promotion_decided

logger = logging.getLogger(__name__)

GATES_JOB = "registry.evaluate_gates"


def default_policy(task_type: str, primary_metric: str) -> dict:
    """Sensible gate defaults: 0.7 on a higher-is-better primary metric, else R² ≥ 0.5 or ROC AUC ≥ 0.7."""
    if METRICS.get(primary_metric, {}).get("higher_is_better", True):
        return {"threshold_metric": primary_metric, "threshold_value": 0.7}
    if task_type == "regression":
        return {"threshold_metric": "r2", "threshold_value": 0.5}
    return {"threshold_metric": "roc_auc", "threshold_value": 0.7}


def model_version_register(*, user, run: Run, model_name: str, description: str = "") -> ModelVersion:
    roles.require(user, "register_model")
    model_name = (model_name or "").strip()
    if not model_name:
        raise ValidationError({"model_name": "Name the model this run becomes a version of."})
    if len(model_name) > 100:
        raise ValidationError({"model_name": "A model name has at most 100 characters."})
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", model_name):
        raise ValidationError({"model_name": "Use letters, digits, '.', '_' and '-' only: the name is part of "
                                             "the prediction URL."})
    if run.parent_id:
        raise ValidationError({"run": "A grid-search trial has no artifact; register its parent run."})
    # The artifact and metrics are written in the run's final transaction: their presence, not the
    # job row (which the worker marks a moment later), says the training finished.
    if not (run.artifact_sha256 and run.metrics) or run.status in ("failed", "cancelled"):
        raise ValidationError({"run": f"Run #{run.number} has not finished training successfully ({run.status})."})
    experiment = run.experiment
    with transaction.atomic():
        model = RegisteredModel.objects.select_for_update().annotate(lname=Lower("name")).filter(
            lname=model_name.lower()).first()
        if model is None:
            try:
                with transaction.atomic():
                    model = RegisteredModel.objects.create(
                        name=model_name, owner=user, task_type=experiment.task_type,
                        primary_metric=experiment.primary_metric,
                        description=experiment.description,
                        **default_policy(experiment.task_type, experiment.primary_metric),
                    )
            except IntegrityError:
                raise Conflict(f"The model {model_name!r} was just created by someone else; try again.") from None
            audit_record(actor=user, action="model.create", obj=model, after={"name": model.name})
        elif model.task_type != experiment.task_type:
            raise ValidationError(
                {"model_name": f"{model.name!r} is a {model.task_type} model; run #{run.number} is {experiment.task_type}."}
            )
        existing = model.versions.filter(run=run).first()
        if existing is not None:
            raise Conflict(f"Run #{run.number} is already registered as {existing}.")
        number = (model.versions.aggregate(n=Max("version"))["n"] or 0) + 1
        version = ModelVersion.objects.create(
            model=model, version=number, run=run, artifact_name=run.artifact.name,
            artifact_sha256=run.artifact_sha256, signature=run.signature, metrics=run.metrics,
            classes=run.classes, description=(description or "").strip(), created_by=user,
            deployable=True, serialization_format="skops", flavors=["sklearn"],
            sklearn_version=(run.library_versions or {}).get("sklearn", ""),
        )
        RegisteredModel.objects.filter(pk=model.pk).update(updated_at=timezone.now())
        audit_record(actor=user, action="model_version.register", obj=version,
                     after={"run": run.pk, "artifact_sha256": run.artifact_sha256})
    return version


def current_in_stage(model: RegisteredModel, stage: str) -> ModelVersion | None:
    return model.versions.filter(stage=stage).first()


def _analyst_emails(exclude_ids) -> list[str]:
    User = get_user_model()
    users = (User.objects.filter(groups__name=roles.ANALYST, is_active=True).exclude(email="")
             .exclude(pk__in=[pk for pk in exclude_ids if pk is not None]))
    return sorted(set(users.values_list("email", flat=True)))


def _notify_analysts(promotion_id: int) -> None:
    request = PromotionRequest.objects.select_related("model_version__model", "requested_by", "on_behalf_of").get(
        pk=promotion_id)
    recipients = _analyst_emails(request.ownerships.values_list("user_id", flat=True))
    if not recipients:
        return
    who = request.requested_by.get_username() if request.requested_by else "the system"
    if request.on_behalf_of:
        who += f" (on behalf of {request.on_behalf_of.get_username()})"
    try:
        send_mail(
            subject=f"[MLOps] Approval requested: {request.model_version} → {request.target_stage}",
            message=(
                f"{who} asks to promote {request.model_version} to {request.target_stage}.\n\n"
                f"Reason: {request.reason}\n\nReview the evidence and decide: {request.get_absolute_url()}\n"
            ),
            from_email=None,
            recipient_list=recipients,
        )
    except Exception:  # mail trouble must not undo the request; it is logged and visible in the queue
        logger.exception("could not email analysts about a promotion request", extra={"promotion": promotion_id})


def promotion_request(*, user, version: ModelVersion, target_stage: str, reason: str, on_behalf_of=None,
                      owners: Iterable[tuple[int | None, str]] = (), evaluation_dataset_version=None,
                      evaluation_target: str = "") -> PromotionRequest:
    """Ask for ``version`` in ``target_stage``; the gates run as a job and analysts are emailed.

    ``on_behalf_of`` is the person whose action made the automation ask; ``owners`` names more
    people who shaped the request, as (user id, ``OwnerReason``). They, the requester and the
    author of the version's run are its owners: none of them may approve it. A version trained
    elsewhere needs evaluation data (``evaluation_dataset_version``, a dataset version id, and its
    ``evaluation_target`` column; both proposed or inferred when left out, see ``evaluation``).
    """
    roles.require(user, "request_promotion")
    if target_stage not in [s.value for s in PROMOTION_TARGETS]:
        raise ValidationError({"target_stage": f"Unknown target stage {target_stage!r}; use staging or production."})
    reason = (reason or "").strip()
    if len(reason) < 5:
        raise ValidationError({"reason": "Say why this version should be promoted (at least 5 characters)."})
    chosen = _evaluation_of_request(version, evaluation_dataset_version, evaluation_target,
                                    champion=current_in_stage(version.model, target_stage))
    with transaction.atomic():
        version = (ModelVersion.objects.select_for_update(of=("self", "model"))
                   .select_related("model", "run").get(pk=version.pk))
        if version.stage == Stage.ARCHIVED:
            raise ValidationError({"model_version": f"{version} is archived and cannot be promoted."})
        if version.stage == target_stage:
            raise ValidationError({"target_stage": f"{version} is already in {target_stage}."})
        if target_stage == Stage.STAGING and version.stage == Stage.PRODUCTION:
            raise ValidationError({"target_stage": f"{version} is in production; it cannot go back to staging."})
        _close_or_refuse_pending(user=user, version=version, target_stage=target_stage)
        # asking again for a version the automation put forward for someone keeps them out of deciding
        on_behalf_of_id = on_behalf_of.pk if on_behalf_of is not None else (
            PromotionRequest.objects.filter(model_version=version, on_behalf_of__isnull=False)
            .order_by("-created_at").values_list("on_behalf_of", flat=True).first())
        promotion = PromotionRequest.objects.create(
            model_version=version, target_stage=target_stage, reason=reason,
            requested_by=user if getattr(user, "is_authenticated", False) else None,
            on_behalf_of_id=on_behalf_of_id,
            champion=current_in_stage(version.model, target_stage),
            evaluation_dataset_version=chosen.dataset_version if chosen else None,
            evaluation_target=chosen.target if chosen else "", evaluation_target_how=chosen.target_how if chosen else "",
        )
        _owners_record(promotion, version=version, more=owners)
        promotion.job = job_create(kind=GATES_JOB, created_by=user, target=promotion, message="Waiting to run gates")
        promotion.save(update_fields=["job"])
        audit_record(actor=user, action="promotion.request", obj=promotion,
                     after={"target_stage": target_stage, "reason": reason,
                            "owners": sorted(set(promotion.ownerships.values_list("user_id", flat=True))),
                            **({"evaluation_dataset_version": chosen.dataset_version.pk, "evaluation_target": chosen.target,
                                "evaluation_target_how": chosen.target_how} if chosen else {})})
        transaction.on_commit(lambda: _notify_analysts(promotion.pk))
    return promotion


def _evaluation_of_request(version: ModelVersion, dataset_version, target: str,
                           champion: ModelVersion | None) -> Evaluation | None:
    """The evaluation data of a request for an external version (refused when it cannot be deployed)."""
    if not version.is_external:
        if dataset_version not in (None, "") or (target or "").strip():
            raise ValidationError({"evaluation_dataset_version": (
                f"{version} was trained here: its gates score it on its run's own holdout rows, so it takes no "
                "evaluation dataset version or target.")})
        return None
    reasons = deployability_now(version)
    if reasons:
        raise ValidationError({"model_version": refusal_text(version, reasons) + " It can never be promoted or "
                                                "deployed; log it again with skops."})
    return evaluation_resolve(version=version, dataset_version=dataset_version, target=target, champion=champion)


def _close_or_refuse_pending(*, user, version: ModelVersion, target_stage: str) -> None:
    pending = (PromotionRequest.objects.select_for_update(of=("self",)).select_related("job")
               .filter(model_version=version, target_stage=target_stage, status=PromotionStatus.PENDING).first())
    if pending is None:
        return
    if not _gates_job_failed(pending):
        raise Conflict(f"A request to promote {version} to {target_stage} is already pending.")
    # its gates never produced evidence: close it so the version can be requested again
    pending.status = PromotionStatus.REJECTED
    pending.decided_at = timezone.now()
    pending.decision_comment = f"Closed: its gates job failed ({pending.job.error if pending.job else 'lost'})."
    pending.save(update_fields=["status", "decided_at", "decision_comment"])
    audit_record(actor=user, action="promotion.superseded", obj=pending, note=pending.decision_comment)


def _owners_record(promotion: PromotionRequest, *, version: ModelVersion, more: Iterable[tuple[int | None, str]]):
    """Everyone who may not decide ``promotion``: its requester and the people behind it, including
    those behind the version that earlier requests named (so asking again changes nothing)."""
    run = version.run
    found = [(promotion.requested_by_id, OwnerReason.REQUESTED), (promotion.on_behalf_of_id, OwnerReason.ON_BEHALF_OF),
             (run.created_by_id, OwnerReason.CI_AUTHOR if run.source == RunSource.CI else OwnerReason.RUN_AUTHOR),
             (version.created_by_id if version.is_external else None, OwnerReason.REGISTRANT),
             # whoever chose the rows the gates score decides the evidence: they may not also decide the request
             (promotion.evaluation_dataset_version.created_by_id if promotion.evaluation_dataset_version_id else None,
              OwnerReason.EVALUATOR),
             *more,
             *PromotionOwner.objects.filter(promotion__model_version=version, reason__in=OWNERSHIP_OF_THE_VERSION)
             .exclude(promotion=promotion).values_list("user_id", "reason")]
    rows = {(user_id, reason): PromotionOwner(promotion=promotion, user_id=user_id, reason=reason)
            for user_id, reason in found if user_id is not None}
    PromotionOwner.objects.bulk_create(rows.values())


def promotion_evaluate_gates(*, promotion: PromotionRequest, ctx: JobContext | None = None) -> dict:
    """Run the gates and store them, with the champion-vs-challenger evidence."""
    def progress(p, m):
        if ctx:
            ctx.progress(p, m)

    version = promotion.model_version
    if version.is_external:
        gates, evidence = external_gates(promotion, progress)
    else:
        gates, evidence = _catalog_gates(promotion, progress)
    was_in_staging = version.transitions.filter(to_stage=Stage.STAGING).exists()
    gates.append(G.gate_staging_first(target_stage=promotion.target_stage, was_in_staging=was_in_staging,
                                      required=version.model.require_staging_first))
    rows = [g.to_dict() for g in gates]
    with transaction.atomic():
        PromotionRequest.objects.filter(pk=promotion.pk).update(gates=rows, evidence=evidence)
        audit_record(actor=None, action="promotion.gates", obj=promotion,
                     after={g["key"]: g["passed"] for g in rows})
        transaction.on_commit(lambda: gates_evaluated.send(
            sender=PromotionRequest, promotion=PromotionRequest.objects.get(pk=promotion.pk)))
    passed = sum(g["passed"] for g in rows)
    return {"message": f"{passed} of {len(rows)} gates passed", "gates": rows}


def _catalog_gates(promotion: PromotionRequest, progress) -> tuple[list[G.Gate], dict]:
    """The gates of a version trained here: its holdout metrics, the champion on the same holdout, its data."""
    version = promotion.model_version
    model, run, champion = version.model, version.run, promotion.champion
    progress(5, "Checking the threshold")
    gates = [G.gate_threshold(version.metrics, metric=model.threshold_metric, threshold=model.threshold_value)]
    evidence: dict = {"challenger": {"label": str(version), "metrics": version.metrics,
                                     "confusion_matrix": (run.charts or {}).get("confusion_matrix")}}
    progress(20, "Scoring challenger and champion on the same holdout")
    if champion is not None:
        try:
            frame = load_version_frame(run.dataset_version)
            spec = TrainingSpec.from_dict(run.spec)
            _, hold = holdout_split(frame, spec)
            rows, y = frame.iloc[hold], _target_array(frame, spec)[hold]
            ours = score_on(version, rows, y, spec.task_type)
            theirs = score_on(champion, rows, y, spec.task_type)
            evidence["same_holdout"] = {"dataset_version": run.dataset_version_id, "rows": ours["rows"],
                                        "challenger": ours, "champion": theirs}
            evidence["champion"] = {"label": str(champion), "metrics": champion.metrics,
                                    "confusion_matrix": theirs.get("confusion_matrix")}
            gates.append(G.gate_champion(
                metric=model.primary_metric, challenger=ours["metrics"].get(model.primary_metric),
                champion=theirs["metrics"].get(model.primary_metric), margin=model.max_regression,
                champion_label=str(champion), rows=ours["rows"],
            ))
        except (*SCORING_ERRORS, ArtifactError) as exc:
            gates.append(G.Gate("champion", "Not worse than the current champion on the same holdout", False,
                                f"Could not score {champion} on the challenger's holdout: {exc}"))
    else:
        gates.append(G.gate_champion(metric=model.primary_metric, challenger=None, champion=None,
                                     margin=model.max_regression, champion_label=None))
    progress(70, "Checking the signature and the data")
    gates.append(G.gate_signature(version.signature, champion.signature if champion else None,
                                  str(champion) if champion else None))
    data = run.dataset_version
    gates.append(G.gate_validation(status=data.validation_status, overridden=data.is_overridden,
                                   version_label=str(data), override_note=data.override_reason))
    evidence["validation"] = {"dataset_version": data.pk, "label": str(data), "status": data.validation_status,
                              "overridden": data.is_overridden, "results": (data.validation or {}).get("results", [])}
    return gates, evidence


def _gates_job_failed(promotion: PromotionRequest) -> bool:
    """No evidence will ever come: the gates job ended without storing gates, or was lost."""
    if promotion.gates:
        return False
    return promotion.job is None or promotion.job.status in ("failed", "cancelled")


def _set_stage(*, version: ModelVersion, stage: str, actor, reason: str, promotion=None) -> None:
    before = version.stage
    version.stage = stage
    version.stage_changed_at = timezone.now()
    version.save(update_fields=["stage", "stage_changed_at"])
    StageTransition.objects.create(model_version=version, from_stage=before, to_stage=stage, actor=actor,
                                   reason=reason, promotion=promotion)
    audit_record(actor=actor, action="model_version.stage", obj=version, before={"stage": before},
                 after={"stage": stage}, note=reason)


def _decidable(user, promotion_id: int) -> PromotionRequest:
    roles.require(user, "decide_promotion", message="Only analysts approve or reject promotion requests.")
    promotion = (PromotionRequest.objects.select_for_update(of=("self",))
                 .select_related("model_version__model", "job").get(pk=promotion_id))
    if promotion.status != PromotionStatus.PENDING:
        who = promotion.decided_by.get_username() if promotion.decided_by else "someone"
        raise Conflict(f"This request was already {promotion.status} by {who}.")
    return promotion


def _check_override(model: RegisteredModel, failed: list[dict], override_reason: str) -> None:
    if not failed:
        return
    names = ", ".join(g["name"] for g in failed)
    if not model.allow_override:
        raise Conflict(f"Gates failed ({names}) and {model.name}'s policy forbids overriding them.")
    if len(override_reason) < 10:
        raise ValidationError({"override_reason": f"Gates failed ({names}): approving needs an override "
                                                  "reason of at least 10 characters."})


def promotion_approve(*, user, promotion: PromotionRequest, comment: str, override_reason: str = "") -> PromotionRequest:
    comment, override_reason = (comment or "").strip(), (override_reason or "").strip()
    try:
        with transaction.atomic():
            promotion = _decidable(user, promotion.pk)
            if promotion.is_own(user):
                raise PermissionDenied(f"{promotion.own_because(user)}, so you cannot approve it: another analyst "
                                       "must (four-eyes rule).")
            if not comment:
                raise ValidationError({"comment": "Say why you approve (the comment is kept in the history)."})
            if _gates_job_failed(promotion):
                raise Conflict("The gates job failed, so there is no evidence to decide on; request the promotion again.")
            if not promotion.gates_done:
                raise Conflict("The gates are still running; wait for their results before deciding.")
            version = promotion.model_version
            model = RegisteredModel.objects.select_for_update().get(pk=version.model_id)
            failed = promotion.failed_gates
            _check_override(model, failed, override_reason)
            current = current_in_stage(model, promotion.target_stage)
            if (current.pk if current else None) != promotion.champion_id:
                raise Conflict(
                    f"{promotion.get_target_stage_display()} changed since this request's gates ran "
                    f"(now {current or 'empty'}, then {promotion.champion or 'empty'}); request again for fresh evidence."
                )
            version = ModelVersion.objects.select_for_update().get(pk=version.pk)
            if version.stage == Stage.ARCHIVED:
                raise Conflict(f"{version} was archived meanwhile.")
            refused = deployability_now(version)
            if refused:  # judged again now: the allow-list may have shrunk since the request
                raise ValidationError({"model_version": refusal_text(version, refused) + " It cannot be approved."})
            if current is not None:
                demoted = Stage.ARCHIVED if promotion.target_stage == Stage.PRODUCTION else Stage.NONE
                _set_stage(version=current, stage=demoted, actor=user, promotion=promotion,
                           reason=f"Replaced by {version} ({comment})")
            _set_stage(version=version, stage=promotion.target_stage, actor=user, promotion=promotion, reason=comment)
            promotion.status = PromotionStatus.APPROVED
            promotion.decided_by = user
            promotion.decided_at = timezone.now()
            promotion.decision_comment = comment
            promotion.override_reason = override_reason if failed else ""
            promotion.save(update_fields=["status", "decided_by", "decided_at", "decision_comment", "override_reason"])
            RegisteredModel.objects.filter(pk=model.pk).update(updated_at=timezone.now())
            audit_record(actor=user, action="promotion.approve", obj=promotion,
                         before={"status": "pending"}, after={"status": "approved"}, note=comment)
            decided = promotion
            transaction.on_commit(lambda: promotion_decided.send(
                sender=PromotionRequest, promotion=decided, approved=True, actor=user))
            if failed:
                audit_record(actor=user, action="promotion.override_gates", obj=promotion,
                             after={"failed_gates": [g["key"] for g in failed]}, note=override_reason)
    except IntegrityError:
        # the database's one-version-per-stage constraint caught a concurrent approval
        raise Conflict("Another version was promoted at the same moment; reload and request again.") from None
    return promotion


def promotion_reject(*, user, promotion: PromotionRequest, comment: str) -> PromotionRequest:
    comment = (comment or "").strip()
    with transaction.atomic():
        promotion = _decidable(user, promotion.pk)
        if not comment:
            raise ValidationError({"comment": "Say why you reject it, so the requester can act on it."})
        promotion.status = PromotionStatus.REJECTED
        promotion.decided_by = user
        promotion.decided_at = timezone.now()
        promotion.decision_comment = comment
        promotion.save(update_fields=["status", "decided_by", "decided_at", "decision_comment"])
        audit_record(actor=user, action="promotion.reject", obj=promotion,
                     before={"status": "pending"}, after={"status": "rejected"}, note=comment)
        transaction.on_commit(lambda: promotion_decided.send(
            sender=PromotionRequest, promotion=promotion, approved=False, actor=user))
    return promotion


def production_at(model: RegisteredModel, when: datetime) -> ModelVersion | None:
    """The version that was in production at ``when``, replayed from the stage history."""
    transitions = (StageTransition.objects.filter(model_version__model=model, created_at__lte=when)
                   .filter(models_q_production()).select_related("model_version").order_by("created_at", "id"))
    current = None
    for t in transitions:
        if t.to_stage == Stage.PRODUCTION:
            current = t.model_version
        elif t.from_stage == Stage.PRODUCTION and current is not None and t.model_version_id == current.pk:
            current = None
    return current


def models_q_production():
    from django.db.models import Q

    return Q(to_stage=Stage.PRODUCTION) | Q(from_stage=Stage.PRODUCTION)


def pending_count_for(user) -> int:
    if not roles.can(user, "decide_promotion"):
        return 0
    return PromotionRequest.objects.filter(status=PromotionStatus.PENDING).exclude(owners=user).count()
