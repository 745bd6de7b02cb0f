from apps.core.jobs import JobContext, job_task

from .models import PromotionRequest
from .services import GATES_JOB, promotion_evaluate_gates


@job_task(GATES_JOB)
def evaluate_gates(ctx: JobContext) -> dict:
    promotion = PromotionRequest.objects.select_related(
        "model_version__model", "model_version__run__dataset_version", "champion__model", "champion__run__experiment",
        "evaluation_dataset_version__dataset"
    ).get(pk=ctx.job.target_id)
    return promotion_evaluate_gates(promotion=promotion, ctx=ctx)
