"""The artifact proxy (``mlflow-artifacts:/`` URIs): streamed upload and download, listing, and our
catalog versions as virtual MLflow model directories under ``registry/<version>``."""

from __future__ import annotations

import re

from django.conf import settings
from django.http import StreamingHttpResponse

from apps.experiments import artifacts as store
from apps.experiments.models import ArtifactFile
from apps.registry import catalog_export
from apps.registry.external import trusted_type_names

from .errors import MlflowError
from .protocol import handler_for
from .views_runs import run_by_id

DRAIN_CHUNK = 1024 * 1024


def _clean(path: str, *, allow_empty: bool = False) -> str:
    return store.clean_artifact_path(path, allow_empty=allow_empty)


def _drain(request, length: int) -> None:
    """Read (and drop) an over-limit body, so the client reads our 413 instead of a reset connection."""
    left = min(length, settings.TRACKING_ARTIFACT_MAX_BYTES)
    while left > 0:
        chunk = request.read(min(DRAIN_CHUNK, left))
        if not chunk:
            break
        left -= len(chunk)


def _download(chunks, size: int, name: str) -> StreamingHttpResponse:
    # Never rendered by a browser: uploaded HTML served from our origin would run as us.
    response = StreamingHttpResponse(chunks, content_type="application/octet-stream")
    response["Content-Length"] = str(size)
    response["Content-Disposition"] = f'attachment; filename="{name.replace(chr(34), "")[:200]}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response


@handler_for({})
def upload(user, message, request, path: str, **_):
    path = _clean(path)
    raw_length = request.META.get("CONTENT_LENGTH") or ""
    if not re.fullmatch(r"[0-9]{1,19}", raw_length):
        raise MlflowError("INVALID_PARAMETER_VALUE", "An artifact upload needs a Content-Length header.", 411)
    length = int(raw_length)
    limit = settings.TRACKING_ARTIFACT_MAX_BYTES
    if length > limit:
        if length <= 2 * limit:
            _drain(request, length)
        raise MlflowError("INVALID_PARAMETER_VALUE", f"The file ({length:,} bytes) is larger than the artifact "
                                                     f"limit of {limit:,} bytes; nothing was stored.", 413)
    if path.split("/")[0] == catalog_export.ROOT:
        raise MlflowError("PERMISSION_DENIED", "Catalog model versions are read-only.")
    owner = store.owner_of(path)
    if owner is None:
        raise MlflowError("RESOURCE_DOES_NOT_EXIST", f"No run or logged model of ours holds {path!r}; upload under "
                                                     "the artifact_uri of a run or a logged model.")
    try:
        store.artifact_put(user=user, owner=owner, path=path, read=request.read, length=length,
                           content_type=request.META.get("CONTENT_TYPE", ""))
    except store.ArtifactTooLarge as exc:
        raise MlflowError("INVALID_PARAMETER_VALUE", " ".join(exc.messages), 413) from None
    return {}


def _catalog_download(path: str):
    version, name = catalog_export.catalog_version_for(path)
    if version is None or name not in ("MLmodel", catalog_export.MODEL_FILE):
        raise MlflowError("RESOURCE_DOES_NOT_EXIST", f"No artifact at {path!r}.")
    if name == "MLmodel":
        body = catalog_export.catalog_mlmodel(version, trusted_type_names())
        return _download(iter([body]), len(body), "MLmodel")
    size = catalog_export.artifact_size(version)
    if size is None:
        raise MlflowError("RESOURCE_DOES_NOT_EXIST", f"The artifact of {version} is missing from storage.")
    record = ArtifactFile(path=path, storage_name=version.artifact_name, sha256=version.artifact_sha256, size=size)
    return _download(store.artifact_chunks(record), record.size, catalog_export.MODEL_FILE)


@handler_for({})
def download(user, message, path: str, **_):
    path = _clean(path)
    if path.split("/")[0] == catalog_export.ROOT:
        return _catalog_download(path)
    record = store.artifact_lookup(path)
    if record is None:
        raise MlflowError("RESOURCE_DOES_NOT_EXIST", f"No artifact at {path!r}.")
    return _download(store.artifact_chunks(record), record.size, path.rsplit("/", 1)[-1])


@handler_for({"path": "string"})
def list_artifacts(user, message, **_):
    path = _clean(message.get("path", ""), allow_empty=True)
    if not path:
        return {}
    if path.split("/")[0] == catalog_export.ROOT:
        version, name = catalog_export.catalog_version_for(path)
        if version is None or name:
            return {}
        return {"files": catalog_export.catalog_files(version, trusted_type_names())}
    files = store.artifact_children(path)
    return {"files": files} if files else {}


@handler_for({})
def delete_artifact(user, message, path: str, **_):
    _clean(path)
    raise MlflowError("PERMISSION_DENIED", "Artifacts are kept: model versions were judged on their bytes.")


@handler_for({})
def not_implemented(user, message, path: str = "", **_):
    raise MlflowError("NOT_IMPLEMENTED", "Multipart upload is not supported; the client falls back to a single PUT.")


@handler_for({"run_id": "string", "run_uuid": "string", "path": "string", "page_token": "string"})
def list_run_artifacts(user, message, **_):
    run = run_by_id(message)
    relative = _clean(message.get("path", ""), allow_empty=True)
    directory = f"{run.artifact_root}/{relative}" if relative else run.artifact_root
    files = [{**f, "path": f"{relative}/{f['path']}" if relative else f["path"]}
             for f in store.artifact_children(directory)]
    return {"root_uri": run.artifact_uri, "files": files}


@handler_for({})
def server_info(user, message, **_):
    return {"store_type": "SqlStore", "multipart_uploads_enabled": False, "multipart_downloads_enabled": False,
            "artifacts_presigned_only": False}
