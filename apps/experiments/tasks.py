from apps.core.jobs import JobContext, job_task

from .models import Run
from .services import TRAIN_JOB, run_train


@job_task(TRAIN_JOB, cancel_capability="launch_training")  # any engineer may stop a run
def train_run(ctx: JobContext) -> dict:
    run = Run.objects.select_related("experiment", "dataset_version").get(pk=ctx.job.target_id)
    return run_train(run=run, ctx=ctx)
