from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import User

from apps.core.admin import EvidenceAdmin
from apps.core.models import AuditEvent

from .models import ApiToken
from .services import user_deactivate


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "prefix", "created_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("name", "user__username", "prefix")
    readonly_fields = ("user", "prefix", "key_hash", "created_at", "last_used_at")


admin.site.unregister(User)


@admin.register(User)
class AccountAdmin(EvidenceAdmin, UserAdmin):
    """Deleting a user who acted would blank who requested, approved or deployed what."""

    actions = ["deactivate_users"]
    keep_instead = "Deactivate the account instead: it can no longer sign in or use its API tokens."

    def is_evidence(self, obj) -> bool:
        return AuditEvent.objects.filter(actor=obj).exists()

    @admin.action(description="Deactivate the selected users (they keep their history)")
    def deactivate_users(self, request, queryset):
        for user in queryset.filter(is_active=True):
            user_deactivate(actor=request.user, user=user)
        messages.success(request, "The selected users can no longer sign in or use their API tokens.")
