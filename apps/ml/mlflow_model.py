"""Reading an MLflow model directory without running anything from it.

An ``MLmodel`` file is YAML read with ``yaml.safe_load`` (no Python tags). A skops file
is audited with ``skops.io.get_untrusted_types``, which builds skops' node tree from
``schema.json`` without importing or constructing anything; before that, the archive's
sizes are checked so a small crafted zip cannot expand into gigabytes in memory.
Whether a model is deployable is decided against an allow-list the caller passes in:
the list a model declares about itself (``skops_trusted_types``) is recorded, never used.
"""

from __future__ import annotations

import json
import re
import zipfile
from dataclasses import dataclass, field
from typing import Any

import skops.io as sio
import yaml

from apps.ml.errors import ArtifactError

MLMODEL_MAX_BYTES = 1024 * 1024
SKOPS_SCHEMA_MAX_BYTES = 64 * 1024 * 1024
SKOPS_MAX_MEMBERS = 100_000
SIGNATURE_MAX_COLUMNS = 2_000

# MLflow colspec types, and the feature role our predict path gives each.
COLSPEC_ROLES = {
    "double": "numeric",
    "float": "numeric",
    "long": "numeric",
    "integer": "numeric",
    "boolean": "boolean",
    "string": "categorical",
}
SKOPS_LOADER = "mlflow.sklearn"
PICKLE_FORMATS = ("pickle", "cloudpickle")
HOW_TO_LOG_WITH_SKOPS = (
    'log it with mlflow.sklearn.log_model(model, name="model", serialization_format="skops", '
    "skops_trusted_types=[...]) instead (mlflow.autolog() writes cloudpickle)"
)


@dataclass
class MLmodelInfo:
    """What an MLmodel file says about a model, in the fields the registry keeps."""

    flavors: list[str] = field(default_factory=list)
    loader_module: str = ""
    model_file: str = ""
    serialization_format: str = ""
    sklearn_version: str = ""
    mlflow_version: str = ""
    code_paths: list[str] = field(default_factory=list)
    has_pyfunc_artifacts: bool = False
    declared_trusted_types: list[str] = field(default_factory=list)
    signature: list[dict[str, Any]] = field(default_factory=list)
    signature_outputs: list[dict[str, Any]] = field(default_factory=list)
    signature_problem: str = ""
    model_id: str = ""
    run_id: str = ""


def parse_mlmodel(raw: bytes) -> MLmodelInfo:
    """Parse MLmodel bytes; an unreadable file is an ``ArtifactError``."""
    if len(raw) > MLMODEL_MAX_BYTES:
        raise ArtifactError(f"The MLmodel file is larger than {MLMODEL_MAX_BYTES:,} bytes.")
    try:
        doc = yaml.safe_load(raw.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ArtifactError(f"The MLmodel file is not readable YAML: {str(exc)[:200]}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("flavors"), dict):
        raise ArtifactError("The MLmodel file has no 'flavors' mapping.")
    flavors = doc["flavors"]
    pyfunc = flavors.get("python_function") if isinstance(flavors.get("python_function"), dict) else {}
    sklearn = flavors.get("sklearn") if isinstance(flavors.get("sklearn"), dict) else {}
    info = MLmodelInfo(
        flavors=sorted(str(k) for k in flavors),
        loader_module=_text(pyfunc.get("loader_module")),
        model_file=_text(sklearn.get("pickled_model") or pyfunc.get("model_path")),
        serialization_format=_text(sklearn.get("serialization_format")),
        sklearn_version=_text(sklearn.get("sklearn_version")),
        mlflow_version=_text(doc.get("mlflow_version")),
        has_pyfunc_artifacts=bool(pyfunc.get("artifacts")),
        model_id=_text(doc.get("model_id")),
        run_id=_text(doc.get("run_id")),
    )
    for holder in (pyfunc, sklearn):
        for key in ("code", "code_paths"):
            value = holder.get(key)
            if value:
                info.code_paths.extend(str(v) for v in (value if isinstance(value, list) else [value]))
    declared = sklearn.get("skops_trusted_types") or []
    info.declared_trusted_types = [str(t) for t in declared][:1000] if isinstance(declared, list) else []
    signature = doc.get("signature") if isinstance(doc.get("signature"), dict) else {}
    info.signature, info.signature_problem = signature_from_colspec(signature.get("inputs"))
    info.signature_outputs, _ = _colspec(signature.get("outputs"))
    return info


def _text(value: Any) -> str:
    return "" if value is None else str(value)[:300]


def _colspec(raw: Any) -> tuple[list[dict], str]:
    if raw in (None, ""):
        return [], "the model has no input signature"
    try:
        columns = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return [], "the signature is not valid JSON"
    if not isinstance(columns, list) or not all(isinstance(c, dict) for c in columns):
        return [], "the signature is not a list of columns"
    if len(columns) > SIGNATURE_MAX_COLUMNS:
        return [], f"the signature has more than {SIGNATURE_MAX_COLUMNS} columns"
    return columns, ""


def signature_from_colspec(raw: Any) -> tuple[list[dict[str, Any]], str]:
    """Our signature (name, role, dtype) from MLflow's ``signature.inputs``, and what stops it, if anything."""
    columns, problem = _colspec(raw)
    if problem:
        return [], problem
    out: list[dict[str, Any]] = []
    unusable = []
    for column in columns:
        name, kind = column.get("name"), column.get("type")
        role = COLSPEC_ROLES.get(kind) if isinstance(kind, str) else None
        if not isinstance(name, str) or not name:
            return [], "the signature has unnamed columns (a tensor signature): log a pandas input_example"
        if role is None:
            unusable.append(f"{name} ({kind})")
        out.append({"name": name, "role": role or "unsupported", "dtype": str(kind),
                    "required": bool(column.get("required", True))})
    if unusable:
        return out, "the signature has column types we cannot serve: " + ", ".join(unusable[:10])
    return out, ""


def _check_skops_archive(path: str) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            if len(members) > SKOPS_MAX_MEMBERS:
                raise ArtifactError(f"The skops archive holds more than {SKOPS_MAX_MEMBERS:,} files.")
            schema = next((m for m in members if m.filename == "schema.json"), None)
            if schema is None:
                raise ArtifactError("The file is not a skops archive (no schema.json).")
            if schema.file_size > SKOPS_SCHEMA_MAX_BYTES:
                raise ArtifactError(f"The skops schema expands to {schema.file_size:,} bytes, over the "
                                    f"{SKOPS_SCHEMA_MAX_BYTES:,} we read.")
    except zipfile.BadZipFile:
        raise ArtifactError("The model file is not a skops archive (not a zip file).") from None


def skops_untrusted_types(path: str) -> list[str]:
    """The types skops would not load by default, read from the file without constructing anything."""
    _check_skops_archive(path)
    try:
        return sorted(sio.get_untrusted_types(file=path))
    except ArtifactError:
        raise
    except Exception as exc:  # skops raises assorted errors on malformed archives
        raise ArtifactError(f"skops cannot read the model file: {str(exc)[:200]}") from None


def skops_estimator_class(path: str) -> str:
    """The class name of the final estimator (the last step of a Pipeline), read from schema.json."""
    _check_skops_archive(path)
    try:
        with zipfile.ZipFile(path) as archive:
            schema = json.loads(archive.read("schema.json"))
    except (ValueError, KeyError, zipfile.BadZipFile):
        return ""
    node = schema
    for _ in range(20):  # a pipeline inside a pipeline: follow its last step
        if not isinstance(node, dict):
            return ""
        name = f"{node.get('__module__', '')}.{node.get('__class__', '')}"
        last = _last_pipeline_step(node) if name == "sklearn.pipeline.Pipeline" else None
        if last is None:
            return name.strip(".")
        node = last
    return ""


def _last_pipeline_step(node: dict) -> dict | None:
    try:
        steps = node["content"]["content"]["steps"]["content"]
        return steps[-1]["content"][1]
    except (KeyError, IndexError, TypeError):
        return None


def deployability_reasons(info: MLmodelInfo, *, untrusted_types: list[str] | None, allowed: set[str],
                          files: set[str], audit_problem: str = "") -> list[str]:
    """Why the model cannot be served here; an empty list means it is deployable."""
    reasons = []
    if info.loader_module != SKOPS_LOADER:
        reasons.append(f"its python_function loader is {info.loader_module or 'missing'!r}, not {SKOPS_LOADER!r}")
    if info.serialization_format in PICKLE_FORMATS:
        reasons.append(f"it is serialized with {info.serialization_format}, which we never load: "
                       + HOW_TO_LOG_WITH_SKOPS)
    elif info.serialization_format != "skops":
        reasons.append(f"its sklearn flavor's serialization format is {info.serialization_format or 'missing'!r}, "
                       "not 'skops'")
    if info.code_paths:
        reasons.append("it ships code of its own (code_paths: " + ", ".join(info.code_paths[:5]) + ")")
    if info.has_pyfunc_artifacts:
        reasons.append("its python_function flavor carries artifacts of a custom model")
    if info.model_file and info.model_file not in files:
        reasons.append(f"its model file {info.model_file!r} was not uploaded")
    if audit_problem:
        reasons.append(audit_problem)
    elif untrusted_types is not None:
        outside = [t for t in untrusted_types if t not in allowed]
        if outside:
            reasons.append("the artifact needs types outside our allow-list: " + ", ".join(outside[:20])
                           + (" …" if len(outside) > 20 else ""))
    if info.signature_problem:
        reasons.append(info.signature_problem)
    return reasons


TRUSTED_TYPE_PATTERN = re.compile(r"(sklearn|numpy|scipy)(\.[A-Za-z_][A-Za-z0-9_]*)+")


def is_allowable_type_name(name: str) -> bool:
    """Only scikit-learn, numpy and scipy names may be added to the allow-list."""
    return bool(TRUSTED_TYPE_PATTERN.fullmatch(name or ""))
