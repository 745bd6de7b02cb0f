"""What reaches the disk from a request body, and how much of it is read at all.

``UploadGuardMiddleware`` decides before anything reads the body: a body larger than its
address allows (by ``Content-Length``) is refused unread, and a request may carry one
file only where one is expected (``UPLOAD_URL_NAMES``) and only from a signed-in user or
an API client (whose token DRF checks before it parses anything). It sits before
``CsrfViewMiddleware``, whose check reads ``request.POST`` and so parses a multipart
body, streaming its files to disk, for any caller.

``HashingSizeLimitedUploadHandler`` is the site's upload handler: every uploaded file
streams to a temporary file while its sha256 is computed, and an upload over the size
limit is stopped while it streams. Files never sit whole in memory, the hash costs no
second read, and an oversized upload leaves nothing behind: its temporary file is
deleted the moment the limit is crossed, and the view reads ``request.upload_error`` to
answer with a clear message.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.exceptions import TooManyFilesSent
from django.core.files.uploadhandler import StopUpload, TemporaryFileUploadHandler
from django.http import JsonResponse
from django.shortcuts import render

from .api_errors import error_body

# Multipart framing and the form's other fields (a note) on top of the file itself.
UPLOAD_FORM_ALLOWANCE = 1024 * 1024


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{int(size)} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} bytes"


def upload_body_limit() -> int:
    """The largest body an upload address reads: what the proxy in front should allow too."""
    return settings.DATASET_MAX_UPLOAD_BYTES + UPLOAD_FORM_ALLOWANCE


class FileRefused(TooManyFilesSent):
    """A file part where the address takes none (or none from this caller); a 400."""


def _content_length(request) -> int:
    try:
        return max(0, int(request.META.get("CONTENT_LENGTH") or 0))
    except ValueError:
        return 0  # Django reads no body without a valid length either


def _refuse(request, status: int, code: str, message: str):
    if request.path.startswith(settings.MLFLOW_PREFIX):  # the MLflow client reads only its own error shape
        return JsonResponse({"error_code": "INVALID_PARAMETER_VALUE", "message": message}, status=status)
    if request.path.startswith("/api/"):
        return JsonResponse(error_body(code, message), status=status)
    if request.headers.get("HX-Request"):
        return render(request, "errors/403_fragment.html", {"message": message}, status=status)
    return render(request, "errors/400.html", {"message": message}, status=status)


class UploadGuardMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        match = request.resolver_match
        view_name = match.view_name if match is not None else None
        takes_a_file = view_name in settings.UPLOAD_URL_NAMES
        # a view that streams its raw body itself (an MLflow artifact PUT) keeps its own, larger limit
        limit = settings.STREAMED_BODY_LIMITS.get(view_name) or (
            upload_body_limit() if takes_a_file else settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
        length = _content_length(request)
        if length > limit:
            return _refuse(
                request, 413, "too_large",
                f"The request ({human_size(length)}) is larger than the limit of {human_size(limit)} here; "
                "it was refused before anything was read.",
            )
        request.upload_files_allowed = 1 if takes_a_file and self._may_send_a_file(request) else 0
        return None

    @staticmethod
    def _may_send_a_file(request) -> bool:
        return request.user.is_authenticated or (
            request.path.startswith("/api/") and "Authorization" in request.headers
        )


class HashingSizeLimitedUploadHandler(TemporaryFileUploadHandler):
    def __init__(self, request=None):
        super().__init__(request)
        self.limit = settings.DATASET_MAX_UPLOAD_BYTES
        # without the guard (a request built in a test), one file, as Django's own limit says
        self.files_allowed = getattr(request, "upload_files_allowed", 1)
        self.files_seen = 0
        self.received = 0
        self.digest = None

    def new_file(self, *args, **kwargs):
        self.files_seen += 1
        if self.files_seen > self.files_allowed:
            raise FileRefused(
                "This address takes no file." if self.files_allowed == 0 else "Send one file per upload."
            )
        super().new_file(*args, **kwargs)
        self.received = 0
        self.digest = hashlib.sha256()

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > self.limit:
            if self.request is not None:
                self.request.upload_error = (
                    f"The file {self.file_name!r} is larger than the upload limit of {human_size(self.limit)}; "
                    "it was rejected while uploading and nothing was stored."
                )
            self.file.close()  # a TemporaryUploadedFile deletes itself on close
            raise StopUpload(connection_reset=False)
        self.digest.update(raw_data)
        return super().receive_data_chunk(raw_data, start)

    def file_complete(self, file_size):
        uploaded = super().file_complete(file_size)
        if uploaded is not None:
            uploaded.sha256 = self.digest.hexdigest()
        return uploaded
