from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.templatetags.static import static
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST
from kombu import Connection

from . import roles
from .models import AuditEvent, Job
from .pagination import page_from_request
from .services import job_cancel, job_create
from .tasks import SELFCHECK

# htmx stops polling when a fragment answers with this status
HTMX_STOP_POLLING = 286
JOBS_PER_PAGE = 50
AUDIT_EVENTS_PER_PAGE = 100


def require_viewer(request) -> None:
    if not roles.can(request.user, "view_dashboard"):
        raise PermissionDenied("Your account has no role on this site; ask an admin to add you to a group.")


def job_list(request):
    require_viewer(request)
    jobs = Job.objects.select_related("created_by", "target_type").defer("params", "result", "error")
    status = request.GET.get("status")
    if status:
        jobs = jobs.filter(status=status)
    return render(request, "core/job_list.html", {"page": page_from_request(request, jobs, size=JOBS_PER_PAGE),
                                                  "status": status})


def job_detail(request, pk: int):
    require_viewer(request)
    job = get_object_or_404(Job.objects.select_related("created_by"), pk=pk)
    template = "core/job_detail.html#progress" if request.htmx else "core/job_detail.html"
    response = render(request, template, {"job": job, "can_cancel": job.can_cancel(request.user)})
    if request.htmx and job.is_finished:
        response.status_code = HTMX_STOP_POLLING
    return response


@require_POST
def job_cancel_view(request, pk: int):
    job = job_cancel(job=get_object_or_404(Job, pk=pk), user=request.user)
    if request.htmx:
        return render(request, "core/job_detail.html#progress", {"job": job, "can_cancel": True})
    return redirect(job)


@require_POST
def selfcheck_start(request):
    if not request.user.is_staff:
        raise PermissionDenied("Only admins can start a worker self-check.")
    job = job_create(kind=SELFCHECK, created_by=request.user, params={"steps": 5, "step_seconds": 0.5})
    return redirect(job)


def audit_list(request):
    if not (request.user.is_staff or roles.can(request.user, "view_audit")):
        raise PermissionDenied("The audit log is for admins.")
    events = AuditEvent.objects.select_related("actor")
    action = request.GET.get("action", "").strip()
    if action:
        events = events.filter(action__startswith=action)
    page = page_from_request(request, events, size=AUDIT_EVENTS_PER_PAGE)
    return render(request, "core/audit_list.html", {"page": page, "action": action})


@never_cache
@require_GET
def healthz(request):
    return JsonResponse({"status": "ok"})


def _database_ready() -> tuple[bool, str]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True, connection.vendor
    except Exception as exc:
        return False, f"{type(exc).__name__}: {exc}"


def _broker_ready() -> tuple[bool, str]:
    try:
        with Connection(
            settings.CELERY_BROKER_URL,
            transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS,
            connect_timeout=2,
        ) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            _ = conn.default_channel  # opening a channel proves the transport answers
            return True, conn.transport.driver_type
    except Exception as exc:
        return False, f"{type(exc).__name__}: {exc}"


@never_cache
@require_GET
def readyz(request):
    db_ok, db_detail = _database_ready()
    broker_ok, broker_detail = _broker_ready()
    ready = db_ok and broker_ok
    body = {"status": "ok" if ready else "unavailable"}
    # The details are exception texts that name hosts, ports and database users.
    if request.user.is_staff:
        body |= {
            "database": {"ok": db_ok, "detail": db_detail},
            "broker": {"ok": broker_ok, "detail": broker_detail},
            "version": settings.APP_VERSION,
        }
    return JsonResponse(body, status=200 if ready else 503)


def csrf_failure(request, reason=""):
    return HttpResponse(f"CSRF check failed: {reason}", status=403)


@login_not_required
@require_GET
def favicon(request):
    """Browsers ask for /favicon.ico on every page (the admin's and the API docs' too)."""
    return redirect(static("img/favicon.ico"), permanent=True)
