"""Figures for the dataset pages, built from stored profiles (never from the file)."""

from __future__ import annotations

from apps.core import charts

MAX_COLUMN_CHARTS = 60


def column_figure(name: str, column: dict) -> dict | None:
    role = column.get("role")
    if role == "numeric":
        hist = column.get("histogram") or {}
        if not hist.get("counts"):
            return None
        return charts.histogram_from_bins(hist["edges"], hist["counts"], title=f"{name} (numeric)", x_title=name,
                                          caption="How the column's values spread over its range.")
    top = column.get("top") or []
    if not top:
        return None
    labels = [str(t["value"]) for t in top]
    values = [t["count"] for t in top]
    if column.get("other_count"):
        labels.append("(other)")
        values.append(column["other_count"])
    return charts.bars(labels, values, title=f"{name} ({role})", x_title="value", y_title="rows",
                       color=charts.PALETTE[1], caption="The most frequent values of the column.")


def missing_figure(profile: dict) -> dict | None:
    columns = profile.get("columns") or {}
    if not columns:
        return None
    names = list(columns)
    shares = [round(100 * (columns[n].get("missing_share") or 0), 3) for n in names]
    fig = charts.bars(names, shares, title="Missing values per column (%)", x_title="column", y_title="% missing",
                      color=charts.PALETTE[3],
                      caption="Tall bars are columns often left empty; training fills them in, predictions must too.")
    fig["layout"]["yaxis"]["range"] = [0, max(5, max(shares) * 1.1)]
    return fig


def overlay_figure(name: str, drift: dict) -> dict | None:
    """Reference (A) and current (B) distributions of one column on shared bins."""
    ref_hist, cur_hist = drift.get("reference_hist"), drift.get("current_hist")
    if not ref_hist or not cur_hist:
        return None
    if "edges" in ref_hist:
        edges = ref_hist["edges"]
        labels = [f"{edges[i]:.4g}–{edges[i + 1]:.4g}" for i in range(len(edges) - 1)]
        a, b = ref_hist.get("shares", []), cur_hist.get("shares", [])
    else:
        labels = [str(c) for c in ref_hist.get("categories", [])]
        a, b = ref_hist.get("shares", []), cur_hist.get("shares", [])
    fig = charts.grouped_bars(labels, {"version A": a, "version B": b}, title=name, x_title="value", y_title="share of rows",
                              caption="Where the two versions' bars differ, the data changed between them.")
    return fig
