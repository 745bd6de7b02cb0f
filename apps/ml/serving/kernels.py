"""Estimator kernels: the final estimator's own arithmetic, with less per-call overhead.

One small class per estimator kind behind one interface (``Kernel``), chosen from
``KERNELS`` by ``kernel_for``; ``EstimatorKernel`` (the estimator's own ``predict`` and
``predict_proba``) serves every other estimator and is the fallback when a kernel
cannot be built. A kernel turns the model matrix into (labels or values,
probabilities or None), exactly as the estimator would:

* ``forest`` (random forests): scikit-learn sums the trees through joblib
  (~40 µs per tree even with one job). Small requests walk all trees at once
  with numpy (``TreeTable``), larger ones call each tree's Cython ``predict``
  directly; either way leaf values are added in scikit-learn's order.
* ``hist_gradient_boosting``: scikit-learn opens an OpenMP parallel region per
  tree (milliseconds per row on a busy machine). Small requests use the numpy
  walk, larger ones ``_raw_predict(X, n_threads=1)``; the loss object then
  turns raw scores into probabilities exactly as ``predict_proba`` does.
* ``logistic``: one ``decision_function`` call gives both labels and
  probabilities (scikit-learn's predict and predict_proba each compute it).
* ``knn``: one ``predict_proba`` call when scikit-learn's own ``predict`` is
  argmax(predict_proba) (uniform weights, brute force); otherwise both calls.
  The neighbour search's OpenMP is limited to one thread for the call (in the
  calling thread only): on a loaded machine its threads spin-wait.

Wrapping the calls in ``sklearn.config_context(assume_finite=True,
skip_parameter_validation=True)`` made no difference beyond noise (< 10 %, the
finiteness check on a 1×55 matrix is ~2 µs), so it is not done.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any, ClassVar

import numpy as np
from scipy import special
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.utils.extmath import softmax

from .trees import TooBig, TreeTable

Result = tuple[np.ndarray, np.ndarray | None]


class Kernel:
    """How the final estimator is called. ``vectorize`` forces one of a kernel's two ways (for verification)."""

    name: ClassVar[str]

    def __init__(self, estimator: Any, classifier: bool):
        self.estimator = estimator
        self.classifier = classifier

    @classmethod
    def fits(cls, estimator: Any) -> bool:
        """Can this kernel reproduce ``estimator``?"""
        raise NotImplementedError

    def modes(self) -> tuple[bool | None, ...]:
        """The values of ``vectorize`` that verification must check."""
        return (None,)

    def __call__(self, X: np.ndarray, vectorize: bool | None = None) -> Result:
        raise NotImplementedError


class EstimatorKernel(Kernel):
    name = "estimator"

    def __init__(self, estimator: Any, classifier: bool):
        super().__init__(estimator, classifier)
        self.has_proba = classifier and hasattr(estimator, "predict_proba")

    @classmethod
    def fits(cls, estimator: Any) -> bool:
        return True

    def __call__(self, X: np.ndarray, vectorize: bool | None = None) -> Result:
        labels = np.asarray(self.estimator.predict(X))
        proba = np.asarray(self.estimator.predict_proba(X), dtype=float) if self.has_proba else None
        return labels, proba


class _TreeKernel(Kernel):
    """Requests of at most ``vector_max_rows`` rows walk every tree at once (``TreeTable``); larger
    ones go tree by tree through scikit-learn's Cython. Both add the leaf values in scikit-learn's
    order, so results are identical."""

    per_tree_us: ClassVar[float]

    def __init__(self, estimator: Any, classifier: bool):
        super().__init__(estimator, classifier)
        try:
            table: TreeTable | None = TreeTable.from_estimator(estimator, classifier)
        except TooBig:
            table = None  # tree by tree, still without joblib / OpenMP overhead
        self.vector_max_rows = table.worthwhile_rows(self.per_tree_us) if table is not None else 0
        self.table = table if self.vector_max_rows >= 1 else None

    def modes(self) -> tuple[bool | None, ...]:
        return (True, False) if self.table is not None else (None,)

    def _walk_table(self, X: np.ndarray, vectorize: bool | None) -> bool:
        if vectorize is None:
            vectorize = X.shape[0] <= self.vector_max_rows
        return bool(vectorize) and self.table is not None and not np.isnan(X).any()


class ForestKernel(_TreeKernel):
    name = "forest"
    per_tree_us = 3.4

    @classmethod
    def fits(cls, estimator: Any) -> bool:
        return (
            type(estimator) in (RandomForestClassifier, RandomForestRegressor)
            and getattr(estimator, "n_outputs_", 1) == 1
            and estimator.n_jobs in (None, 1)
        )

    def __call__(self, X: np.ndarray, vectorize: bool | None = None) -> Result:
        est = self.estimator
        X32 = np.asarray(X, dtype=np.float32)
        if self._walk_table(X32, vectorize):
            leaf_values = self.table.leaf_values(X32)  # (n, trees, outputs)
            n, n_trees, width = leaf_values.shape
            chain = np.zeros((n, n_trees + 1, width), dtype=np.float64)
            chain[:, 1:, :] = leaf_values
            total = np.add.accumulate(chain, axis=1)[:, -1, :]  # 0 + v0 + v1 + …, in tree order
        else:
            width = est.n_classes_ if self.classifier else 1
            total = np.zeros((X.shape[0], width), dtype=np.float64)
            for tree in est.estimators_:
                total += tree.tree_.predict(X32)[:, :width]
        if not self.classifier:
            y = total[:, 0].copy()
            y /= len(est.estimators_)
            return y, None
        proba = np.ascontiguousarray(total)
        proba /= len(est.estimators_)
        return est.classes_.take(np.argmax(proba, axis=1), axis=0), proba


class HistGradientBoostingKernel(_TreeKernel):
    name = "hist_gradient_boosting"
    per_tree_us = 7.6

    @classmethod
    def fits(cls, estimator: Any) -> bool:
        return (
            type(estimator) in (HistGradientBoostingClassifier, HistGradientBoostingRegressor)
            and hasattr(estimator, "_raw_predict")
            and hasattr(estimator, "_loss")
        )

    def __call__(self, X: np.ndarray, vectorize: bool | None = None) -> Result:
        est = self.estimator
        if self._walk_table(X, vectorize):
            n, k = X.shape[0], est.n_trees_per_iteration_
            iterations = self.table.n_trees // k
            leaf_values = self.table.leaf_values(np.ascontiguousarray(X, dtype=np.float64))
            chain = np.zeros((n, iterations + 2, k), dtype=np.float64)
            chain[:, 1, :] = est._baseline_prediction.reshape(k)
            chain[:, 2:, :] = leaf_values.reshape(n, iterations, k)
            raw = np.asfortranarray(np.add.accumulate(chain, axis=1)[:, -1, :])  # 0 + baseline + trees
        else:
            raw = est._raw_predict(X, n_threads=1)
        if not self.classifier:
            return est._loss.link.inverse(raw.ravel()), None
        proba = est._loss.predict_proba(raw)
        encoded = (raw.ravel() > 0).astype(int) if raw.shape[1] == 1 else np.argmax(raw, axis=1)
        return est.classes_[encoded], proba


class LogisticKernel(Kernel):
    name = "logistic"

    @classmethod
    def fits(cls, estimator: Any) -> bool:
        return type(estimator) is LogisticRegression and hasattr(estimator, "decision_function")

    def __call__(self, X: np.ndarray, vectorize: bool | None = None) -> Result:
        # LogisticRegression.predict and predict_proba both start from decision_function: call it once.
        est = self.estimator
        scores = est.decision_function(X)
        if scores.ndim == 1:
            labels = est.classes_.take((scores > 0).astype(int), axis=0)
            positive = special.expit(scores)
            return labels, np.stack([1 - positive, positive], axis=1)
        labels = est.classes_.take(np.argmax(scores, axis=1), axis=0)
        return labels, softmax(scores, copy=False)


class KnnKernel(Kernel):
    name = "knn"

    @classmethod
    def fits(cls, estimator: Any) -> bool:
        return type(estimator) is KNeighborsClassifier and not getattr(estimator, "outputs_2d_", True)

    def __call__(self, X: np.ndarray, vectorize: bool | None = None) -> Result:
        est = self.estimator
        # The neighbour search runs OpenMP threads; on a shared server they mostly spin-wait (p99 of
        # 80 ms instead of 3 ms for one row, measured): one thread, for this calling thread only.
        with _one_openmp_thread():
            if _knn_predict_is_proba_argmax(est, X):
                # KNeighborsClassifier.predict itself returns classes_[argmax(predict_proba(X))] here.
                proba = est.predict_proba(X)
                return est.classes_[np.argmax(proba, axis=1)], proba
            return np.asarray(est.predict(X)), np.asarray(est.predict_proba(X), dtype=float)


KERNELS: tuple[type[Kernel], ...] = (ForestKernel, HistGradientBoostingKernel, LogisticKernel, KnnKernel)


def kernel_for(estimator: Any, classifier: bool) -> Kernel:
    """The first kernel of ``KERNELS`` that fits ``estimator``; the estimator's own methods otherwise."""
    for kind in KERNELS:
        if kind.fits(estimator):
            try:
                return kind(estimator, classifier)
            except Exception:  # unexpected internals (another scikit-learn): call the estimator itself
                break
    return EstimatorKernel(estimator, classifier)


_OPENMP: list[Any] = []  # [threadpoolctl selection of the loaded OpenMP runtimes, or None]
_OPENMP_LOCK = threading.Lock()


def _one_openmp_thread() -> contextlib.AbstractContextManager:
    """Limit OpenMP to one thread in the calling thread (libgomp keeps the limit per thread).

    ~6 µs; the threadpoolctl controller (slow to build: it scans loaded
    libraries) is made once per process.
    """
    if not _OPENMP:
        with _OPENMP_LOCK:
            if not _OPENMP:
                try:
                    from threadpoolctl import ThreadpoolController

                    _OPENMP.append(ThreadpoolController().select(user_api="openmp"))
                except Exception:  # pragma: no cover - no threadpoolctl: run unlimited
                    _OPENMP.append(None)
    selection = _OPENMP[0]
    if selection is None or not selection.lib_controllers:
        return contextlib.nullcontext()
    return selection.limit(limits=1)


def _knn_predict_is_proba_argmax(estimator: Any, X: np.ndarray) -> bool:
    """The condition under which scikit-learn's KNeighborsClassifier.predict goes through predict_proba."""
    if estimator.weights != "uniform" or getattr(estimator, "_fit_method", None) != "brute":
        return False
    try:
        from sklearn.metrics._pairwise_distances_reduction import ArgKminClassMode
    except ImportError:  # pragma: no cover - private module moved: two calls are still exact
        return False
    return bool(ArgKminClassMode.is_usable_for(X, estimator._fit_X, estimator.metric))
