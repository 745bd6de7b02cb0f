from apps.core.jobs import JobContext, job_task

from .models import DatasetVersion
from .services import PROFILE_JOB, dataset_version_mark_failed, dataset_version_profile


@job_task(PROFILE_JOB)
def profile_dataset_version(ctx: JobContext) -> dict:
    version = DatasetVersion.objects.select_related("dataset").get(pk=ctx.job.target_id)
    try:
        return dataset_version_profile(version=version, progress=ctx.progress)
    except Exception as exc:
        dataset_version_mark_failed(version_id=version.pk, error=str(exc))
        raise
