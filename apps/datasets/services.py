"""Writes and workflows for datasets: create, upload a version, profile, validate,
correct a column's role, override a failed validation."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.db.models.functions import Lower
from django.utils import timezone

from apps.core import roles
from apps.core.jobs import JobFailed
from apps.core.models import Job
from apps.core.services import audit_record, job_create
from apps.ml.errors import DataFileError
from apps.ml.io import file_sha256, inspect_table, read_table
from apps.ml.profile import ROLES, infer_schema, profile_table
from apps.ml.validate import validate_table

from .models import Dataset, DatasetVersion, ValidationStatus, VersionSource, VersionStatus

logger = logging.getLogger(__name__)

PROFILE_JOB = "datasets.profile"


def _clean_tags(tags) -> list[str]:
    if isinstance(tags, str):
        tags = tags.split(",")
    return sorted({str(t).strip().lower() for t in (tags or []) if str(t).strip()})[:20]


def dataset_create(*, user, name: str, description: str = "", tags=None, default_target: str = "") -> Dataset:
    roles.require(user, "upload_dataset")
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "A dataset needs a name."})
    if len(name) > 100:
        raise ValidationError({"name": "A dataset name has at most 100 characters."})
    if Dataset.objects.annotate(lname=Lower("name")).filter(lname=name.lower()).exists():
        raise ValidationError({"name": f"A dataset named {name!r} already exists; pick another name."})
    try:
        with transaction.atomic():
            dataset = Dataset.objects.create(
                name=name,
                description=(description or "").strip(),
                owner=user,
                tags=_clean_tags(tags),
                default_target=(default_target or "").strip(),
            )
            audit_record(actor=user, action="dataset.create", obj=dataset, after={"name": name})
    except IntegrityError:
        raise ValidationError({"name": f"A dataset named {name!r} already exists; pick another name."}) from None
    return dataset


def may_upload(user) -> bool:
    return roles.can(user, "upload_dataset")


class UploadTooLarge(Exception):
    """The upload handler stopped a file at the size limit; nothing was stored."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def table_limits() -> dict[str, int]:
    """The site's caps on a table's shape, as ``apps.ml.io`` takes them."""
    return {"max_columns": settings.DATASET_MAX_COLUMNS, "max_rows": settings.DATASET_MAX_ROWS,
            "max_cells": settings.DATASET_MAX_CELLS}


def dataset_version_create(
    *,
    user,
    dataset: Dataset,
    path: str,
    original_filename: str,
    sha256: str | None = None,
    note: str = "",
    source: str = VersionSource.UPLOAD,
) -> tuple[DatasetVersion, bool]:
    """Store a file as a new version of ``dataset`` and queue the job that reads and profiles it.

    Only the cheap checks run here (format, header or Parquet footer, the shape a footer
    declares), so a bad or oversized file leaves no row and no file and the caller learns
    at once; the full read runs in the worker (``dataset_version_profile``). The same bytes
    again return the existing version (``created`` False); if that one failed or was
    refused, it is read again.
    """
    roles.require(user, "upload_dataset")
    sha256 = sha256 or file_sha256(path)
    existing = DatasetVersion.objects.filter(dataset=dataset, sha256=sha256).first()
    if existing is not None and existing.status not in (VersionStatus.FAILED, VersionStatus.REJECTED):
        return existing, False
    facts = inspect_table(path, original_filename, **table_limits())
    if existing is not None:
        return _read_again(existing, user=user, path=path), False
    stored_name = None
    try:
        with transaction.atomic():
            Dataset.objects.select_for_update().filter(pk=dataset.pk).first()
            if (again := DatasetVersion.objects.filter(dataset=dataset, sha256=sha256).first()) is not None:
                return again, False
            number = (dataset.versions.aggregate(n=Max("number"))["n"] or 0) + 1
            stored_name = _store(path, f"datasets/{dataset.pk}/v{number}-{sha256[:16]}.{facts.format}")
            version = DatasetVersion.objects.create(
                dataset=dataset,
                number=number,
                file=stored_name,
                original_filename=os.path.basename(original_filename)[:255],
                sha256=sha256,
                size_bytes=os.path.getsize(path),
                format=facts.format,
                rows=facts.rows,
                column_count=len(facts.columns),
                note=(note or "").strip()[:500],
                source=source,
                created_by=user if getattr(user, "is_authenticated", False) else None,
            )
            Dataset.objects.filter(pk=dataset.pk).update(latest_version=version, updated_at=timezone.now())
            audit_record(
                actor=user,
                action="dataset_version.create",
                obj=version,
                after={"sha256": sha256, "rows": facts.rows, "columns": len(facts.columns), "source": source},
            )
            job_create(kind=PROFILE_JOB, created_by=user, target=version, message="Waiting to read and profile")
    except BaseException:
        if stored_name:
            default_storage.delete(stored_name)
        raise
    return version, True


def _store(path: str, name: str) -> str:
    with open(path, "rb") as fh:
        return default_storage.save(name, File(fh))


def _read_again(version: DatasetVersion, *, user, path: str) -> DatasetVersion:
    """The same bytes again after a failed profile or a refused file: read them again, not a dead end."""
    stored_name = None
    try:
        with transaction.atomic():
            version = DatasetVersion.objects.select_for_update().get(pk=version.pk)
            if not version.file:  # a refused file's bytes were not kept
                stored_name = _store(path, f"datasets/{version.dataset_id}/v{version.number}-{version.sha256[:16]}"
                                           f".{version.format}")
                version.file = stored_name
            version.status, version.error = VersionStatus.PROCESSING, ""
            version.save(update_fields=["file", "status", "error"])
            audit_record(actor=user, action="dataset_version.read_again", obj=version)
            job_create(kind=PROFILE_JOB, created_by=user, target=version, message="Waiting to read and profile again")
    except BaseException:
        if stored_name:
            default_storage.delete(stored_name)
        raise
    return version


def dataset_version_upload(*, user, dataset: Dataset, uploaded, note: str = "", source=VersionSource.UPLOAD,
                           upload_error: str | None = None) -> tuple[DatasetVersion, bool]:
    """Create a version from a Django UploadedFile (streamed to a temporary file by our handler).

    ``upload_error`` is what the upload handler said when it stopped the file at the size limit.
    """
    roles.require(user, "upload_dataset")
    if upload_error:
        raise UploadTooLarge(upload_error)
    if uploaded is None:
        raise ValidationError({"file": "Choose a CSV or Parquet file to upload."})
    if not hasattr(uploaded, "temporary_file_path"):  # another upload handler kept it in memory
        with tempfile.NamedTemporaryFile(suffix=".upload") as tmp:
            for chunk in uploaded.chunks():
                tmp.write(chunk)
            tmp.flush()
            return dataset_version_create(
                user=user, dataset=dataset, path=tmp.name, original_filename=uploaded.name, note=note, source=source
            )
    return dataset_version_create(
        user=user,
        dataset=dataset,
        path=uploaded.temporary_file_path(),
        original_filename=uploaded.name,
        sha256=getattr(uploaded, "sha256", None),
        note=note,
        source=source,
    )


@contextlib.contextmanager
def version_local_path(version: DatasetVersion) -> Iterator[str]:
    """A local path to the version's file, its sha256 checked against the recorded one."""
    if not version.file:
        raise JobFailed(f"{version} was refused and its file was not kept: {version.error}")
    try:
        local = default_storage.path(version.file.name)
        cleanup = None
    except NotImplementedError:  # a remote storage: copy to a temporary file first
        fd, local = tempfile.mkstemp(suffix=f".{version.format}")
        with os.fdopen(fd, "wb") as out, default_storage.open(version.file.name, "rb") as src:
            shutil.copyfileobj(src, out, 1024 * 1024)
        cleanup = local
    try:
        if not os.path.exists(local):
            raise JobFailed(f"The file of {version} is missing from storage ({version.file.name}).")
        digest = hashlib.sha256()
        with open(local, "rb") as fh:
            for chunk in iter(lambda: fh.read(1024 * 1024), b""):
                digest.update(chunk)
        if digest.hexdigest() != version.sha256:
            raise JobFailed(
                f"The stored file of {version} does not match its recorded sha256 "
                f"({version.sha256[:12]}…); it was changed or corrupted and will not be used."
            )
        yield local
    finally:
        if cleanup:
            os.unlink(cleanup)


def load_version_frame(version: DatasetVersion):
    with version_local_path(version) as path:
        return read_table(path, version.format, filename=version.original_filename, **table_limits())


def previous_ready_version(version: DatasetVersion) -> DatasetVersion | None:
    return (
        DatasetVersion.objects.filter(dataset_id=version.dataset_id, number__lt=version.number)
        .exclude(schema=[])
        .order_by("-number")
        .first()
    )


def dataset_version_profile(*, version: DatasetVersion, progress=None) -> dict:
    """Read, profile and validate a version (the body of the profiling job).

    The first read of an upload also infers its schema. A file that fails that read is
    refused (``dataset_version_reject``): the version keeps the reason, the bytes go.
    """
    def report(percent, message):
        if progress:
            progress(percent, message)

    report(2, "Reading the file")
    try:
        frame = load_version_frame(version)
    except DataFileError as exc:
        if not version.was_read:
            dataset_version_reject(version=version, reason=exc.message)
        raise JobFailed(exc.message) from None
    if not version.was_read:
        version.schema = infer_schema(frame)
        version.rows, version.column_count = len(frame), len(frame.columns)
        version.save(update_fields=["schema", "rows", "column_count"])
    report(10, "Profiling columns")
    profile = profile_table(frame, version.schema, progress=lambda p, m: report(10 + p * 0.75, m))
    reference = {
        name: column.pop("reference") for name, column in profile["columns"].items() if "reference" in column
    }
    report(88, "Validating")
    previous = previous_ready_version(version)
    validation = validate_table(
        frame,
        version.schema,
        previous_schema=previous.schema if previous else None,
        rules=version.dataset.validation_rules or None,
    )
    with transaction.atomic():
        DatasetVersion.objects.filter(pk=version.pk).update(
            profile=profile,
            reference=reference,
            validation=validation,
            validation_status=validation["status"],
            rows=profile.get("rows", len(frame)),
            column_count=len(frame.columns),
            status=VersionStatus.READY,
            error="",
        )
        audit_record(
            actor=None,
            action="dataset_version.profiled",
            obj=version,
            after={"validation": validation["status"], "rows": len(frame)},
        )
    return {"message": f"Profiled {len(frame):,} rows; validation {validation['status']}", "rows": len(frame)}


def dataset_version_mark_failed(*, version_id: int, error: str) -> None:
    """A profiling job that ended without success says so (a refused file stays refused)."""
    DatasetVersion.objects.filter(pk=version_id, status=VersionStatus.PROCESSING).update(
        status=VersionStatus.FAILED, error=error[:2000])


def dataset_version_reject(*, version: DatasetVersion, reason: str) -> None:
    """Refuse a version whose file cannot be read as a table: keep the row and the reason,
    delete the bytes (nothing can use them), and stop pointing the dataset at it."""
    with transaction.atomic():
        version = DatasetVersion.objects.select_for_update().get(pk=version.pk)
        stored_name = version.file.name
        version.status, version.error, version.file = VersionStatus.REJECTED, reason[:2000], ""
        version.save(update_fields=["status", "error", "file"])
        newest_other = (DatasetVersion.objects.filter(dataset_id=version.dataset_id)
                        .exclude(pk=version.pk).exclude(status=VersionStatus.REJECTED).order_by("-number").first())
        Dataset.objects.filter(pk=version.dataset_id, latest_version=version).update(latest_version=newest_other)
        audit_record(actor=None, action="dataset_version.rejected", obj=version, note=reason[:500])
        if stored_name:
            transaction.on_commit(lambda: default_storage.delete(stored_name))


def dataset_version_set_role(*, user, version: DatasetVersion, column: str, role: str) -> Job:
    """Correct a column's inferred role and profile the version again with it."""
    roles.require(user, "upload_dataset")
    if role not in ROLES:
        raise ValidationError({"role": f"Unknown role {role!r}; choose one of {', '.join(ROLES)}."})
    with transaction.atomic():
        version = DatasetVersion.objects.select_for_update().get(pk=version.pk)
        schema = [dict(c) for c in version.schema]
        entry = next((c for c in schema if c["name"] == column), None)
        if entry is None:
            raise ValidationError({"column": f"{version} has no column {column!r}."})
        before = entry.get("role")
        if before == role:
            raise ValidationError({"role": f"{column!r} already has the role {role}."})
        entry["role"] = role
        entry["role_corrected"] = True
        version.schema = schema
        version.status = VersionStatus.PROCESSING
        version.save(update_fields=["schema", "status"])
        audit_record(
            actor=user,
            action="dataset_version.set_role",
            obj=version,
            before={column: before},
            after={column: role},
        )
        return job_create(kind=PROFILE_JOB, created_by=user, target=version, message="Waiting to profile again")


def dataset_version_override(*, user, version: DatasetVersion, reason: str) -> DatasetVersion:
    """Allow a version that failed validation to be used for training, with a reason."""
    roles.require(user, "override_validation")
    reason = (reason or "").strip()
    if len(reason) < 10:
        raise ValidationError({"reason": "Explain the override in at least 10 characters; it is audited."})
    with transaction.atomic():
        version = DatasetVersion.objects.select_for_update().get(pk=version.pk)
        if version.validation_status != ValidationStatus.FAIL:
            raise ValidationError({"reason": "Only a version that failed validation needs an override."})
        if version.is_overridden:
            raise ValidationError({"reason": f"{version} was already overridden by {version.overridden_by}."})
        version.override_reason = reason
        version.overridden_by = user
        version.overridden_at = timezone.now()
        version.save(update_fields=["override_reason", "overridden_by", "overridden_at"])
        audit_record(
            actor=user,
            action="dataset_version.override_validation",
            obj=version,
            before={"usable": False},
            after={"usable": True},
            note=reason,
        )
    return version


def max_upload_bytes() -> int:
    return settings.DATASET_MAX_UPLOAD_BYTES
