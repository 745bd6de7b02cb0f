"""Figures for the monitoring pages, from stored drift reports (never from raw logs)."""

from __future__ import annotations

from apps.core import charts
from apps.ml.metrics import METRICS


def _events(alerts, retrainings) -> tuple[list[dict], list[dict]]:
    """A dotted line per alert, resolution and retraining, and one label per day above the plot.

    Events of the same day share one label, a line each ("alert #1" over "retraining #1"), so
    labels never print over each other.
    """
    shapes, by_day = [], {}

    def mark(when, color, text, dash="dot"):
        x = when.isoformat()
        shapes.append({"type": "line", "xref": "x", "yref": "paper", "x0": x, "x1": x, "y0": 0, "y1": 1,
                       "line": {"color": color, "width": 1.5, "dash": dash}})
        by_day.setdefault(when.date(), []).append((x, color, text))

    for alert in alerts:
        mark(alert.opened_at, "#c53030", f"alert #{alert.pk}")
        if alert.resolved_at:
            mark(alert.resolved_at, "#1f8a4c", "resolved")
    for retraining in retrainings:
        mark(retraining.created_at if retraining.alert is None else retraining.alert.opened_at, "#2b6cb0",
             f"retraining #{retraining.pk}", dash="dash")
    notes = []
    for day, events in sorted(by_day.items()):
        text = "<br>".join(f'<span style="color:{color}">{label}</span>' for _, color, label in events)
        notes.append({"x": min(x for x, _, _ in events), "y": 1.0, "xref": "x", "yref": "paper", "yanchor": "bottom",
                      "text": text, "showarrow": False, "font": {"size": 10},
                      "hovertext": f"{day:%Y-%m-%d}: " + ", ".join(label for _, _, label in events)})
    return shapes, notes


def _with_events(fig: dict, alerts, retrainings) -> dict:
    shapes, notes = _events(alerts, retrainings)
    lines = max((n["text"].count("<br>") + 1 for n in notes), default=0)
    fig["layout"].update(shapes=shapes, annotations=notes, showlegend=True,
                         # room above the plot for the tallest stack of labels, the title above them
                         margin={"t": 44 + 13 * lines},
                         title=dict(fig["layout"]["title"], y=1, yref="container", yanchor="top", pad={"t": 8}))
    return fig


def drift_share(reports, threshold: float, alerts, retrainings) -> dict | None:
    judged = [r for r in reports if r.drift_share is not None]
    if not judged:
        return None
    x = [r.window_end.isoformat() for r in judged]
    fig = charts.lines(x, {"share of drifted features": [r.drift_share for r in judged]},
                       title="Dataset drift share per check", x_title="end of the checked window (UTC)",
                       y_title="share of features drifted",
                       caption="A point above the red dashed threshold is a drifting window: that many of the "
                               "model's features no longer look like its training data. Dotted lines mark alerts, "
                               "dashed ones retrainings.")
    fig["data"].append({"type": "scatter", "mode": "lines", "x": [x[0], x[-1]], "y": [threshold, threshold],
                        "name": f"threshold {threshold:.0%}", "line": {"dash": "dash", "color": "#c53030"}})
    _with_events(fig, alerts, retrainings)
    fig["layout"]["yaxis"]["range"] = [0, 1.05]
    return fig


def feature_heatmap(reports) -> dict | None:
    """Time by feature; a cell is 1 when the feature drifted in that window. Clicking opens its distributions."""
    reports = [r for r in reports if r.features]
    if not reports:
        return None
    names = sorted({f["name"] for r in reports for f in r.features})
    x = [r.window_end.strftime("%Y-%m-%d %H:%M") for r in reports]
    z, text, ids = [], [], []
    for name in names:
        row, row_text, row_ids = [], [], []
        for r in reports:
            f = next((f for f in r.features if f["name"] == name), None)
            value = None if f is None or f.get("drifted") is None else (1 if f["drifted"] else 0)
            row.append(value)
            stat = f.get("statistic") if f else None
            row_text.append(f"{f['method']} {stat:.3g}" if f and isinstance(stat, float) else (f or {}).get("status", ""))
            row_ids.append(r.pk)
        z.append(row)
        text.append(row_text)
        ids.append(row_ids)
    fig = charts.heatmap(x, names, z, title="Per-feature drift (red: drifted; click a cell for its distributions)",
                         colorscale=[[0, "#c6ebd1"], [1, "#e05252"]], zmin=0, zmax=1,
                         x_title="end of the checked window (UTC)", y_title="feature",
                         caption="A red row is a feature that keeps drifting: the first thing to look at before "
                                 "retraining. Click a cell to compare that window with the training data.")
    trace = fig["data"][0]
    trace.update({"customdata": ids, "text": text, "hovertemplate": "%{y} @ %{x}<br>%{text}<extra></extra>",
                  "showscale": False, "xgap": 1, "ygap": 1})
    fig["clickUrl"] = "/monitoring/reports/__customdata__/feature/__y__/"
    fig["clickTarget"] = "#cell-detail"
    return fig


def performance(reports, metric: str, holdout: float | None, alerts, retrainings) -> dict | None:
    points = [(r.window_end.isoformat(), (r.performance.get("metrics") or {}).get(metric)) for r in reports]
    points = [p for p in points if p[1] is not None]
    if not points:
        return None
    label = METRICS.get(metric, {}).get("label", metric)
    fig = charts.lines([p[0] for p in points], {f"{label} on labelled production rows": [p[1] for p in points]},
                       title=f"Performance against ground truth ({label})", x_title="end of the checked window (UTC)",
                       y_title=f"{label} ({'higher' if METRICS.get(metric, {}).get('higher_is_better', True) else 'lower'}"
                               " is better)",
                       caption="Measured on production rows whose true outcome has come back as feedback. A line "
                               "falling away from the holdout score is a model that has started to decay.")
    if holdout is not None:
        fig["data"].append({"type": "scatter", "mode": "lines", "x": [points[0][0], points[-1][0]],
                            "y": [holdout, holdout], "name": "holdout at training", "line": {"dash": "dot"}})
    return _with_events(fig, alerts, retrainings)


def prediction_mix(reports) -> dict | None:
    with_hist = [r for r in reports if (r.prediction_drift or {}).get("current_hist")]
    if not with_hist:
        return None
    first = with_hist[0].prediction_drift["current_hist"]
    x = [r.window_end.isoformat() for r in with_hist]
    if "categories" in first:
        categories = sorted({c for r in with_hist for c in r.prediction_drift["current_hist"]["categories"]})
        series = {}
        for c in categories:
            values = []
            for r in with_hist:
                hist = r.prediction_drift["current_hist"]
                shares = dict(zip(hist["categories"], hist["shares"], strict=False))
                values.append(shares.get(c))
            series[c] = values
        fig = charts.lines(x, series, title="Prediction distribution per window", x_title="end of the checked window (UTC)",
                           y_title="share of predictions", mode="lines",
                           caption="Bands changing width mean the model answers one class more often than it did: "
                                   "either the world changed or the inputs did.")
        for trace in fig["data"]:
            trace["stackgroup"] = "one"
        return fig
    means = []
    for r in with_hist:
        hist = r.prediction_drift["current_hist"]
        edges, shares = hist["edges"], hist["shares"]
        centers = [(edges[i] + edges[i + 1]) / 2 for i in range(len(shares))]
        means.append(sum(c * s for c, s in zip(centers, shares, strict=False)))
    return charts.lines(x, {"mean prediction": means}, title="Prediction distribution per window (mean)",
                        x_title="end of the checked window (UTC)", y_title="mean prediction (target's unit)",
                        caption="A mean that moves away from its usual level means the model's answers have shifted.")


def overlay(feature: dict) -> dict | None:
    ref, cur = feature.get("reference_hist"), feature.get("current_hist")
    if not ref:
        return None
    if "edges" in ref:
        edges = ref["edges"]
        labels = [f"{edges[i]:.3g}–{edges[i + 1]:.3g}" for i in range(len(edges) - 1)]
    else:
        labels = [str(c) for c in ref["categories"]]
    series = {"reference (training data)": ref["shares"]}
    if cur:
        series["current window"] = cur["shares"]
    return charts.grouped_bars(labels, series, title=f"{feature['name']}: reference against the window",
                               x_title="value range" if "edges" in ref else "category", y_title="share of rows",
                               caption="Bars of different heights show where the window's values moved away from "
                                       "the training data.")
