"""Reactions to earlier apps' events: continue CI pipeline changes step by step.

The registry sends its signals after the change commits, so each next step is queued
on committed data.
"""

import logging

from django.dispatch import receiver

from apps.experiments.models import Run
from apps.experiments.signals import run_trained
from apps.registry.models import PromotionRequest
from apps.registry.signals import gates_evaluated, promotion_decided

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


@receiver(gates_evaluated, sender=PromotionRequest)
def follow_gates(sender, promotion: PromotionRequest, **kwargs):
    _safely(pipeline_after_gates, promotion_id=promotion.pk)()


@receiver(promotion_decided, sender=PromotionRequest)
def follow_decisions(sender, promotion: PromotionRequest, approved: bool, actor, **kwargs):
    if approved and getattr(actor, "username", "") != "mlops-policy":
        _safely(pipeline_after_human_approval, promotion_id=promotion.pk)()
