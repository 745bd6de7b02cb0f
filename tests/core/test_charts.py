"""What every chart carries for its reader: a sentence under it, axis titles, labels that never collide."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

from django.template import Context, Template

from apps.core import charts
from apps.maturity.charts import criteria_completion
from apps.monitoring.charts import drift_share

DAY = dt.datetime(2026, 6, 1, 9, tzinfo=dt.UTC)


def _render(text: str, **context) -> str:
    return Template(text).render(Context(context))


def test_a_chart_shows_its_caption_under_it_as_page_text():
    figure = charts.lines([1, 2], {"a": [1, 2]}, title="t", x_title="x (s)", y_title="y (ms)",
                          caption="Look for <the> rise.")
    html = _render('{% chart "c" figure %}', figure=figure)
    assert '<p class="chart-caption">Look for &lt;the&gt; rise.</p>' in html  # escaped, after the chart
    assert figure["layout"]["xaxis"]["title"]["text"] == "x (s)"


def test_a_long_hash_is_cut_with_the_whole_value_on_hover_and_a_copy_button():
    digest = "ab" * 32
    html = _render("{% hash value %}", value=digest)
    assert f'<code title="{digest}">{digest[:12]}…</code>' in html and f'data-copy="{digest}"' in html
    assert _render("{% hash value %}", value="abc123") == "<code>abc123</code>"  # short: shown whole
    assert _render("{% hash value %}", value="") == "–"
    assert "&lt;script&gt;" in _render("{% hash value %}", value="<script>" * 4)


def test_every_criterion_label_is_whole_on_the_completion_chart():
    title = "The production version came from a CI pipeline change, trained and gated automatically"
    result = SimpleNamespace(criteria=[{"key": "ci", "met": True}])
    figure = criteria_completion([result, SimpleNamespace(criteria=[])], [("ci", 2, title)])
    label = figure["data"][0]["y"][0]
    assert label.replace("<br>", " ") == f"L2 · {title}" and "<br>" in label
    assert figure["data"][0]["hovertext"] == [f"Level 2: {title}<br>1 of 2 models"]
    assert figure["layout"]["height"] > 100 and figure["caption"]


def _report(day):
    return SimpleNamespace(drift_share=0.5, window_end=day)


def test_an_alert_and_a_retraining_on_one_day_share_one_stacked_label():
    alert = SimpleNamespace(pk=1, opened_at=DAY, resolved_at=None)
    retraining = SimpleNamespace(pk=1, alert=alert, created_at=DAY + dt.timedelta(hours=1))
    later = SimpleNamespace(pk=2, opened_at=DAY + dt.timedelta(days=3), resolved_at=None)
    figure = drift_share([_report(DAY), _report(DAY + dt.timedelta(days=4))], 0.3, [alert, later], [retraining])
    notes = figure["layout"]["annotations"]
    assert len(notes) == 2 and len(figure["layout"]["shapes"]) == 3  # a line per event, a label per day
    assert notes[0]["text"].count("<br>") == 1 and "alert #1" in notes[0]["text"] and "retraining #1" in notes[0]["text"]
    assert notes[0]["yanchor"] == "bottom" and figure["layout"]["margin"]["t"] > 44  # room for the stack
