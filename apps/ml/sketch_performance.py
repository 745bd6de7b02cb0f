"""Mergeable hourly sketches of labelled rows, from which performance metrics are computed.

The prediction and label *distributions* need nothing new: they are feature sketches on
the target's reference grid (:mod:`apps.ml.sketch`)::

    target = sketch_grid(reference[target_name])
    sketch_values(target, predictions); sketch_values(target, labels)   # per hour, merged like features
    sketch_drift("prediction", target, merged)                          # prediction drift, as today

Performance (rows that have a label)::

    classification_sketch(y_true, y_pred, classes=[...], proba=None) -> dict
    regression_sketch(y_true, y_pred) -> dict
    performance_merge([s1, s2, ...]) -> dict          # sum; sketches of one kind (and classes)
    performance_metrics(s) -> {"labelled_rows", "metrics", "error_bounds", "approximate"}

``metrics`` has the keys and meaning of :func:`apps.ml.metrics.classification_metrics` /
:func:`~apps.ml.metrics.regression_metrics` on the same rows (``classes`` being the columns
of ``proba``, as there). Exact: accuracy, macro precision / recall / F1 (from the confusion
counts of every (label, prediction) pair), log loss (a sum of scikit-learn's clipped
per-row losses), MAE, RMSE and R² (sums of errors, plus the labels' mean and centred sum of
squares merged by Chan's formula), all to float rounding. ROC AUC comes from histograms
of each class's probability among rows of that class and of the others, on PROBA_CELLS
cells uniform in logit over [-12, 12] plus p == 0 and p == 1 exactly: pairs in different
cells are ordered exactly and a tie counts 1/2, so the error is at most half the share of
(positive, negative) pairs that share a cell other than p == 0 or 1 (``error_bounds``).

Classification JSON (``kind == "classification"``)::

    {"kind", "version", "classes": [str], "rows": int,
     "confusion": {label: {prediction: int}}, "overflow": int,
     "proba_rows": int, "proba_invalid": int, "proba_unnormalised": int, "unknown_label": int,
     "log_loss_sum": float, "auc": [{"pos": {"index", "counts"}, "neg": {...}}] (one per class)}

(``index`` / ``counts`` packed as in :mod:`apps.ml.sketch`, over PROBA_CELLS cells.)

Labels and predictions are named as :func:`~apps.ml.drift_summary.category_label` names
them. At most EXTRA_LABELS_MAX values outside ``classes`` are kept (never one longer than
LABEL_CHARS_MAX or holding a NUL, as for feature sketches); rows with a value beyond
that are counted in ``overflow`` only: accuracy is then bounded (not exact) and the macro
averages are None, because how many classes they hide is unknown. ROC AUC and log loss are
None when a labelled row has no probabilities, an invalid one (non-finite, outside [0, 1])
or (except for binary ROC AUC, as in scikit-learn) a label outside ``classes``; multiclass
ROC AUC also when a row's probabilities do not sum to 1, as scikit-learn refuses them.

Regression JSON (``kind == "regression"``)::

    {"kind", "version", "rows", "dropped", "n", "err_sum", "sq_err_sum", "abs_err_sum",
     "y_mean", "y_m2"}

``dropped`` counts rows whose label or prediction is not finite or beyond VALUE_MAX in
magnitude (which keeps every sum finite); errors are ``y_true - y_pred``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from .drift_summary import category_label, numeric_array
from .errors import MLError
from .metrics import clean_float
from .sketch import COUNT_MAX, check_count, check_float, keepable_label, pack_cells, unpack_cells

PERFORMANCE_VERSION = 1
PROBA_LOGIT_MAX = 12.0
PROBA_EDGES = 1.0 / (1.0 + np.exp(-np.linspace(-PROBA_LOGIT_MAX, PROBA_LOGIT_MAX, 2401)))
PROBA_CELLS = PROBA_EDGES.size + 3  # p == 0, below the first edge .. above the last, p == 1
PROBA_CLASSES_MAX = 50
CLASSES_MAX = 1_000
EXTRA_LABELS_MAX = 100
VALUE_MAX = 1e100
CLASSIFICATION_KEYS = frozenset({"kind", "version", "classes", "rows", "confusion", "overflow", "proba_rows",
                                 "proba_invalid", "proba_unnormalised", "unknown_label", "log_loss_sum", "auc"})
REGRESSION_KEYS = frozenset({"kind", "version", "rows", "dropped", "n", "err_sum", "sq_err_sum",
                             "abs_err_sum", "y_mean", "y_m2"})
_EPS = float(np.finfo(np.float64).eps)


# --------------------------------------------------------------------------- building
def classification_sketch(
    y_true: Sequence[Any], y_pred: Sequence[Any], *, classes: Sequence[Any], proba: Any = None
) -> dict[str, Any]:
    """Sketch labelled rows of a classifier; ``proba`` (optional) has one column per class."""
    labels = [category_label(v) for v in y_true]
    preds = [category_label(v) for v in y_pred]
    classes = _classes([category_label(c) for c in classes])
    if len(labels) != len(preds):
        raise MLError("Labels and predictions differ in length.", field="y_pred")
    pairs: dict[tuple[str, str], int] = {}
    for pair in zip(labels, preds, strict=True):
        pairs[pair] = pairs.get(pair, 0) + 1
    confusion, overflow = _cap_pairs(pairs, classes, 0)
    out = {"kind": "classification", "version": PERFORMANCE_VERSION, "classes": classes, "rows": len(labels),
           "confusion": confusion, "overflow": overflow, "proba_rows": 0, "proba_invalid": 0,
           "proba_unnormalised": 0, "unknown_label": 0, "log_loss_sum": 0.0,
           "auc": _empty_auc(len(classes))}
    if proba is not None:
        out.update(_proba_part(np.asarray(labels, dtype=object), np.asarray(proba, dtype=np.float64), classes))
    return out


def _classes(classes: list[str]) -> list[str]:
    if not 1 <= len(classes) <= CLASSES_MAX or len(set(classes)) != len(classes):
        raise MLError(f"classes must be 1 to {CLASSES_MAX} distinct labels.", field="classes")
    return classes


def _cap_pairs(pairs: dict[tuple[str, str], int], classes: list[str], overflow: int) -> tuple[dict, int]:
    """Confusion counts, keeping the EXTRA_LABELS_MAX most frequent values outside ``classes``."""
    known = set(classes)
    extra: dict[str, int] = {}
    for (label, pred), n in pairs.items():
        for v in {label, pred} - known:
            extra[v] = extra.get(v, 0) + n
    ranked = sorted(((v, n) for v, n in extra.items() if keepable_label(v)), key=lambda kv: (-kv[1], kv[0]))
    keep = known | {v for v, _ in ranked[:EXTRA_LABELS_MAX]}
    confusion: dict[str, dict[str, int]] = {}
    for (label, pred), n in sorted(pairs.items()):
        if label in keep and pred in keep:
            confusion.setdefault(label, {})[pred] = n
        else:
            overflow += n
    return confusion, overflow


def _proba_cells(p: np.ndarray) -> np.ndarray:
    return np.where(p <= 0.0, 0, np.where(p >= 1.0, PROBA_CELLS - 1, 1 + np.searchsorted(PROBA_EDGES, p, side="right")))


def _proba_part(labels: np.ndarray, proba: np.ndarray, classes: list[str]) -> dict[str, Any]:
    k = len(classes)
    if proba.ndim != 2 or proba.shape != (labels.size, k):
        raise MLError(f"proba must have one row per label and {k} columns.", field="proba")
    valid = np.isfinite(proba).all(axis=1) & (proba >= 0).all(axis=1) & (proba <= 1).all(axis=1)
    pv, lv = proba[valid], labels[valid]
    col = {c: i for i, c in enumerate(classes)}
    idx = np.array([col.get(v, -1) for v in lv], dtype=np.int64)
    known = idx >= 0
    p_true = np.clip(pv[known, idx[known]], _EPS, 1 - _EPS)
    sums = pv.sum(axis=1)
    auc = _empty_auc(k)
    if k <= PROBA_CLASSES_MAX:
        auc = []
        for i in range(k):
            cells = _proba_cells(pv[:, i])
            auc.append({"pos": _sparse(cells[idx == i]), "neg": _sparse(cells[idx != i])})
    return {"proba_rows": int(valid.sum()), "proba_invalid": int((~valid).sum()),
            "proba_unnormalised": int((~(np.abs(1.0 - sums) <= 1e-8 + 1e-5 * np.abs(sums))).sum()),
            "unknown_label": int((~known).sum()), "log_loss_sum": float(-np.log(p_true).sum()), "auc": auc}


def _empty_auc(k: int) -> list:
    return [{"pos": _sparse(np.empty(0)), "neg": _sparse(np.empty(0))} for _ in range(k)] if k <= PROBA_CLASSES_MAX else []


def _sparse(cells: np.ndarray) -> dict[str, str]:
    idx, counts = np.unique(cells.astype(np.int64), return_counts=True)
    index, packed = pack_cells(idx, counts)
    return {"index": index, "counts": packed}


def _sparse_of_dense(dense: np.ndarray) -> dict[str, str]:
    idx = np.flatnonzero(dense)
    index, packed = pack_cells(idx, dense[idx])
    return {"index": index, "counts": packed}


def _dense(part: Any, field: str) -> np.ndarray:
    if not isinstance(part, dict) or set(part) != {"index", "counts"}:
        raise MLError(f"Sketch {field} must be an object with index and counts.", field=field)
    cells, counts = unpack_cells(part["index"], part["counts"], PROBA_CELLS)
    out = np.zeros(PROBA_CELLS, dtype=np.int64)
    out[cells] = counts
    return out


def regression_sketch(y_true: Sequence[Any], y_pred: Sequence[Any]) -> dict[str, Any]:
    """Sketch labelled rows of a regressor (non-numeric values count as dropped)."""
    y, p = numeric_array(y_true), numeric_array(y_pred)
    if y.size != p.size:
        raise MLError("Labels and predictions differ in length.", field="y_pred")
    keep = np.isfinite(y) & np.isfinite(p) & (np.abs(y) <= VALUE_MAX) & (np.abs(p) <= VALUE_MAX)
    y, e = y[keep], y[keep] - p[keep]
    mean = float(y.mean()) if y.size else 0.0
    return {"kind": "regression", "version": PERFORMANCE_VERSION, "rows": int(keep.size),
            "dropped": int((~keep).sum()), "n": int(y.size), "err_sum": float(e.sum()),
            "sq_err_sum": float((e * e).sum()), "abs_err_sum": float(np.abs(e).sum()), "y_mean": mean,
            "y_m2": float(((y - mean) ** 2).sum())}


# --------------------------------------------------------------------------- merging and checks
def performance_merge(sketches: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The sketch of all rows of ``sketches`` (of one kind; classifiers with the same classes)."""
    parts = [performance_validate(s) for s in sketches]
    if not parts:
        raise MLError("Nothing to merge.", field="sketches")
    first = parts[0]
    if any(p["kind"] != first["kind"] or p.get("classes") != first.get("classes") for p in parts):
        raise MLError("Only sketches of one task and one list of classes merge.", field="classes")
    if sum(p["rows"] for p in parts) > COUNT_MAX:
        raise MLError(f"A sketch cannot hold more than {COUNT_MAX} rows.", field="rows")
    if first["kind"] == "regression":
        return _merge_regression(parts)
    pairs: dict[tuple[str, str], int] = {}
    for p in parts:
        for label, row in p["confusion"].items():
            for pred, n in row.items():
                pairs[(label, pred)] = pairs.get((label, pred), 0) + n
    confusion, overflow = _cap_pairs(pairs, first["classes"], sum(p["overflow"] for p in parts))
    out = {**first, "confusion": confusion, "overflow": overflow}
    for f in ("rows", "proba_rows", "proba_invalid", "proba_unnormalised", "unknown_label"):
        out[f] = sum(p[f] for p in parts)
    out["log_loss_sum"] = float(sum(p["log_loss_sum"] for p in parts))
    out["auc"] = [{side: _sparse_of_dense(sum(_dense(p["auc"][i][side], "auc") for p in parts))
                   for side in ("pos", "neg")} for i in range(len(first["auc"]))]
    return out


def _merge_regression(parts: list[dict[str, Any]]) -> dict[str, Any]:
    out = dict(parts[0])
    for p in parts[1:]:
        n = out["n"] + p["n"]
        delta = p["y_mean"] - out["y_mean"]
        mean = out["y_mean"] + delta * p["n"] / n if n else 0.0
        m2 = out["y_m2"] + p["y_m2"] + (delta * delta * out["n"] * p["n"] / n if n else 0.0)
        out = {**out, **{f: out[f] + p[f] for f in ("rows", "dropped", "n", "err_sum", "sq_err_sum", "abs_err_sum")},
               "y_mean": mean, "y_m2": m2}
    return out


def performance_validate(sketch: Any) -> dict[str, Any]:
    """The sketch itself when well-formed; MLError naming the field otherwise."""
    if not isinstance(sketch, dict) or sketch.get("kind") not in ("classification", "regression"):
        raise MLError("A performance sketch must be an object of kind classification or regression.", field="kind")
    keys = CLASSIFICATION_KEYS if sketch["kind"] == "classification" else REGRESSION_KEYS
    if set(sketch) != keys:
        raise MLError(f"Sketch fields do not match: unknown {sorted(set(sketch) - keys)}, "
                      f"missing {sorted(keys - set(sketch))}.", field="sketch")
    if sketch["version"] != PERFORMANCE_VERSION:
        raise MLError(f"Expected a version {PERFORMANCE_VERSION} performance sketch.", field="version")
    if sketch["kind"] == "regression":
        _check_regression(sketch)
    else:
        _check_classification(sketch)
    return sketch


def _check_regression(s: dict[str, Any]) -> None:
    rows, dropped, n = (check_count(s[f], f) for f in ("rows", "dropped", "n"))
    floats = {f: check_float(s[f], f) for f in ("err_sum", "sq_err_sum", "abs_err_sum", "y_mean", "y_m2")}
    if None in floats.values() or dropped + n != rows:
        raise MLError("Sketch sums must be numbers and dropped + n must equal rows.", field="n")
    if min(floats["sq_err_sum"], floats["abs_err_sum"], floats["y_m2"]) < 0:
        raise MLError("Sketch sums of squares and absolute errors cannot be negative.", field="sq_err_sum")


def _check_classification(s: dict[str, Any]) -> None:
    classes = s["classes"]
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise MLError("Sketch classes must be a list of labels.", field="classes")
    _classes(classes)
    rows, overflow = check_count(s["rows"], "rows"), check_count(s["overflow"], "overflow")
    conf = s["confusion"]
    if not isinstance(conf, dict) or not all(isinstance(r, dict) for r in conf.values()):
        raise MLError("Sketch confusion must map label -> prediction -> count.", field="confusion")
    values = set(conf) | {p for r in conf.values() for p in r}
    extra = values - set(classes)
    if len(extra) > EXTRA_LABELS_MAX or not all(isinstance(v, str) and keepable_label(v) for v in extra):
        raise MLError("Sketch confusion holds more labels than allowed.", field="confusion")
    total = sum(check_count(n, "confusion") for r in conf.values() for n in r.values())
    if total + overflow != rows:
        raise MLError("Sketch confusion counts do not add up to its rows.", field="rows")
    proba_rows, invalid, unnorm, unknown = (check_count(s[f], f) for f in
                                            ("proba_rows", "proba_invalid", "proba_unnormalised", "unknown_label"))
    loss = check_float(s["log_loss_sum"], "log_loss_sum")
    if proba_rows + invalid > rows or unknown > proba_rows or unnorm > proba_rows or loss is None or loss < 0:
        raise MLError("Sketch probability counts do not fit its rows.", field="proba_rows")
    auc = s["auc"]
    if not isinstance(auc, list) or len(auc) != (len(classes) if len(classes) <= PROBA_CLASSES_MAX else 0):
        raise MLError("Sketch auc must hold one histogram pair per class.", field="auc")
    for pair in auc:
        if not isinstance(pair, dict) or set(pair) != {"pos", "neg"}:
            raise MLError("Sketch auc entries must have pos and neg.", field="auc")
        both = np.r_[_dense(pair["pos"], "auc"), _dense(pair["neg"], "auc")]
        if both.sum(dtype=np.float64) > proba_rows + 0.5 or int(both.sum()) != proba_rows:
            raise MLError("Sketch auc histograms do not add up to its probability rows.", field="auc")


# --------------------------------------------------------------------------- metrics
def performance_metrics(sketch: dict[str, Any]) -> dict[str, Any]:
    """Metrics of a (merged) performance sketch, with error bounds where not exact."""
    s = performance_validate(sketch)
    if s["kind"] == "regression":
        return _regression_metrics(s)
    return _classification_metrics(s)


def _regression_metrics(s: dict[str, Any]) -> dict[str, Any]:
    n = s["n"]
    metrics: dict[str, float | None] = {"rmse": None, "mae": None, "r2": None}
    if n:
        metrics["rmse"] = clean_float(np.sqrt(s["sq_err_sum"] / n))
        metrics["mae"] = clean_float(s["abs_err_sum"] / n)
    if n >= 2:  # scikit-learn's r2_score with force_finite: a constant label scores 1 or 0
        metrics["r2"] = (1.0 - s["sq_err_sum"] / s["y_m2"]) if s["y_m2"] else (1.0 if s["sq_err_sum"] == 0 else 0.0)
    return {"labelled_rows": s["rows"], "metrics": metrics, "error_bounds": {}, "approximate": False}


def _classification_metrics(s: dict[str, Any]) -> dict[str, Any]:
    conf, rows, overflow = s["confusion"], s["rows"], s["overflow"]
    metrics: dict[str, float | None] = dict.fromkeys(("accuracy", "precision", "recall", "f1", "roc_auc",
                                                      "log_loss"))
    bounds: dict[str, float] = {}
    if rows:
        correct = sum(r.get(label, 0) for label, r in conf.items())
        metrics["accuracy"] = correct / rows
        if overflow:
            bounds["accuracy"] = overflow / rows
        else:
            metrics.update(_macro(conf))
    classes = s["classes"]
    usable = rows and s["proba_rows"] == rows and len(classes) >= 2
    if usable and not s["unknown_label"]:
        metrics["log_loss"] = clean_float(s["log_loss_sum"] / rows)
    if usable and s["auc"] and (len(classes) == 2 or not (s["unknown_label"] or s["proba_unnormalised"])):
        auc, bound = _auc(s["auc"], binary=len(classes) == 2)
        if auc is not None:
            metrics["roc_auc"], bounds["roc_auc"] = auc, bound
    approximate = any(b > 0 for b in bounds.values())
    return {"labelled_rows": rows, "metrics": metrics, "error_bounds": bounds, "approximate": approximate}


def _macro(conf: dict[str, dict[str, int]]) -> dict[str, float]:
    """scikit-learn's macro precision / recall / F1 (zero_division=0) over every value seen."""
    labels = sorted(set(conf) | {p for r in conf.values() for p in r})
    tp = np.array([conf.get(v, {}).get(v, 0) for v in labels], dtype=np.float64)
    true_sum = np.array([sum(conf.get(v, {}).values()) for v in labels], dtype=np.float64)
    pred_sum = np.array([sum(r.get(v, 0) for r in conf.values()) for v in labels], dtype=np.float64)

    def ratio(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.mean(np.divide(a, b, out=np.zeros_like(a), where=b > 0)))

    return {"precision": ratio(tp, pred_sum), "recall": ratio(tp, true_sum), "f1": ratio(2 * tp, true_sum + pred_sum)}


def _auc(auc: list[dict[str, Any]], *, binary: bool) -> tuple[float | None, float]:
    """Mann-Whitney AUC per class column from the histograms (ties count 1/2), averaged
    over classes (one-vs-rest macro) or on the second class's column for binary."""
    values, bounds = [], []
    for pair in [auc[1]] if binary else auc:
        pos, neg = _dense(pair["pos"], "auc").astype(np.float64), _dense(pair["neg"], "auc").astype(np.float64)
        n_pos, n_neg = pos.sum(), neg.sum()
        if not n_pos or not n_neg:
            return None, 0.0
        below = np.cumsum(neg) - neg
        values.append(float(np.sum(pos * (below + 0.5 * neg)) / (n_pos * n_neg)))
        bounds.append(float(0.5 * np.sum((pos * neg)[1:-1]) / (n_pos * n_neg)))
    return float(np.mean(values)), float(np.mean(bounds))
