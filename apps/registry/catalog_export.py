"""Our catalog versions as MLflow model directories, so ``models:/<name>@production`` loads them.

The directory is virtual, under ``mlflow-artifacts:/registry/<version pk>``: an ``MLmodel`` written
from what we recorded (the mlflow.sklearn loader, skops, our signature as a colspec, the types the
artifact needs that are on our allow-list) and the version's own skops file.
"""

from __future__ import annotations

import json
import platform
import re
import tempfile

import sklearn
import yaml
from django.core.files.storage import default_storage

from apps.ml import mlflow_model as mm
from apps.ml.errors import ArtifactError

from .models import ModelVersion

ROOT = "registry"
MODEL_FILE = "model.skops"
# The dtype our signature recorded -> the colspec type the MLflow client enforces on input.
DTYPE_COLSPEC = {"int64": "long", "int32": "integer", "float64": "double", "float32": "float", "bool": "boolean"}
ROLE_COLSPEC = {"numeric": "double", "categorical": "string", "boolean": "boolean"}


def catalog_root(version: ModelVersion) -> str:
    return f"{ROOT}/{version.pk}"


def _colspec(signature: list[dict]) -> str:
    columns = []
    for feature in signature:
        kind = DTYPE_COLSPEC.get(str(feature.get("dtype")), ROLE_COLSPEC.get(feature.get("role"), "string"))
        if feature.get("role") == "categorical" and kind != "string":
            kind = "string"
        columns.append({"type": kind, "name": feature["name"], "required": True})
    return json.dumps(columns)


def _untrusted_types(version: ModelVersion) -> list[str]:
    if version.untrusted_types:
        return list(version.untrusted_types)
    with tempfile.NamedTemporaryFile(suffix=".skops") as temp, default_storage.open(version.artifact_name, "rb") as fh:
        while chunk := fh.read(1024 * 1024):
            temp.write(chunk)
        temp.flush()
        found = mm.skops_untrusted_types(temp.name)
    ModelVersion.objects.filter(pk=version.pk).update(untrusted_types=found)
    return found


def catalog_mlmodel(version: ModelVersion, allowed: set[str]) -> bytes:
    """The MLmodel file of a catalog version (raises ArtifactError when its artifact is unreadable)."""
    try:
        needed = [t for t in _untrusted_types(version) if t in allowed]
    except FileNotFoundError:
        raise ArtifactError(f"The artifact of {version} is missing from storage.") from None
    doc = {
        "artifact_path": "model",
        "flavors": {
            "python_function": {"loader_module": mm.SKOPS_LOADER, "model_path": MODEL_FILE, "predict_fn": "predict",
                                "python_version": platform.python_version()},
            "sklearn": {"pickled_model": MODEL_FILE, "serialization_format": "skops",
                        "sklearn_version": version.sklearn_version or sklearn.__version__,
                        "skops_trusted_types": needed, "code": None},
        },
        "model_uuid": f"{version.pk:032x}",
        "run_id": version.run.uuid,
        "utc_time_created": version.created_at.strftime("%Y-%m-%d %H:%M:%S.%f"),
        "signature": {"inputs": _colspec(version.signature), "outputs": None, "params": None},
    }
    return yaml.safe_dump(doc, sort_keys=False).encode()


def artifact_size(version: ModelVersion) -> int | None:
    try:
        return default_storage.size(version.artifact_name)
    except OSError:
        return None


def catalog_files(version: ModelVersion, allowed: set[str]) -> list[dict]:
    """The virtual directory's listing (empty when the artifact is gone)."""
    size = artifact_size(version)
    if size is None:
        return []
    mlmodel = catalog_mlmodel(version, allowed)
    return [{"path": "MLmodel", "is_dir": False, "file_size": len(mlmodel)},
            {"path": MODEL_FILE, "is_dir": False, "file_size": size}]


def catalog_version_for(path: str) -> tuple[ModelVersion | None, str]:
    """The catalog version a virtual path names, and the file inside ("" for the directory itself)."""
    parts = path.split("/")
    if len(parts) < 2 or parts[0] != ROOT or not re.fullmatch(r"[0-9]{1,18}", parts[1]) or len(parts) > 3:
        return None, ""
    version = ModelVersion.objects.select_related("model", "run").filter(
        pk=int(parts[1]), origin="catalog").first()
    return version, parts[2] if len(parts) == 3 else ""
