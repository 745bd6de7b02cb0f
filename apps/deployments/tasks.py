from apps.core.jobs import JobContext, job_task

from .models import BatchScore
from .services import BATCH_JOB, batch_score


@job_task(BATCH_JOB)
def score_batch(ctx: JobContext) -> dict:
    batch = BatchScore.objects.get(pk=ctx.job.target_id)
    return batch_score(batch=batch, ctx=ctx)
