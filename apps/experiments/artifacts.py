"""The files MLflow clients upload for runs and logged models, through Django's storage API.

A path under the ``mlflow-artifacts:/`` root names its owner: ``<experiment>/<run id>/artifacts/...``
for a run, ``<experiment>/models/<model id>/artifacts/...`` for a logged model. An upload streams
to a temporary file while its sha256 is computed and its size checked, and only a complete,
in-limit file reaches storage and gets its row; anything else leaves nothing behind. Once a
model version is registered from an owner's files they are frozen: the recorded sha256 then
stays the truth about the bytes a version was judged on.
"""

from __future__ import annotations

import hashlib
import logging
import re
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction

from .models import ArtifactFile, Experiment, LoggedModel, Run

logger = logging.getLogger(__name__)

CHUNK = 1024 * 1024
MAX_PATH_LENGTH = 1000
MAX_LISTED = 10_000


class ArtifactTooLarge(ValidationError):
    pass


def clean_artifact_path(path: str, *, allow_empty: bool = False) -> str:
    """A relative POSIX path with no way out of its root; anything else is a ValidationError."""
    if not isinstance(path, str):
        raise ValidationError({"path": "The artifact path must be a string."})
    if path == "" and allow_empty:
        return ""
    problems = []
    if not path:
        problems.append("it is empty")
    if path.startswith("/") or path.startswith("~"):
        problems.append("it is absolute")
    if "\\" in path:
        problems.append("it contains a backslash")
    if any(ord(c) < 32 or ord(c) == 127 for c in path):
        problems.append("it contains control characters")
    parts = path.rstrip("/").split("/")
    if any(p in ("..", ".") for p in parts):
        problems.append("it contains '.' or '..' segments")
    if any(p == "" for p in parts):
        problems.append("it contains an empty segment")
    if len(path) > MAX_PATH_LENGTH:
        problems.append(f"it is longer than {MAX_PATH_LENGTH} characters")
    if problems:
        raise ValidationError({"path": f"Invalid artifact path {path[:100]!r}: " + "; ".join(problems) + "."})
    return path.rstrip("/")


@dataclass
class Owner:
    run: Run | None = None
    logged_model: LoggedModel | None = None

    @property
    def obj(self) -> Run | LoggedModel:
        return self.run or self.logged_model

    @property
    def root(self) -> str:
        return self.obj.artifact_root

    @property
    def experiment(self) -> Experiment:
        return self.obj.experiment

    @property
    def frozen(self) -> bool:
        return self.obj.artifacts_frozen


def owner_of(path: str) -> Owner | None:
    """The run or logged model whose artifact root ``path`` lies under, if any."""
    parts = path.split("/")
    if len(parts) < 3 or not re.fullmatch(r"[0-9]{1,18}", parts[0]):
        return None
    experiment_id = int(parts[0])
    if parts[1] == "models" and len(parts) >= 4 and parts[3] == "artifacts":
        model = LoggedModel.objects.select_related("experiment").filter(
            model_id=parts[2], experiment_id=experiment_id).first()
        return Owner(logged_model=model) if model else None
    if parts[2] == "artifacts":
        run = Run.objects.select_related("experiment").filter(uuid=parts[1], experiment_id=experiment_id).first()
        return Owner(run=run) if run else None
    return None


def _stream_to_temp(read: Callable[[int], bytes], length: int, limit: int):
    """Copy ``length`` bytes to a temporary file, hashing them; stop as soon as the limit is crossed."""
    digest = hashlib.sha256()
    received = 0
    temp = tempfile.NamedTemporaryFile(prefix="mlflow-upload-", dir=settings.FILE_UPLOAD_TEMP_DIR)
    try:
        while received < length:
            chunk = read(min(CHUNK, length - received))
            if not chunk:
                break
            received += len(chunk)
            if received > limit:
                raise ArtifactTooLarge({"path": f"The file is larger than the artifact limit of {limit:,} bytes."})
            digest.update(chunk)
            temp.write(chunk)
        if received != length:
            raise ValidationError({"path": f"The upload ended after {received:,} of {length:,} bytes."})
        temp.flush()
        temp.seek(0)
    except BaseException:
        temp.close()  # a NamedTemporaryFile deletes itself on close
        raise
    return temp, digest.hexdigest(), received


def artifact_put(*, user, owner: Owner, path: str, read: Callable[[int], bytes], length: int,
                 content_type: str = "") -> ArtifactFile:
    """Store one uploaded file at ``path`` (already cleaned, under ``owner``'s root)."""
    from .mlflow_runs import writable_experiment

    limit = settings.TRACKING_ARTIFACT_MAX_BYTES
    if length > limit:
        raise ArtifactTooLarge({"path": f"The file ({length:,} bytes) is larger than the artifact limit of "
                                        f"{limit:,} bytes; nothing was stored."})
    writable_experiment(owner.experiment)
    if owner.frozen:
        raise ValidationError({"path": f"{owner.obj} is registered as a model version; its files no longer change."})
    temp, sha256, size = _stream_to_temp(read, length, limit)
    stored = ""
    try:
        with temp:
            stored = default_storage.save(f"mlflow/{sha256[:2]}/{uuid.uuid4().hex}", File(temp))
        with transaction.atomic():
            locked = type(owner.obj).objects.select_for_update().get(pk=owner.obj.pk)
            if locked.artifacts_frozen:
                raise ValidationError({"path": f"{owner.obj} was registered meanwhile; its files no longer change."})
            existing = ArtifactFile.objects.select_for_update().filter(path=path).first()
            fields = {"storage_name": stored, "size": size, "sha256": sha256, "content_type": content_type[:100],
                      "created_by": user if getattr(user, "is_authenticated", False) else None}
            if existing is None:
                record = ArtifactFile.objects.create(path=path, run=owner.run, logged_model=owner.logged_model,
                                                     **fields)
            else:
                replaced = existing.storage_name
                for key, value in fields.items():
                    setattr(existing, key, value)
                existing.save(update_fields=list(fields))
                record = existing
                transaction.on_commit(lambda: default_storage.delete(replaced))
    except BaseException:
        if stored:
            default_storage.delete(stored)
        raise
    return record


def artifact_lookup(path: str) -> ArtifactFile | None:
    return ArtifactFile.objects.filter(path=path).first()


def artifact_chunks(record: ArtifactFile) -> Iterator[bytes]:
    """The file's bytes in chunks. The last chunk goes out only once the whole file matched its sha256,
    so a client never receives a complete file that was changed in storage."""
    digest = hashlib.sha256()
    sent = 0
    pending = b""
    with default_storage.open(record.storage_name, "rb") as handle:
        while True:
            chunk = handle.read(CHUNK)
            if pending and chunk:
                yield pending
            if not chunk:
                break
            digest.update(chunk)
            sent += len(chunk)
            pending = chunk
    if sent != record.size or digest.hexdigest() != record.sha256:
        logger.error("artifact failed its integrity check", extra={"path": record.path})
        raise OSError(f"artifact {record.path} does not match its recorded sha256")
    if pending:
        yield pending


def artifact_read(record: ArtifactFile) -> bytes:
    """The whole file, checked against its sha256 (for small files such as MLmodel)."""
    return b"".join(artifact_chunks(record))


def artifact_children(directory: str) -> list[dict]:
    """The files and folders directly inside ``directory``: ``{path, is_dir, file_size}``, names relative to it."""
    prefix = f"{directory}/" if directory else ""
    rows = ArtifactFile.objects.filter(path__startswith=prefix).values_list("path", "size")[:MAX_LISTED]
    files, folders = {}, set()
    for path, size in rows:
        rest = path[len(prefix):]
        head, _, tail = rest.partition("/")
        if tail:
            folders.add(head)
        else:
            files[head] = size
    listed = [{"path": name, "is_dir": True} for name in sorted(folders - set(files))]
    listed += [{"path": name, "is_dir": False, "file_size": size} for name, size in sorted(files.items())]
    return listed


def artifact_files_of(obj: Run | LoggedModel) -> list[ArtifactFile]:
    return list(obj.artifact_files.order_by("path")[:MAX_LISTED])


def artifacts_freeze(*, obj: Run | LoggedModel) -> None:
    """Called inside the registration's transaction: the files a version was judged on stay as they are."""
    type(obj).objects.filter(pk=obj.pk).update(artifacts_frozen=True)
