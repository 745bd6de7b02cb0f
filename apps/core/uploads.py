"""The site's upload handler: every uploaded file streams to a temporary file while its
sha256 is computed, and an upload over the size limit is stopped while it streams.

Files never sit whole in memory, the hash costs no second read, and an oversized upload
leaves nothing behind: its temporary file is deleted the moment the limit is crossed,
and the view reads ``request.upload_error`` to answer with a clear message.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.files.uploadhandler import StopUpload, TemporaryFileUploadHandler


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{int(size)} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} bytes"


class HashingSizeLimitedUploadHandler(TemporaryFileUploadHandler):
    def __init__(self, request=None):
        super().__init__(request)
        self.limit = settings.DATASET_MAX_UPLOAD_BYTES
        self.received = 0
        self.digest = None

    def new_file(self, *args, **kwargs):
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
