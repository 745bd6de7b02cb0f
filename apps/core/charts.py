"""Plotly figure specs as plain dicts, rendered in the browser by static/js/charts.js.

Templates embed a figure with ``{% chart "id" figure %}`` (see templatetags/ui.py).
"""

from __future__ import annotations

from collections.abc import Sequence

PALETTE = ["#2f5bea", "#e8833a", "#1f8a4c", "#c53030", "#805ad5", "#2b6cb0", "#b7791f", "#319795"]


def figure(data: list[dict], *, title: str = "", x_title: str = "", y_title: str = "", caption: str = "",
           **layout) -> dict:
    """A figure spec; ``caption`` is the sentence shown under the chart saying what to look for."""
    base = {
        "title": {"text": title, "font": {"size": 14}},
        "xaxis": {"title": {"text": x_title}, "automargin": True},
        "yaxis": {"title": {"text": y_title}, "automargin": True},
        "showlegend": len(data) > 1,
        # at the foot of the chart, under the x axis and its title whatever the chart's height
        "legend": {"orientation": "h", "yref": "container", "y": 0, "yanchor": "bottom", "x": 0},
    }
    base.update(layout)
    spec = {"data": data, "layout": base}
    if caption:
        spec["caption"] = caption
    return spec


def histogram_from_bins(edges: Sequence[float], counts: Sequence[int], *, title: str = "", name: str = "",
                        x_title: str = "", caption: str = "") -> dict:
    centers = [(edges[i] + edges[i + 1]) / 2 for i in range(len(edges) - 1)]
    widths = [edges[i + 1] - edges[i] for i in range(len(edges) - 1)]
    bar = {"type": "bar", "x": centers, "y": list(counts), "width": widths, "name": name or "count",
           "marker": {"color": PALETTE[0]}}
    return figure([bar], title=title, x_title=x_title, y_title="rows", caption=caption, bargap=0.02)


def bars(labels: Sequence, values: Sequence, *, title: str = "", x_title: str = "", y_title: str = "",
         color: str | None = None, horizontal: bool = False, caption: str = "") -> dict:
    trace = {"type": "bar", "marker": {"color": color or PALETTE[0]}}
    if horizontal:
        trace.update({"x": list(values), "y": [str(v) for v in labels], "orientation": "h"})
        return figure([trace], title=title, x_title=y_title, y_title=x_title, caption=caption,
                      yaxis={"title": {"text": x_title}, "automargin": True, "autorange": "reversed"})
    trace.update({"x": [str(v) for v in labels], "y": list(values)})
    return figure([trace], title=title, x_title=x_title, y_title=y_title, caption=caption)


def grouped_bars(labels: Sequence, series: dict[str, Sequence], *, title: str = "", x_title: str = "",
                 y_title: str = "", caption: str = "") -> dict:
    data = [
        {"type": "bar", "name": name, "x": [str(v) for v in labels], "y": list(values),
         "marker": {"color": PALETTE[i % len(PALETTE)]}, "opacity": 0.85}
        for i, (name, values) in enumerate(series.items())
    ]
    return figure(data, title=title, x_title=x_title, y_title=y_title, caption=caption, barmode="group")


def lines(x: Sequence, series: dict[str, Sequence], *, title: str = "", x_title: str = "", y_title: str = "",
          mode: str = "lines+markers", shape: str = "linear", caption: str = "") -> dict:
    data = [
        {"type": "scatter", "mode": mode, "name": name, "x": list(x), "y": list(values),
         "line": {"color": PALETTE[i % len(PALETTE)], "shape": shape}}
        for i, (name, values) in enumerate(series.items())
    ]
    return figure(data, title=title, x_title=x_title, y_title=y_title, caption=caption)


def heatmap(x: Sequence, y: Sequence, z: Sequence[Sequence], *, title: str = "", colorscale="Blues",
            text: Sequence[Sequence] | None = None, zmin=None, zmax=None, x_title: str = "", y_title: str = "",
            caption: str = "") -> dict:
    trace = {"type": "heatmap", "x": [str(v) for v in x], "y": [str(v) for v in y], "z": z,
             "colorscale": colorscale, "hoverongaps": False, "reversescale": colorscale == "Blues"}
    if text is not None:
        trace.update({"text": text, "texttemplate": "%{text}"})
    if zmin is not None:
        trace["zmin"] = zmin
    if zmax is not None:
        trace["zmax"] = zmax
    return figure([trace], title=title, x_title=x_title, caption=caption,
                  yaxis={"title": {"text": y_title}, "automargin": True, "autorange": "reversed"})
