"""Figures for the experiment and run pages, from stored metrics and chart data."""

from __future__ import annotations

from apps.core import charts
from apps.ml.metrics import METRICS


def metric_by_run(runs, metric: str) -> dict | None:
    done = [r for r in runs if (r.metrics or {}).get(metric) is not None]
    if not done:
        return None
    label = METRICS.get(metric, {}).get("label", metric)
    by_algorithm: dict[str, tuple[list, list, list]] = {}
    for r in sorted(done, key=lambda r: r.number):
        xs, ys, texts = by_algorithm.setdefault(r.algorithm, ([], [], []))
        xs.append(f"#{r.number}")
        ys.append(r.metrics[metric])
        texts.append(", ".join(f"{k}={v}" for k, v in (r.params or {}).items()))
    data = [
        {"type": "bar", "name": algorithm, "x": xs, "y": ys, "text": texts, "textposition": "none",
         "hovertemplate": "%{x}: %{y:.4f}<br>%{text}",
         "marker": {"color": charts.PALETTE[i % len(charts.PALETTE)]}}
        for i, (algorithm, (xs, ys, texts)) in enumerate(by_algorithm.items())
    ]
    fig = charts.figure(data, title=f"{label} on the holdout, by run", x_title="run", y_title=label,
                        caption="Higher is better unless the metric is an error; the best run is the one to register.")
    fig["layout"]["xaxis"]["type"] = "category"
    return fig


def param_vs_metric(runs, metric: str, param: str) -> dict | None:
    points = [(r.params.get(param), r.metrics.get(metric), r.number) for r in runs
              if r.params and param in r.params and (r.metrics or {}).get(metric) is not None]
    if not points:
        return None
    label = METRICS.get(metric, {}).get("label", metric)
    numeric = all(isinstance(p[0], int | float) and not isinstance(p[0], bool) for p in points)
    trace = {
        "type": "scatter", "mode": "markers", "x": [p[0] if numeric else str(p[0]) for p in points],
        "y": [p[1] for p in points], "text": [f"run #{p[2]}" for p in points],
        "marker": {"size": 11, "color": charts.PALETTE[0]},
    }
    return charts.figure([trace], title=f"{param} against {label}", x_title=param, y_title=label,
                         caption="How the score moved with this parameter across the experiment's runs.")


def confusion(chart: dict | None) -> dict | None:
    if not chart:
        return None
    labels, matrix = chart["labels"], chart["matrix"]
    fig = charts.heatmap(labels, labels, matrix, title="Confusion matrix (holdout)",
                         text=[[str(v) for v in row] for row in matrix],
                         caption="Counts of holdout rows: the diagonal is right, everything else a mistake.")
    fig["layout"]["xaxis"]["title"] = {"text": "predicted"}
    fig["layout"]["yaxis"]["title"] = {"text": "true"}
    return fig


def roc(chart: dict | None) -> dict | None:
    if not chart:
        return None
    curves = chart.get("curves") or ([chart] if "fpr" in chart else [])
    data = []
    for i, curve in enumerate(curves):
        name = curve.get("label") or "positive class"
        auc = curve.get("auc")
        data.append({"type": "scatter", "mode": "lines", "x": curve["fpr"], "y": curve["tpr"],
                     "name": f"{name} (AUC {auc:.3f})" if isinstance(auc, float) else name,
                     "line": {"color": charts.PALETTE[i % len(charts.PALETTE)]}})
    if not data:
        return None
    data.append({"type": "scatter", "mode": "lines", "x": [0, 1], "y": [0, 1], "name": "chance",
                 "line": {"dash": "dot", "color": "#999"}})
    return charts.figure(data, title="ROC curve (holdout)", x_title="false positive rate (0 to 1)",
                         y_title="true positive rate (0 to 1)",
                         caption="The closer the curve hugs the top-left corner, the better the model separates the classes.")


def residuals(chart: dict | None) -> dict | None:
    if not chart or not chart.get("residuals"):
        return None
    points = chart["residuals"]
    trace = {"type": "scatter", "mode": "markers", "x": points.get("y_pred", []),
             "y": [t - p for t, p in zip(points.get("y_true", []), points.get("y_pred", []), strict=False)],
             "marker": {"size": 5, "opacity": 0.6, "color": charts.PALETTE[0]}, "name": "residual"}
    return charts.figure([trace], title="Residuals on the holdout (true − predicted)", x_title="predicted (target's unit)",
                         y_title="residual (target's unit)",
                         caption="Points should scatter evenly around zero; a pattern is something the model misses.")


def importances(items: list[dict]) -> dict | None:
    if not items:
        return None
    top = items[:20]
    fig = charts.bars([i["feature"] for i in top], [i["importance_mean"] for i in top],
                      title="Permutation importance on the holdout", x_title="feature", y_title="score drop",
                      horizontal=True,
                      caption="How much the score drops when a feature is shuffled: the model leans on the top ones.")
    fig["data"][0]["error_x"] = {"type": "data", "array": [i.get("importance_std", 0) for i in top]}
    return fig


def folds(cv_scores: dict, metric: str) -> dict | None:
    values = (cv_scores or {}).get(metric)
    if not values:
        return None
    return charts.bars([f"fold {i + 1}" for i in range(len(values))], values,
                       title=f"Cross-validation {METRICS.get(metric, {}).get('label', metric)} per fold",
                       x_title="fold", y_title=METRICS.get(metric, {}).get("label", metric),
                       caption="Similar bars mean the score does not hang on one lucky split.")
