"""Reactions to earlier apps' events: continue CI pipeline changes step by step.

The registry sends no signal when gates finish or a request is approved; both write an
audit event in the same transaction, so its creation (post_save) is the hook, and the
next step is queued only after that transaction commits.
"""

import logging

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from apps.core.models import AuditEvent
from apps.experiments.models import Run
from apps.experiments.signals import run_trained

from .services import pipeline_after_gates, pipeline_after_human_approval, pipeline_after_train

logger = logging.getLogger(__name__)


@receiver(run_trained, sender=Run)
def continue_pipeline_change(sender, run: Run, **kwargs):
    if run.source != "ci":
        return
    try:
        pipeline_after_train(run=run)
    except Exception:  # the run stays trained; the change page shows what is missing
        logger.exception("pipeline change could not continue after training", extra={"run": run.pk})


def _safely(func, **kwargs):
    def call():
        try:
            func(**kwargs)
        except Exception:
            logger.exception("pipeline change could not continue", extra=kwargs)
    return call


@receiver(post_save, sender=AuditEvent)
def follow_promotions(sender, instance: AuditEvent, created: bool, **kwargs):
    if not created or instance.object_type != "registry.promotionrequest" or not instance.object_id:
        return
    if instance.action == "promotion.gates":
        transaction.on_commit(_safely(pipeline_after_gates, promotion_id=int(instance.object_id)))
    elif instance.action == "promotion.approve" and instance.actor_name != "mlops-policy":
        transaction.on_commit(_safely(pipeline_after_human_approval, promotion_id=int(instance.object_id)))
