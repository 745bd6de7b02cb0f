"""Loading and feeding a model trained elsewhere (an MLflow sklearn-flavor skops file).

Such a model expects its client's raw types, not our catalog's prepared frame: it is fed a
DataFrame typed per its MLmodel signature, as ``mlflow.pyfunc`` feeds it (long → int64,
integer → int32, double → float64, float → float32, string → object, boolean → bool), and
its own ``predict``/``predict_proba`` are the answers. ``apps.ml.prepare`` is never applied.

Loading checks the types the file names against an allow-list the caller passes in (ours,
never the list the model declares about itself) before skops builds anything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import skops.io as sio

from apps.ml.errors import ArtifactError, MLError

# colspec type -> the dtype mlflow.pyfunc gives the column
COLSPEC_DTYPES = {
    "long": "int64",
    "integer": "int32",
    "double": "float64",
    "float": "float32",
    "string": "object",
    "boolean": "bool",
}
# a column of these types cannot hold a missing value
NO_MISSING_TYPES = frozenset({"long", "integer", "boolean"})


def load_skops_model(data: bytes, *, allowed: set[str]) -> Any:
    """The estimator in skops ``data``, once every type it names beyond skops' defaults is in ``allowed``."""
    try:
        needed = sorted(sio.get_untrusted_types(data=data))
    except Exception as exc:  # skops raises assorted errors on malformed archives
        raise ArtifactError(f"skops cannot read the model file: {str(exc)[:200]}") from None
    outside = [t for t in needed if t not in allowed]
    if outside:
        raise ArtifactError("the artifact needs types outside our allow-list: " + ", ".join(outside[:20]),
                            code="untrusted_type")
    try:
        model = sio.loads(data, trusted=needed)
    except Exception as exc:
        raise ArtifactError(f"skops cannot load the model file: {str(exc)[:200]}") from None
    if not callable(getattr(model, "predict", None)):
        raise ArtifactError(f"The model file holds a {type(model).__name__}, which cannot predict.")
    return model


def column_type(feature: Mapping[str, Any]) -> str:
    """The colspec type of one signature entry (``dtype`` holds it for external versions)."""
    return str(feature.get("dtype") or "")


def typed_frame(data: pd.DataFrame | Sequence[Mapping[str, Any]], signature: Sequence[Mapping[str, Any]]
                ) -> pd.DataFrame:
    """The signature's columns, in its order, each cast to its colspec's dtype.

    A column that cannot take its type (text in a long column, a missing value in a
    boolean one) is an ``MLError`` naming the column.
    """
    frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame(list(data))
    names = [f["name"] for f in signature]
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise MLError(f"the data lacks the signature's columns {', '.join(missing[:20])}", field="columns")
    columns = {}
    for feature in signature:
        name, kind = feature["name"], column_type(feature)
        columns[name] = _cast(frame[name], name, kind)
    return pd.DataFrame(columns, index=frame.index, columns=names)


def _cast(series: pd.Series, name: str, kind: str) -> pd.Series:
    dtype = COLSPEC_DTYPES.get(kind)
    if dtype is None:
        raise MLError(f"column {name!r} has the type {kind!r}, which we cannot serve", field=name)
    if kind in NO_MISSING_TYPES and series.isna().any():
        raise MLError(f"column {name!r} is {kind} in the signature but has missing values", field=name)
    if dtype == "object":
        # a text column read back as numbers (zip codes in a CSV) is the text the model learnt
        from apps.ml.prepare import label_text

        text = series.map(lambda v: v if isinstance(v, str) else label_text(v), na_action="ignore")
        return text.astype(object).where(series.notna(), None)
    if kind == "boolean":
        if series.dtype != bool and not series.map(lambda v: isinstance(v, bool | np.bool_)).all():
            raise MLError(f"column {name!r} is boolean in the signature but holds other values", field=name)
        return series.astype(bool)
    numbers = pd.to_numeric(series, errors="coerce")
    if (numbers.isna() & series.notna()).any():
        raise MLError(f"column {name!r} is {kind} in the signature but holds text", field=name)
    if kind in NO_MISSING_TYPES:
        values = numbers.to_numpy(dtype=float)
        if not np.all(np.isfinite(values)) or not np.all(values == np.round(values)):
            raise MLError(f"column {name!r} is {kind} in the signature but holds fractions", field=name)
    return numbers.astype(dtype)


def labels_text(values: Any) -> list[str]:
    """Class labels as our records keep them (3.0 → "3", True → "True")."""
    from apps.ml.prepare import label_text

    return [label_text(v) for v in np.asarray(values).tolist()]


class TextLabels:
    """A fitted classifier seen with text labels, so it is scored like our pipelines (whose labels are text)."""

    def __init__(self, model: Any):
        self.model = model
        self.classes_ = np.array(labels_text(model.classes_), dtype=object)

    def predict(self, X):
        return np.array(labels_text(self.model.predict(X)), dtype=object)

    @property
    def predict_proba(self):
        return self.model.predict_proba  # an AttributeError when the model has none, as hasattr expects
