"""Plotly figures of maturity over time (see apps.core.charts)."""

from __future__ import annotations

from apps.core.charts import PALETTE, bars, figure

LEVEL_COLORS = {0: "#a0aec0", 1: "#2f5bea", 2: "#1f8a4c"}
LEVEL_NAMES = {0: "Level 0 · manual", 1: "Level 1 · pipeline automation", 2: "Level 2 · CI/CD automation"}


def _batches(snapshots) -> list[tuple]:
    """Snapshots grouped by the moment they were taken: [(taken_at, {model_id: level})]."""
    batches: dict = {}
    for s in snapshots:
        batches.setdefault(s.taken_at, {})[s.model_id] = s.level
    return sorted(batches.items())


def levels_over_time(snapshots) -> dict | None:
    """Count of models per level, as stacked areas (a model keeps its last known level between snapshots)."""
    batches = _batches(snapshots)
    if not batches:
        return None
    known: dict[int, int] = {}
    x, counts = [], {lvl: [] for lvl in LEVEL_NAMES}
    for taken_at, levels in batches:
        known.update(levels)
        x.append(taken_at.isoformat())
        for lvl in LEVEL_NAMES:
            counts[lvl].append(sum(1 for v in known.values() if v == lvl))
    data = [{"type": "scatter", "mode": "lines", "stackgroup": "levels", "name": LEVEL_NAMES[lvl], "x": x,
             "y": counts[lvl], "line": {"color": LEVEL_COLORS[lvl], "shape": "hv"}} for lvl in LEVEL_NAMES]
    fig = figure(data, title="Models per maturity level", y_title="models")
    fig["layout"]["showlegend"] = True
    fig["layout"]["yaxis"]["dtick"] = 1
    return fig


def level_steps(snapshots, names: dict[int, str]) -> dict | None:
    """Each model's level over time as a step line."""
    series: dict[int, tuple[list, list]] = {}
    for s in snapshots:
        xs, ys = series.setdefault(s.model_id, ([], []))
        xs.append(s.taken_at.isoformat())
        ys.append(s.level)
    if not series:
        return None
    data = [{"type": "scatter", "mode": "lines+markers", "name": names.get(model_id, str(model_id)), "x": xs, "y": ys,
             "line": {"shape": "hv", "color": PALETTE[i % len(PALETTE)]}, "marker": {"size": 5}}
            for i, (model_id, (xs, ys)) in enumerate(sorted(series.items(), key=lambda kv: names.get(kv[0], "")))]
    fig = figure(data, title="Maturity level per model", y_title="level")
    fig["layout"]["showlegend"] = True
    fig["layout"]["yaxis"].update({"range": [-0.2, 2.2], "dtick": 1})
    return fig


def criteria_completion(results, titles: list[tuple[str, int, str]]) -> dict | None:
    if not results:
        return None
    labels, values = [], []
    for key, level, title in titles:
        met = sum(1 for r in results for c in r.criteria if c["key"] == key and c["met"])
        labels.append(f"L{level} · {title[:60]}")
        values.append(round(met / len(results), 4))
    fig = bars(labels, values, title="Criteria completion (share of models meeting each)", y_title="share of models",
               horizontal=True)
    fig["layout"]["xaxis"].update({"range": [0, 1], "tickformat": ".0%"})
    fig["layout"]["margin"] = {"l": 20}
    return fig
