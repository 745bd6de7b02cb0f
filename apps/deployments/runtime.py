"""The prediction hot path: an in-process cache of verified, compiled predictors.

A predictor is loaded once per process for each (model version, artifact sha256): the
artifact's bytes are read from storage, checked against the recorded sha256, loaded
with skops' trusted types and compiled (``apps.ml.serving``). Requests then never touch
the disk. Which version answers is read from the database on every request (one indexed
query), so a deploy or rollback anywhere takes effect at once in every process; a
process meeting a version it has not loaded yet loads it then.

A warmer thread keeps every active deployment loaded ahead of traffic. Web processes
start it once, when they load the WSGI application (``mlops_web/wsgi.py``): that file is
what every web server imports in each serving process (gunicorn's workers, runserver),
while ``AppConfig.ready`` also runs in migrations, shells and Celery workers, which
serve nothing, and a gunicorn hook would need every launcher to pass a config file. A
process forked from one that runs the warmer (gunicorn ``--preload``) starts its own.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass

from django.core.files.storage import default_storage
from django.db import connection

from apps.ml.errors import ArtifactError
from apps.ml.persist import load_pipeline
from apps.ml.serving import CompiledPredictor
from apps.ml.serving.external import ExternalPredictor

logger = logging.getLogger(__name__)

FAILURE_RETRY_SECONDS = 5.0
WARM_INTERVAL_SECONDS = 2.0


@dataclass(frozen=True)
class LoadedModel:
    version_id: int
    sha256: str
    model_name: str
    version_number: int
    predictor: CompiledPredictor | ExternalPredictor
    signature: list
    classes: list
    loaded_at: float


class ArtifactRefused(Exception):
    """The artifact failed verification: never serve it."""

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.message = message
        self.code = code


_lock = threading.Lock()
_loaded: dict[tuple[int, str], LoadedModel] = {}
_failures: dict[tuple[int, str], tuple[float, ArtifactRefused]] = {}
_warmer: threading.Thread | None = None
_warmer_stop = threading.Event()
_warmer_on_refused = None


NUMERIC_COLSPECS = frozenset({"long", "integer", "double", "float"})


def serving_signature(version) -> list[dict]:
    """The run's signature plus, per feature, whether training data had nulls (then nulls are accepted).

    A version logged with the MLflow client has no dataset version of ours behind its run: its MLmodel
    signature says the type (numeric or not) and whether a feature may be missing.
    """
    if version.is_external or version.run.dataset_version_id is None:
        return [dict(f, role="numeric" if str(f.get("dtype")) in NUMERIC_COLSPECS else "categorical",
                     nullable=f.get("required") is False) for f in version.signature]
    schema = {c["name"]: c for c in version.run.dataset_version.schema}
    return [dict(f, nullable=bool(schema.get(f["name"], {}).get("nullable"))) for f in version.signature]


def _load(version) -> LoadedModel:
    if version.is_external:
        return _load_external(version)
    try:
        with default_storage.open(version.artifact_name, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise ArtifactRefused(f"The artifact of {version} is missing from storage.", "artifact_missing") from None
    try:
        pipeline = load_pipeline(data, expected_sha256=version.artifact_sha256)
    except ArtifactError as exc:
        raise ArtifactRefused(f"{version} refused: {exc.message}", exc.code) from None
    signature = serving_signature(version)
    predictor = CompiledPredictor.from_pipeline(pipeline, signature)
    logger.info("model loaded", extra={"version": version.pk, "path": predictor.path, "fast": predictor.fast})
    return LoadedModel(version.pk, version.artifact_sha256, version.model.name, version.version, predictor,
                       signature, list(version.classes), time.time())


def _load_external(version) -> LoadedModel:
    """A model trained elsewhere: loaded only while deployable (sha256, today's allow-list), served by its own
    predict on the frame its signature types (never our catalog's preparation)."""
    from apps.registry.loading import load_external_model

    try:
        model = load_external_model(version)
    except ArtifactError as exc:
        raise ArtifactRefused(f"{version} refused: {exc.message}", exc.code) from None
    predictor = ExternalPredictor(model, version.signature)
    logger.info("model loaded", extra={"version": version.pk, "path": predictor.path, "fast": False})
    return LoadedModel(version.pk, version.artifact_sha256, version.model.name, version.version, predictor,
                       list(version.signature), list(predictor.classes or ()), time.time())


def _version(version_id: int):
    from apps.registry.models import ModelVersion

    return ModelVersion.objects.select_related("model", "run__dataset_version").get(pk=version_id)


def get_loaded(version=None, *, version_id: int | None = None, sha256: str | None = None,
               on_refused=None) -> LoadedModel:
    """The verified predictor of a version, loading it on first use in this process.

    Pass the version, or just its id and artifact sha256 (the hot path): the version row
    and its large JSON columns are read only when the model is not loaded yet.
    """
    if version is not None:
        version_id, sha256 = version.pk, version.artifact_sha256
    key = (version_id, sha256)
    model = _loaded.get(key)
    if model is not None:
        return model
    failed = _failures.get(key)
    if failed and time.monotonic() - failed[0] < FAILURE_RETRY_SECONDS:
        raise failed[1]
    with _lock:
        model = _loaded.get(key)
        if model is not None:
            return model
        try:
            model = _load(version if version is not None else _version(version_id))
        except ArtifactRefused as exc:
            _failures[key] = (time.monotonic(), exc)
            if on_refused is not None:
                on_refused(exc)
            raise
        _failures.pop(key, None)
        _loaded[key] = model
        return model


def forget(version_id: int | None = None) -> None:
    """Drop cached predictors (all, or one version's): the next request reloads and re-verifies."""
    with _lock:
        for key in [k for k in _loaded if version_id is None or k[0] == version_id]:
            del _loaded[key]
        for key in [k for k in _failures if version_id is None or k[0] == version_id]:
            del _failures[key]


def peek(version) -> LoadedModel | ArtifactRefused | None:
    """What this process holds for a version, without loading it: the predictor, the refusal, or None.

    Pages call this: loading a model (seconds to tens of seconds for a large one) belongs to the
    warmer and to the first prediction, never to rendering a page.
    """
    key = (version.pk, version.artifact_sha256)
    model = _loaded.get(key)
    if model is not None:
        return model
    failed = _failures.get(key)
    return failed[1] if failed else None


def loaded_versions() -> list[int]:
    return sorted(k[0] for k in _loaded)


def warm_active(*, on_refused=None) -> int:
    """Load every actively deployed version not yet in memory; drop versions no longer deployed."""
    from .models import Deployment

    active = list(Deployment.objects.filter(status="active").select_related(
        "model_version__run__dataset_version", "model_version__model"))
    count = 0
    for deployment in active:
        try:
            get_loaded(deployment.model_version, on_refused=on_refused)
            count += 1
        except ArtifactRefused:
            pass
    keep = {(d.model_version_id, d.model_version.artifact_sha256) for d in active}
    with _lock:
        for key in [k for k in _loaded if k not in keep and time.time() - _loaded[k].loaded_at > 60]:
            del _loaded[key]  # retired long enough ago: free the memory
    return count


def start_warmer(on_refused=None) -> None:
    """Start (once per process) the thread that keeps active deployments loaded."""
    global _warmer, _warmer_on_refused
    if _warmer is not None:
        return
    with _lock:
        if _warmer is not None:
            return
        _warmer_stop.clear()
        _warmer_on_refused = on_refused
        _warmer = threading.Thread(target=_warm_loop, args=(on_refused,), name="model-warmer", daemon=True)
        _warmer.start()


def _warm_loop(on_refused) -> None:
    while not _warmer_stop.wait(WARM_INTERVAL_SECONDS):
        try:
            warm_active(on_refused=on_refused)
        except Exception as exc:  # the warmer is an optimisation; requests load on demand anyway
            logger.warning("model warmer failed", extra={"error": f"{type(exc).__name__}: {exc}"[:300]})
        finally:
            connection.close()


def warmer_running() -> bool:
    return _warmer is not None and _warmer.is_alive()


def stop_warmer(timeout: float = 10.0) -> None:
    """Stop the warmer thread (tests, and a process shutting serving down)."""
    global _warmer
    thread = _warmer
    if thread is None:
        return
    _warmer_stop.set()
    thread.join(timeout)
    _warmer = None


def _after_fork_in_child() -> None:
    """A forked child has none of its parent's threads: it gets a fresh lock and its own warmer."""
    global _lock, _warmer
    _lock = threading.Lock()
    had_warmer, _warmer = _warmer is not None, None
    if had_warmer:
        start_warmer(_warmer_on_refused)


os.register_at_fork(after_in_child=_after_fork_in_child)
