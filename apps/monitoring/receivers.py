"""Reactions to earlier apps' events (they cannot import monitoring)."""

import logging

from django.db.models.signals import post_save
from django.dispatch import receiver

from apps.deployments.models import Deployment
from apps.experiments.models import Run
from apps.experiments.signals import run_trained

from .models import Retraining
from .services import policy_ensure, retraining_finish

logger = logging.getLogger(__name__)


@receiver(post_save, sender=Deployment)
def watch_new_deployments(sender, instance: Deployment, created: bool, **kwargs):
    if created:
        policy_ensure(model=instance.model, environment=instance.environment)


@receiver(run_trained, sender=Run)
def continue_retraining(sender, run: Run, **kwargs):
    if run.source != "retraining":
        return
    try:
        retraining_finish(run=run)
    except Exception:  # the run stays; the retraining page shows it was not registered
        logger.exception("retraining could not register its run", extra={"run": run.pk})
        Retraining.objects.filter(run=run).update(status="failed", error="Registering the retrained run failed.")
