"""Response bodies every app's API shares, as OpenAPI components: the error body and the job.

These serializers only describe what the views send (the views build their JSON by hand);
nothing serializes through them.
"""

from rest_framework import serializers

from .models import JobStatus


class ApiErrorDetail(serializers.Serializer):
    code = serializers.CharField(help_text="Machine-readable reason, such as `invalid`, `not_found`, `conflict`.")
    message = serializers.CharField(help_text="What went wrong, for a person.")
    fields = serializers.DictField(
        child=serializers.CharField(),
        help_text="Per input field (`name`, `items[0].label`, `instances[2].x1`), what is wrong with it.",
    )


class ApiError(serializers.Serializer):
    """Every 4xx and 5xx answer under /api/v1/."""

    error = ApiErrorDetail()


class JobBody(serializers.Serializer):
    """A background job (`GET /api/v1/jobs/{id}/`); any answer that starts work carries one as `job`."""

    id = serializers.IntegerField()
    kind = serializers.CharField()
    status = serializers.ChoiceField(choices=JobStatus.choices)
    progress = serializers.IntegerField(min_value=0, max_value=100)
    message = serializers.CharField(allow_blank=True)
    error = serializers.CharField(allow_blank=True)
    attempt = serializers.IntegerField(min_value=0)
    created_at = serializers.DateTimeField(allow_null=True)
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    url = serializers.CharField()

    class Meta:
        ref_name = "Job"

