"""The compiled predictor: a fitted catalog pipeline's answers, bit for bit, without pandas.

``CompiledPredictor`` reproduces ``pipeline.predict(prepare_for(pipeline,
pd.DataFrame(instances)))`` and ``predict_proba``: it reads the fitted pieces of the
preprocessing (``layout``), builds the model's float matrix directly (``encode``) and
hands it to the final estimator through a kernel (``kernels``).

Construction checks the compiled path against the pipeline itself on probe rows
(every category, nulls, an unseen category, extreme numbers) and demands exact
equality; a pipeline of another structure, or any disagreement, selects the generic
path (prepared DataFrame + ``pipeline.predict``): still correct, just slower.
``predictor.fast`` and ``predictor.path`` say which one is used, and
``fallback_reason`` why. A request the compiled path cannot reproduce exactly is
answered by the generic path (see ``encode``).

A predictor is immutable after construction and allocates per call, so one
instance may be shared by any number of threads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from apps.ml.prepare import prepare_for

from . import encode
from .contract import Signature, validate
from .kernels import EstimatorKernel, Kernel, kernel_for
from .layout import Layout, Unsupported, read_layout

_NOT_REPRODUCIBLE = (encode.NeedsPipeline, KeyError, TypeError, ValueError, OverflowError)


def _same(a: Any, b: Any) -> bool:
    """Exact equality of two prediction results (labels, floats, probability arrays)."""
    if a is None or b is None:
        return a is None and b is None
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype.kind != b.dtype.kind:
        return False
    if a.dtype.kind == "f":
        return bool(np.array_equal(a, b, equal_nan=True))
    return bool(np.array_equal(a, b))


class CompiledPredictor:
    """Fast, thread-safe predictions for a fitted ``build_pipeline`` pipeline (see the module docstring).

    Attributes: ``fast`` (compiled numpy path in use), ``path`` ("compiled" or
    "pipeline"), ``kernel`` (the name of how the final estimator is called: "forest",
    "hist_gradient_boosting", "logistic", "knn", "estimator" or "pipeline"),
    ``fallback_reason``, ``feature_names``, ``task_type`` ("classification"/"regression"),
    ``classes`` (class labels as strings, or None) and ``n_columns`` (width of
    the model's input matrix; None on the pipeline path).
    """

    fast: bool
    path: str
    kernel: str
    fallback_reason: str | None

    def __init__(self, pipeline: Pipeline, signature: Sequence[Mapping[str, Any]]):
        """Generic (pipeline) predictor; use ``from_pipeline`` to get the compiled one when possible."""
        self.pipeline = pipeline
        self._sig = Signature(signature)
        self.feature_names = self._sig.names
        estimator = pipeline.steps[-1][1] if isinstance(pipeline, Pipeline) else pipeline
        self.estimator = estimator
        classes = getattr(estimator, "classes_", None)
        self.task_type = "classification" if classes is not None else "regression"
        self.classes: tuple[str, ...] | None = (
            tuple(str(c) for c in np.asarray(classes).tolist()) if classes is not None else None
        )
        self._has_proba = classes is not None and hasattr(estimator, "predict_proba")
        self._layout: Layout | None = None
        self._kernel: Kernel | None = None
        self._use_pipeline("not compiled")

    # construction -----------------------------------------------------------------------------------------

    @classmethod
    def from_pipeline(
        cls, pipeline: Pipeline, signature: Sequence[Mapping[str, Any]], *, verify: bool = True
    ) -> CompiledPredictor:
        """Compile ``pipeline`` (fitted by ``run_training``); fall back to the generic path if unsure.

        With ``verify`` (default) the compiled path must reproduce the pipeline
        exactly on probe rows, or the generic path is used. Costs a few
        milliseconds once (plus one pipeline prediction of ~10 rows).
        """
        self = cls(pipeline, signature)
        try:
            layout = read_layout(pipeline, self._sig.name_set)
        except Unsupported as exc:
            self.fallback_reason = str(exc)
            return self
        self._use_compiled(layout, kernel_for(self.estimator, self.classes is not None))
        if verify:
            self._verify()
        return self

    def _use_compiled(self, layout: Layout, kernel: Kernel) -> None:
        self._layout, self._kernel, self.kernel = layout, kernel, kernel.name
        self.fast, self.path, self.fallback_reason, self.n_columns = True, "compiled", None, layout.n_columns

    def _use_pipeline(self, reason: str) -> None:
        self.fast, self.path, self.kernel, self.fallback_reason = False, "pipeline", "pipeline", reason
        self.n_columns: int | None = None

    def _verify(self) -> None:
        """Keep the compiled path only if it reproduces the pipeline exactly on probe rows."""
        probe = encode.probe_instances(self._layout, self.feature_names)
        try:
            expected = self._predict_pipeline(probe) + self._predict_pipeline(probe[:1])
        except Exception as exc:  # the pipeline itself cannot score probes: nothing to compare with
            self._use_pipeline(f"verification could not run the pipeline: {exc!r}")
            return
        try:
            X, X_one = self._transform_fast(probe), self._transform_fast(probe[:1])
            reference = self.pipeline[:-1].transform(self._frame(probe))
            same_matrix = _same(X, reference) and _same(self._transform_fast(probe, by_column=True), reference)
        except Exception as exc:
            self._use_pipeline(f"the compiled transform failed on probe rows: {exc!r}")
            return
        if not same_matrix:
            self._use_pipeline("the compiled transform did not reproduce the preprocessing exactly")
            return
        layout, chosen = self._layout, self._kernel
        candidates = [chosen]
        if chosen.name != EstimatorKernel.name:
            candidates.append(EstimatorKernel(self.estimator, chosen.classifier))
        for kernel in candidates:
            try:
                results = [kernel(X, mode) + kernel(X_one, mode) for mode in kernel.modes()]
            except Exception:
                continue
            if all(_same(g, e) for got in results for g, e in zip(got, expected, strict=True)):
                self._use_compiled(layout, kernel)
                return
        self._use_pipeline("the compiled path did not reproduce the pipeline's output exactly on probe rows")

    # prediction -----------------------------------------------------------------------------------------

    def validate(self, instances: Any, *, max_instances: int) -> None:
        """``validate_instances`` against this model's signature (prepared once)."""
        validate(instances, self._sig, max_instances)

    def transform_rows(self, instances: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """The float matrix the final estimator sees (C-contiguous, one row per instance)."""
        if len(instances) == 0 and self.n_columns is not None:
            return np.zeros((0, self.n_columns))
        if self.fast:
            try:
                return self._transform_fast(instances)
            except _NOT_REPRODUCIBLE:
                pass
        return np.ascontiguousarray(self.pipeline[:-1].transform(self._frame(instances)))

    def predict(self, instances: Sequence[Mapping[str, Any]]) -> tuple[list, list[dict[str, float]] | None]:
        """Predictions and (for classifiers) per-instance ``{class: probability}`` dicts.

        Classification labels are strings; regression values Python floats.
        Expects instances that passed ``validate`` (others are still answered
        exactly, through the pipeline, as far as the pipeline accepts them).
        """
        if len(instances) == 0:
            return [], ([] if self._has_proba else None)
        labels, proba = self._predict_arrays(instances)
        predictions = labels.tolist()
        if proba is None:
            return predictions, None
        classes = self.classes
        return predictions, [dict(zip(classes, row, strict=True)) for row in proba.tolist()]

    def _predict_arrays(self, instances: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray | None]:
        if self.fast:
            try:
                X = self._transform_fast(instances)
            except _NOT_REPRODUCIBLE:
                return self._predict_pipeline(instances)
            return self._kernel(X)
        return self._predict_pipeline(instances)

    def _transform_fast(self, instances: Sequence[Mapping[str, Any]], by_column: bool | None = None) -> np.ndarray:
        return encode.transform(self._layout, instances, by_column)

    def _frame(self, instances: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
        """The instances as the pipeline takes them (``apps.ml.prepare``)."""
        return prepare_for(self.pipeline, pd.DataFrame(list(instances), columns=list(self.feature_names)))

    def _predict_pipeline(self, instances: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray | None]:
        frame = self._frame(instances)
        labels = np.asarray(self.pipeline.predict(frame))
        proba = np.asarray(self.pipeline.predict_proba(frame), dtype=float) if self._has_proba else None
        return labels, proba
