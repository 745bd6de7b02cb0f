"""Plotly figures of maturity over time (see apps.core.charts)."""

from __future__ import annotations

import textwrap

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
    fig = figure(data, title="Models per maturity level", x_title="date of the daily snapshot", y_title="models",
                 caption="The green band growing over the months is the organisation automating: level 1 is a "
                         "pipeline with continuous training, level 2 adds CI/CD. A model keeps its last level "
                         "between snapshots.")
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
    fig = figure(data, title="Maturity level per model", x_title="date of the daily snapshot",
                 y_title="level (0 manual, 1 pipeline, 2 CI/CD)",
                 caption="Each step up is the day a model met every criterion of the next level, judged from "
                         "its records as they stood that day; a step down means a criterion stopped holding.")
    fig["layout"]["showlegend"] = True
    fig["layout"]["yaxis"].update({"range": [-0.2, 2.2], "dtick": 1})
    return fig


LABEL_LINE = 34  # characters per line of a criterion's label: whole titles that fit beside the bars at 1000 px


def _wrapped(text: str, width: int = LABEL_LINE) -> str:
    """The text whole, broken between words into lines of about ``width`` characters (plotly's <br>)."""
    return "<br>".join(textwrap.wrap(text, width)) or text


def criteria_completion(results, titles: list[tuple[str, int, str]]) -> dict | None:
    if not results:
        return None
    labels, values, hover = [], [], []
    for key, level, title in titles:
        met = sum(1 for r in results for c in r.criteria if c["key"] == key and c["met"])
        labels.append(_wrapped(f"L{level} · {title}"))
        values.append(round(met / len(results), 4))
        hover.append(f"Level {level}: {title}<br>{met} of {len(results)} models")
    fig = bars(labels, values, title="Criteria completion (share of models meeting each)", y_title="share of models",
               x_title="criterion (level · what it asks)", horizontal=True,
               caption="Short bars are what most models lack: each bar is the share of models meeting that "
                       "criterion today, level 1 criteria first. A model's page lists its own gaps with hints.")
    trace = fig["data"][0]
    trace.update({"hovertext": hover, "hoverinfo": "text"})
    lines = sum(label.count("<br>") + 1 for label in labels)
    fig["layout"]["xaxis"].update({"range": [0, 1], "tickformat": ".0%"})
    fig["layout"]["yaxis"].update({"tickfont": {"size": 11}})
    fig["layout"]["height"] = 90 + 15 * lines + 6 * len(labels)
    return fig
