from django.contrib import admin

from .models import AuditEvent, Job


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ("id", "kind", "status", "progress", "attempt", "created_by", "created_at", "finished_at")
    list_filter = ("status", "kind")
    search_fields = ("kind", "message", "error")
    readonly_fields = [f.name for f in Job._meta.fields]
    date_hierarchy = "created_at"


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ("created_at", "actor_name", "action", "object_type", "object_repr")
    list_filter = ("action", "object_type")
    search_fields = ("action", "object_repr", "actor_name", "note")
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in AuditEvent._meta.fields]
