"""The trees of an ensemble as one flat table, walked for all (row, tree) pairs at once with numpy."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

MAX_TABLE_NODES = 500_000  # ≤ ~25 MB of node arrays; bigger ensembles are walked tree by tree


class TooBig(Exception):
    """The ensemble has too many nodes to copy into a ``TreeTable``."""


class UnsupportedTrees(Exception):
    """The trees hold something the table cannot represent (several outputs, categorical splits)."""


class TreeTable:
    """Every tree of an ensemble as flat node arrays, walked for all (row, tree) pairs at once.

    Same decisions as scikit-learn's Cython (``x <= threshold`` goes left,
    comparing in float64; inputs never hold NaN here — callers check), so the
    leaf reached is the same. Leaves point to themselves, so walking the
    maximum depth of the ensemble lands every pair on its leaf.
    """

    __slots__ = ("feature", "threshold", "left", "right", "values", "roots", "n_trees", "depth")

    def __init__(self, trees: list[tuple[np.ndarray, ...]], depth: int):
        sizes = np.array([len(t[0]) for t in trees], dtype=np.intp)
        roots = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.intp)
        own = np.repeat(roots, sizes)
        feature, threshold, left, right, is_leaf, values = (
            np.concatenate(parts) for parts in zip(*trees, strict=True)
        )
        index = np.arange(len(feature), dtype=np.intp)
        is_leaf = is_leaf.astype(bool)
        self.feature = np.where(is_leaf, 0, feature).astype(np.intp)
        self.threshold = np.where(is_leaf, 0.0, threshold).astype(np.float64)
        self.left = np.where(is_leaf, index, left.astype(np.intp) + own)
        self.right = np.where(is_leaf, index, right.astype(np.intp) + own)
        self.values = np.ascontiguousarray(values, dtype=np.float64)
        self.roots = roots
        self.n_trees = len(trees)
        self.depth = int(depth)
        for arr in (self.feature, self.threshold, self.left, self.right, self.values):
            arr.setflags(write=False)

    @classmethod
    def from_estimator(cls, estimator: Any, classifier: bool) -> TreeTable:
        if isinstance(estimator, RandomForestClassifier | RandomForestRegressor):
            return cls._from_forest(estimator, classifier)
        return cls._from_boosting(estimator)

    @classmethod
    def _from_forest(cls, estimator: Any, classifier: bool) -> TreeTable:
        width = estimator.n_classes_ if classifier else 1
        if sum(tree.tree_.node_count for tree in estimator.estimators_) > MAX_TABLE_NODES:
            raise TooBig
        trees, depth = [], 0
        for tree in estimator.estimators_:
            t = tree.tree_
            if t.n_outputs != 1:
                raise UnsupportedTrees("multi-output tree")
            leaf = t.children_left == -1
            trees.append((t.feature, t.threshold, t.children_left, t.children_right, leaf, t.value[:, 0, :width]))
            depth = max(depth, t.max_depth)
        return cls(trees, depth)

    @classmethod
    def _from_boosting(cls, estimator: Any) -> TreeTable:
        if sum(len(p.nodes) for iteration in estimator._predictors for p in iteration) > MAX_TABLE_NODES:
            raise TooBig
        trees, depth = [], 0
        for iteration in estimator._predictors:
            for predictor in iteration:
                nodes = predictor.nodes
                if nodes["is_categorical"].any():
                    raise UnsupportedTrees("categorical splits")
                trees.append((
                    nodes["feature_idx"],
                    nodes["num_threshold"],
                    nodes["left"],
                    nodes["right"],
                    nodes["is_leaf"],
                    nodes["value"].reshape(-1, 1),
                ))  # fmt: skip
                depth = max(depth, int(nodes["depth"].max()))
        return cls(trees, depth)

    def worthwhile_rows(self, per_tree_us: float) -> int:
        """Up to how many rows walking all trees at once beats scikit-learn's tree-by-tree loop.

        Cost model fitted on a 2-core x86 machine (µs): numpy walk ≈ depth ×
        (4 + 0.0056 · rows · trees); scikit-learn ≈ trees × (c + 0.05 · rows),
        c = ``per_tree_us``: 3.4 for a forest tree, 7.6 for a boosting tree (it
        also opens an OpenMP region per tree).
        """
        gain = self.n_trees * per_tree_us - 4.0 * self.depth
        if gain <= 0:
            return 0
        slope = self.n_trees * (0.0056 * self.depth - 0.05)
        return 1_000_000 if slope <= 0 else int(gain / slope)

    def leaf_values(self, X: np.ndarray) -> np.ndarray:
        """(rows, trees, width) leaf values for a C-contiguous ``X`` without NaN."""
        n, n_features = X.shape
        flat = X.ravel()
        node = np.tile(self.roots, n)
        base = np.repeat(np.arange(n, dtype=np.intp) * n_features, self.n_trees)
        feature, threshold, left, right = self.feature, self.threshold, self.left, self.right
        for _ in range(self.depth):
            x = flat.take(base + feature.take(node))
            node = np.where(x <= threshold.take(node), left.take(node), right.take(node))
        return self.values.take(node, axis=0).reshape(n, self.n_trees, self.values.shape[1])
