"""Mergeable hourly sketches of one feature's production values, on the reference's own grid.

Why this module exists: a drift check that reads its window's rows costs O(rows) and a
quarter of logged predictions does not fit in memory. Instead, every hour of every
deployment keeps, per feature, a small JSON document of counts laid out against that
feature's stored reference summary (:mod:`apps.ml.drift_summary`); a check over any window
merges the window's hours and judges the merged sketch (:mod:`apps.ml.sketch_drift`), so it
costs O(hours x features), not O(rows). Prediction, label and performance sketches live in
:mod:`apps.ml.sketch_performance`.

API (all pure functions; a grid is built once per reference and reused)::

    grid = sketch_grid(reference)                  # SketchGrid, from one stored feature summary
    s = sketch_values(grid, values, absent=0)      # dict: one feature, one batch of rows
    by_name = sketch_rows(grids, rows)             # {name: dict}: feature dicts as logged
    s = sketch_merge(grid, [s1, s2, ...])          # dict: the sum (commutative, associative)
    sketch_validate(grid, s)                       # MLError unless s is a well-formed sketch on grid
    sketch_empty(grid)                             # dict: no rows (the merge identity)
    # apps.ml.sketch_drift:
    sketch_drift(name, grid, s, method=, threshold=, min_rows=) -> FeatureDrift   # as feature_drift
    sketch_chart(grid, s) -> dict                  # chart-bin counts, nulls, rows (no verdict)

How the Django side is meant to use it: a table of (deployment, feature, hour, sketch JSONB,
grid fingerprint) filled by the predict path or by a folding job (``sketch_rows`` over the new
log rows of an hour, then ``sketch_merge`` with that hour's stored sketch); a check or a chart
loads the window's hours of one feature, merges and judges them; ``rows`` of the merged
sketch is the number of rows judged. A sketch is only meaningful on the grid of the
reference it was made against (``grid`` holds its fingerprint and a merge or check on another
grid is an MLError): a check against another reference (a policy's
``reference_dataset_version``) needs sketches made on that reference's grid, or raw rows.

Numeric sketch (``kind == "numeric"``)::

    {"kind": "numeric", "version": 1, "grid": str,        # grid fingerprint
     "rows": int,            # rows seen: absent + nulls + non_finite + sum(counts)
     "absent": int,          # rows whose input lacked the feature
     "nulls": int,           # None, NaN and non-numeric values
     "non_finite": int,      # +-inf
     "index": str, "counts": str,       # non-zero cells, packed: first index then steps (> 0); counts
     "tail_gaps": [float, float],       # sum(b_0 - x) below, sum(x - b_last) above the grid
     "min": float | None, "max": float | None}             # of the finite values

``index`` and ``counts`` are packed integer arrays (:func:`pack_ints`): ``"u1:"``, ``"u2:"``,
``"u4:"`` or ``"u8:"`` (the width of each unsigned little-endian integer) then the bytes in
base64. Why not JSON lists: reading a quarter of hourly sketches back is then a base64 decode
and ``np.frombuffer`` per sketch instead of parsing thousands of Python ints (measured in
``bench/sketch.py``), and a typical hour takes about 3 bytes per non-zero cell.

The grid: *points* are every exact reference value (or, for a histogram summary, every
atom) and every *boundary*; boundaries are every reference value when the reference has at
most GRID_ALL_VALUES_MAX distinct values, else GRID_QUANTILE_CELLS reference quantiles and
GRID_WIDTH_CELLS + 1 equal-width edges over [min, max]; always the PSI cuts, the chart edges,
min and max. Cells ``0 .. P-1`` count values equal to point ``i``; cell ``P + j`` counts the
other values between boundaries ``j-1`` and ``j`` (``P`` below the first boundary,
``P + B`` above the last: the tails). PSI and chart bins are exact sums of cells. Tail gaps
make the Wasserstein distance exact outside the grid; each gap is capped at GAP_MAX so that
sums stay finite (the only difference from raw rows: values beyond ~1e290).

Categorical sketch (``kind == "categorical"``)::

    {"kind": "categorical", "version": 1, "grid": str, "rows": int, "absent": int, "nulls": int,
     "counts": {label: int},                 # labels as drift_summary.category_label makes them
     "other": int, "other_labels": int}      # pooled rows; an upper bound of their distinct labels

Every reference category is kept; at most UNSEEN_LABELS_MAX labels unknown to the reference
(the most frequent; labels over LABEL_CHARS_MAX characters never) are kept per sketch, the
rest is pooled in ``other`` (so is any unseen label holding a NUL, which jsonb refuses). What pooling does to the statistics (it only happens above that
cap, e.g. a client sending ids): Jensen-Shannon and the chi-squared statistic depend on the
unseen labels only through their total, so they stay exact; PSI (one epsilon per unseen
label) and the chi-squared degrees of freedom do not, and the check reports an error bound
for them (:mod:`apps.ml.sketch_drift`). Merging stays a sum of counts; only the choice of
which unseen labels stay named can depend on merge order once the cap bites.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .drift_summary import Dist, category_counts, category_label, numeric_array
from .errors import MLError

SKETCH_VERSION = 1
GRID_ALL_VALUES_MAX = 1_000
GRID_QUANTILE_CELLS = 1_000
GRID_WIDTH_CELLS = 500
UNSEEN_LABELS_MAX = 100
LABEL_CHARS_MAX = 200
COUNT_MAX = 2**53 - 1  # float64 statistics are exact on integer counts up to here
GAP_MAX = 1e290  # x COUNT_MAX stays below the float64 maximum

NUMERIC_KEYS = frozenset(
    {"kind", "version", "grid", "rows", "absent", "nulls", "non_finite", "index", "counts", "tail_gaps",
     "min", "max"}
)
CATEGORICAL_KEYS = frozenset({"kind", "version", "grid", "rows", "absent", "nulls", "counts", "other",
                              "other_labels"})


# --------------------------------------------------------------------------- grid
@dataclass(frozen=True, eq=False)
class SketchGrid:
    """Where a feature's values are counted, derived from its stored reference summary alone
    (so every process derives the same grid; ``fingerprint`` names it)."""

    reference: dict[str, Any]
    kind: str
    fingerprint: str
    points: np.ndarray  # numeric: sorted values counted by equality
    bounds: np.ndarray  # numeric: sorted cell boundaries, a subset of points
    categories: frozenset[str]  # categorical: the reference's stored labels
    inner_reference: np.ndarray  # numeric: reference share strictly inside each interior cell

    @property
    def cells(self) -> int:
        """Number of numeric cells: points, interior cells and the two tails."""
        return int(self.points.size + self.bounds.size + 1)


def sketch_grid(reference: dict[str, Any]) -> SketchGrid:
    """The grid of one feature's reference summary (as :func:`build_reference` stores it)."""
    try:
        kind = reference["kind"]
        if kind == "numeric":
            points, bounds = _numeric_grid(reference)
            raw = b"|".join([b"numeric", points.astype("<f8").tobytes(), bounds.astype("<f8").tobytes()])
            inner = np.empty(0)
            if bounds.size >= 2:
                dist = Dist.from_summary(reference)
                inner = (dist.cdf(bounds, left=True)[1:] - dist.cdf(bounds)[:-1]) / dist.n
            return SketchGrid(reference, kind, _fingerprint(raw), points, bounds, frozenset(), inner)
        if kind == "categorical":
            cats = [str(c) for c in reference["categories"]]
            raw = json.dumps(["categorical", bool(reference["exact"]), cats]).encode()
            empty = np.empty(0)
            return SketchGrid(reference, kind, _fingerprint(raw), empty, empty, frozenset(cats), empty)
    except (KeyError, TypeError, ValueError) as exc:
        raise MLError(f"The reference summary is malformed ({exc!r}).", field="reference") from exc
    raise MLError(f"Unknown feature kind {kind!r}: expected 'numeric' or 'categorical'.", field="kind")


def _fingerprint(raw: bytes) -> str:
    return hashlib.sha256(f"sketch-v{SKETCH_VERSION}|".encode() + raw).hexdigest()[:16]


def _numeric_grid(ref: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    values = np.asarray(ref["values"], dtype=np.float64)
    if int(ref["n"]) == 0:
        return np.empty(0), np.empty(0)
    lo, hi = float(ref["min"]), float(ref["max"])
    parts = [np.asarray(ref["psi_cuts"], dtype=np.float64), np.asarray(ref["chart_edges"], dtype=np.float64),
             np.array([lo, hi])]
    if ref["exact"] and values.size <= GRID_ALL_VALUES_MAX:
        parts.append(values)
    else:
        # quantiles where the reference CDF is known without interpolation: at its values or hist edges
        cand = values if ref["exact"] else np.asarray(ref["hist_edges"], dtype=np.float64)
        cum = Dist.from_summary(ref).cdf(cand)
        targets = int(ref["n"]) * np.arange(1, GRID_QUANTILE_CELLS) / GRID_QUANTILE_CELLS
        parts.append(cand[np.clip(np.searchsorted(cum, targets), 0, cand.size - 1)])
        if hi > lo:
            parts.append(np.linspace(lo, hi, GRID_WIDTH_CELLS + 1))
    bounds = np.unique(np.concatenate(parts))
    bounds = bounds[np.isfinite(bounds)]
    return np.unique(np.concatenate([values, bounds])), bounds


# --------------------------------------------------------------------------- parsed form
@dataclass
class NumericCells:
    """A numeric sketch as arrays (``cells`` sorted, unique; ``counts`` > 0)."""

    rows: int
    absent: int
    nulls: int
    non_finite: int
    cells: np.ndarray
    counts: np.ndarray
    tail_gaps: tuple[float, float]
    vmin: float | None
    vmax: float | None

    @property
    def finite(self) -> int:
        return self.rows - self.absent - self.nulls - self.non_finite


@dataclass
class CategoryCounts:
    """A categorical sketch as plain Python values."""

    rows: int
    absent: int
    nulls: int
    counts: dict[str, int]
    other: int
    other_labels: int


# --------------------------------------------------------------------------- building
def sketch_values(grid: SketchGrid, values: Any, *, absent: int = 0) -> dict[str, Any]:
    """Sketch one feature over a batch of rows: ``values`` has one entry per row that gave
    the feature (None/NaN/non-numeric = null), ``absent`` counts rows that did not."""
    absent = check_count(int(absent) if isinstance(absent, np.integer) else absent, "absent")
    if grid.kind == "numeric":
        return _numeric_dict(grid, _numeric_from_values(grid, values, absent))
    try:
        counts, total = _labels_of(values)
    except TypeError:  # unhashable values (a JSON list or object): label them by their text
        counts, total = category_counts([v if v is None else str(v) for v in values])
    known = {k: v for k, v in counts.items() if k in grid.categories}
    unseen = {k: v for k, v in counts.items() if k not in grid.categories}
    cats = _cap_unseen(known, unseen, other=0, other_labels=0)
    cats.rows, cats.absent, cats.nulls = total + absent, absent, total - sum(counts.values())
    _check_total(cats.rows)
    return _categorical_dict(grid, cats)


def sketch_rows(grids: Mapping[str, SketchGrid], rows: Sequence[Any]) -> dict[str, dict[str, Any]]:
    """Sketch every feature of ``grids`` over rows as logged (one mapping of feature -> value
    per row; a row that is not a mapping gives no feature)."""
    rows = [r if isinstance(r, Mapping) else {} for r in rows]
    out = {}
    for name, grid in grids.items():
        values = [r[name] for r in rows if name in r]
        out[name] = sketch_values(grid, values, absent=len(rows) - len(values))
    return out


def sketch_empty(grid: SketchGrid) -> dict[str, Any]:
    """The sketch of no rows: the identity of :func:`sketch_merge`."""
    return sketch_values(grid, [])


def _plain(values: Any, types: tuple[type, ...]) -> bool:
    return isinstance(values, list) and all(v is None or type(v) in types for v in values)


def _numbers_of(values: Any) -> np.ndarray:
    """:func:`numeric_array`, without pandas for a plain list of numbers and None (values as
    logged, and a one-row batch of the predict path, where pandas' fixed cost dominates)."""
    if _plain(values, (int, float)):
        try:
            return np.array([np.nan if v is None else v for v in values], dtype=np.float64)
        except OverflowError:  # an int beyond float64: pandas decides, as on the raw path
            pass
    return numeric_array(values)


def _labels_of(values: Any) -> tuple[dict[str, int], int]:
    """:func:`category_counts`, without pandas for a plain list of str / int / float / None."""
    if not _plain(values, (str, int, float)):
        return category_counts(values)
    out: dict[str, int] = {}
    for value, n in Counter(v for v in values if v is not None and v == v).items():
        key = category_label(value)
        out[key] = out.get(key, 0) + n
    return out, len(values)


def _numeric_from_values(grid: SketchGrid, values: Any, absent: int) -> NumericCells:
    arr = _numbers_of(values)
    finite = np.isfinite(arr)
    x = arr[finite]
    nulls = int(np.isnan(arr).sum())
    p, b = grid.points, grid.bounds
    i = np.searchsorted(p, x)
    hit = i < p.size
    hit[hit] = p[i[hit]] == x[hit]
    idx = np.where(hit, i, p.size + np.searchsorted(b, x, side="right"))
    cells, counts = np.unique(idx, return_counts=True)
    gaps = (0.0, 0.0)
    if b.size:
        below, above = x[x < b[0]], x[x > b[-1]]
        gaps = (float(np.minimum(b[0] - below, GAP_MAX).sum()), float(np.minimum(above - b[-1], GAP_MAX).sum()))
    rows = int(arr.size) + absent
    _check_total(rows)
    return NumericCells(
        rows, absent, nulls, int(arr.size - nulls - x.size), cells.astype(np.int64), counts.astype(np.int64),
        gaps, float(x.min()) if x.size else None, float(x.max()) if x.size else None,
    )


def _cap_unseen(known: dict[str, int], unseen: dict[str, int], *, other: int, other_labels: int) -> CategoryCounts:
    """Keep the reference's labels and the UNSEEN_LABELS_MAX most frequent others; pool the rest."""
    short = sorted(((k, v) for k, v in unseen.items() if keepable_label(k)), key=lambda kv: (-kv[1], kv[0]))
    kept = dict(short[:UNSEEN_LABELS_MAX])
    pooled = [v for k, v in unseen.items() if k not in kept]
    return CategoryCounts(0, 0, 0, {**known, **kept}, other + sum(pooled), other_labels + len(pooled))


def keepable_label(label: str) -> bool:
    """An unseen label may be named in a sketch: short, and no NUL (PostgreSQL's jsonb refuses it)."""
    return len(label) <= LABEL_CHARS_MAX and "\x00" not in label


# --------------------------------------------------------------------------- merging
def sketch_merge(grid: SketchGrid, sketches: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The sketch of all the rows of ``sketches`` (each validated against ``grid``)."""
    parsed = [sketch_parse(grid, s) for s in sketches]
    _check_total(sum(p.rows for p in parsed))
    if grid.kind == "numeric":
        return _numeric_dict(grid, merge_numeric(grid, parsed))
    known: dict[str, int] = {}
    unseen: dict[str, int] = {}
    for p in parsed:
        for k, v in p.counts.items():
            side = known if k in grid.categories else unseen
            side[k] = side.get(k, 0) + v
    cats = _cap_unseen(known, unseen, other=sum(p.other for p in parsed),
                       other_labels=sum(p.other_labels for p in parsed))
    cats.rows, cats.absent, cats.nulls = (sum(getattr(p, f) for p in parsed) for f in ("rows", "absent", "nulls"))
    return _categorical_dict(grid, cats)


def merge_numeric(grid: SketchGrid, parsed: Sequence[NumericCells]) -> NumericCells:
    """Sum of parsed numeric sketches (whose total rows were checked to fit COUNT_MAX)."""
    dense = np.zeros(grid.cells, dtype=np.int64)
    for p in parsed:
        dense[p.cells] += p.counts
    cells = np.flatnonzero(dense)
    mins = [p.vmin for p in parsed if p.vmin is not None]
    maxs = [p.vmax for p in parsed if p.vmax is not None]
    return NumericCells(
        *(sum(getattr(p, f) for p in parsed) for f in ("rows", "absent", "nulls", "non_finite")),
        cells.astype(np.int64), dense[cells],
        (float(sum(p.tail_gaps[0] for p in parsed)), float(sum(p.tail_gaps[1] for p in parsed))),
        min(mins) if mins else None, max(maxs) if maxs else None,
    )


# --------------------------------------------------------------------------- JSON form
def _numeric_dict(grid: SketchGrid, s: NumericCells) -> dict[str, Any]:
    index, counts = pack_cells(s.cells, s.counts)
    return {
        "kind": "numeric", "version": SKETCH_VERSION, "grid": grid.fingerprint,
        "rows": int(s.rows), "absent": int(s.absent), "nulls": int(s.nulls), "non_finite": int(s.non_finite),
        "index": index, "counts": counts, "tail_gaps": [s.tail_gaps[0], s.tail_gaps[1]],
        "min": s.vmin, "max": s.vmax,
    }


def _categorical_dict(grid: SketchGrid, s: CategoryCounts) -> dict[str, Any]:
    return {
        "kind": "categorical", "version": SKETCH_VERSION, "grid": grid.fingerprint,
        "rows": int(s.rows), "absent": int(s.absent), "nulls": int(s.nulls),
        "counts": dict(sorted(s.counts.items())), "other": int(s.other), "other_labels": int(s.other_labels),
    }


def sketch_validate(grid: SketchGrid, sketch: Any) -> None:
    """MLError (naming the field) unless ``sketch`` is a well-formed sketch on ``grid``."""
    sketch_parse(grid, sketch)


def sketch_parse(grid: SketchGrid, sketch: Any) -> NumericCells | CategoryCounts:
    """A stored sketch, checked field by field, as arrays; MLError on anything else."""
    if not isinstance(sketch, dict):
        raise MLError("A sketch must be a JSON object.", field="sketch")
    keys = NUMERIC_KEYS if grid.kind == "numeric" else CATEGORICAL_KEYS
    if set(sketch) != keys:
        extra, missing = sorted(set(sketch) - keys), sorted(keys - set(sketch))
        raise MLError(f"Sketch fields do not match: unknown {extra}, missing {missing}.", field="sketch")
    if sketch["kind"] != grid.kind or sketch["version"] != SKETCH_VERSION:
        raise MLError(f"Expected a version {SKETCH_VERSION} {grid.kind} sketch.", field="kind")
    if sketch["grid"] != grid.fingerprint:
        raise MLError("The sketch was made on another reference grid.", field="grid")
    rows, absent, nulls = (check_count(sketch[f], f) for f in ("rows", "absent", "nulls"))
    if grid.kind == "numeric":
        return _parse_numeric(grid, sketch, rows, absent, nulls)
    return _parse_categorical(grid, sketch, rows, absent, nulls)


def _parse_numeric(grid: SketchGrid, s: dict, rows: int, absent: int, nulls: int) -> NumericCells:
    non_finite = check_count(s["non_finite"], "non_finite")
    cells, counts = unpack_cells(s["index"], s["counts"], grid.cells)
    finite = rows - absent - nulls - non_finite
    # the float sum first: a hostile sketch's int64 sum could wrap around
    if finite < 0 or counts.sum(dtype=np.float64) > finite + 0.5 or int(counts.sum()) != finite:
        raise MLError("Sketch counts do not add up to its rows.", field="rows")
    gaps = _tail_gaps(grid, s["tail_gaps"], cells, counts)
    vmin, vmax = check_float(s["min"], "min"), check_float(s["max"], "max")
    if (vmin is None) != (finite == 0) or (vmax is None) != (finite == 0) or (vmin is not None and vmin > vmax):
        raise MLError("Sketch min/max do not match its finite values.", field="min")
    return NumericCells(rows, absent, nulls, non_finite, cells, counts, gaps, vmin, vmax)


def _tail_gaps(grid: SketchGrid, raw: Any, cells: np.ndarray, counts: np.ndarray) -> tuple[float, float]:
    if not isinstance(raw, list) or len(raw) != 2:
        raise MLError("Sketch tail_gaps must be a list of two numbers.", field="tail_gaps")
    p, b = grid.points.size, grid.bounds.size
    tails = (int(counts[cells == p].sum()), int(counts[cells == p + b].sum())) if b else (0, 0)
    gaps = tuple(check_float(g, "tail_gaps") for g in raw)
    for gap, n in zip(gaps, tails, strict=True):
        if gap is None or gap < 0 or gap > GAP_MAX * n or (n == 0 and gap != 0):
            raise MLError("Sketch tail_gaps do not match its tail counts.", field="tail_gaps")
    return gaps  # type: ignore[return-value]


def _parse_categorical(grid: SketchGrid, s: dict, rows: int, absent: int, nulls: int) -> CategoryCounts:
    counts = s["counts"]
    if not isinstance(counts, dict):
        raise MLError("Sketch counts must be an object of label -> count.", field="counts")
    if not all(isinstance(k, str) for k in counts):
        raise MLError("Sketch labels must be strings.", field="counts")
    unseen = [k for k in counts if k not in grid.categories]
    if len(unseen) > UNSEEN_LABELS_MAX or not all(keepable_label(k) for k in unseen):
        raise MLError("Sketch holds more, longer or NUL-bearing unseen labels than allowed.", field="counts")
    parsed = {k: check_count(v, "counts") for k, v in counts.items()}
    if any(v == 0 for v in parsed.values()):
        raise MLError("Sketch label counts must be positive.", field="counts")
    other, other_labels = check_count(s["other"], "other"), check_count(s["other_labels"], "other_labels")
    if other_labels > other or (other > 0) != (other_labels > 0):
        raise MLError("Sketch other_labels must be between 1 and other when other > 0.", field="other_labels")
    if sum(parsed.values()) + other != rows - absent - nulls:
        raise MLError("Sketch counts do not add up to its rows.", field="rows")
    return CategoryCounts(rows, absent, nulls, parsed, other, other_labels)


# --------------------------------------------------------------------------- field checks
def check_count(value: Any, field: str) -> int:
    """A stored count: a plain int in [0, COUNT_MAX] (no bool, float or numpy scalar)."""
    if type(value) is not int or not 0 <= value <= COUNT_MAX:
        raise MLError(f"Sketch {field} must be an integer between 0 and {COUNT_MAX}.", field=field)
    return value


def _check_total(rows: int) -> None:
    if rows > COUNT_MAX:
        raise MLError(f"A sketch cannot hold more than {COUNT_MAX} rows.", field="rows")


_WIDTHS = {"u1": 1, "u2": 2, "u4": 4, "u8": 8}


def pack_ints(values: np.ndarray) -> str:
    """Non-negative integers as ``"u<width>:" + base64`` of little-endian unsigned integers of
    the smallest width that holds them."""
    top = int(values.max()) if values.size else 0
    code = "u1" if top < 1 << 8 else "u2" if top < 1 << 16 else "u4" if top < 1 << 32 else "u8"
    return f"{code}:" + base64.b64encode(values.astype("<" + code).tobytes()).decode("ascii")


def unpack_ints(text: Any, field: str, max_items: int) -> np.ndarray:
    """The int64 array :func:`pack_ints` made; MLError for anything else, longer than
    ``max_items`` or holding a value above COUNT_MAX (checked before decoding)."""
    if not isinstance(text, str) or text[:2] not in _WIDTHS or text[2:3] != ":":
        raise MLError(f"Sketch {field} must be a packed integer array ('u1:' + base64, ...).", field=field)
    width = _WIDTHS[text[:2]]
    if len(text) - 3 > 4 * -(-max_items * width // 3):
        raise MLError(f"Sketch {field} holds more cells than its grid.", field=field)
    try:
        raw = binascii.a2b_base64(text[3:], strict_mode=True)
    except (binascii.Error, ValueError) as exc:
        raise MLError(f"Sketch {field} is not valid base64.", field=field) from exc
    if len(raw) % width:
        raise MLError(f"Sketch {field} is not a whole number of {width}-byte integers.", field=field)
    values = np.frombuffer(raw, dtype="<" + text[:2])
    if values.size and int(values.max()) > COUNT_MAX:
        raise MLError(f"Sketch {field} holds a value above {COUNT_MAX}.", field=field)
    return values.astype(np.int64)


def pack_cells(cells: np.ndarray, counts: np.ndarray) -> tuple[str, str]:
    """Sorted distinct cell numbers (stored as first number then steps) and their counts."""
    return pack_ints(np.diff(cells, prepend=0) if cells.size else cells), pack_ints(counts)


def unpack_cells(index: Any, counts: Any, n_cells: int) -> tuple[np.ndarray, np.ndarray]:
    """Cell numbers and counts from :func:`pack_cells`, checked against a grid of ``n_cells``."""
    steps, values = unpack_ints(index, "index", n_cells), unpack_ints(counts, "counts", n_cells)
    if steps.size != values.size:
        raise MLError("Sketch index and counts differ in length.", field="index")
    if steps.size and ((steps[1:] < 1).any() or steps.sum() >= n_cells):  # steps < n_cells each: no overflow
        raise MLError("Sketch cell index out of order or outside the grid.", field="index")
    if (values < 1).any():
        raise MLError("Sketch cell counts must be positive.", field="counts")
    return np.cumsum(steps), values


def check_float(value: Any, field: str) -> float | None:
    """A stored number: None, or a finite plain int / float."""
    if value is None:
        return None
    if type(value) not in (int, float) or not math.isfinite(value):
        raise MLError(f"Sketch {field} must be a finite number.", field=field)
    return float(value)
