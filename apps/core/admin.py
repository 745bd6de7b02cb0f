from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied

from .models import AuditEvent, Job


class EvidenceAdmin(admin.ModelAdmin):
    """Every row is evidence of what happened: no delete page and no delete action, for
    anyone (a superuser included).

    A parent whose deletion would cascade onto such a row is refused too: Django's delete
    confirmation asks each object it would take for its delete permission.
    """

    keep_instead = ""  # what to do instead of deleting, shown when someone tries

    def is_evidence(self, obj) -> bool:
        """Every row, unless a subclass says which rows became evidence (the others may go)."""
        return True

    def has_delete_permission(self, request, obj=None):
        if obj is None:  # the list's delete action: only where some rows may go
            every_row = type(self).is_evidence is EvidenceAdmin.is_evidence
            return not every_row and super().has_delete_permission(request)
        return not self.is_evidence(obj) and super().has_delete_permission(request, obj)

    def delete_view(self, request, object_id, extra_context=None):
        obj = self.get_object(request, unquote(object_id))
        if obj is not None and self.is_evidence(obj):
            raise PermissionDenied(
                f"{obj._meta.verbose_name.capitalize()} “{obj}” is evidence of what happened and is kept. "
                + self.keep_instead
            )
        return super().delete_view(request, object_id, extra_context)


@admin.register(Job)
class JobAdmin(EvidenceAdmin):
    list_display = ("id", "kind", "status", "progress", "attempt", "created_by", "created_at", "finished_at")
    list_filter = ("status", "kind")
    search_fields = ("kind", "message", "error")
    readonly_fields = [f.name for f in Job._meta.fields]
    date_hierarchy = "created_at"
    keep_instead = "Cancel it from its page while it runs."


@admin.register(AuditEvent)
class AuditEventAdmin(EvidenceAdmin):
    list_display = ("created_at", "actor_name", "action", "object_type", "object_repr")
    list_filter = ("action", "object_type")
    search_fields = ("action", "object_repr", "actor_name", "note")
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in AuditEvent._meta.fields]
