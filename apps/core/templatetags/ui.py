"""Small presentation helpers shared by every template (registered as builtins)."""

import json

from django import template
from django.utils.html import format_html
from django.utils.safestring import mark_safe

register = template.Library()

STATUS_TONES = {
    "queued": "muted",
    "running": "info",
    "succeeded": "ok",
    "pass": "ok",
    "ok": "ok",
    "failed": "bad",
    "fail": "bad",
    "drifting": "bad",
    "cancelled": "muted",
    "warn": "warn",
    "warning": "warn",
    "pending": "warn",
    "approved": "ok",
    "rejected": "bad",
    "production": "ok",
    "staging": "info",
    "archived": "muted",
    "none": "muted",
}


@register.simple_tag
def badge(value, label=None):
    text = label if label is not None else str(value)
    tone = STATUS_TONES.get(str(value).lower(), "muted")
    return format_html('<span class="badge badge-{}">{}</span>', tone, text)


@register.filter
def as_json(value):
    """JSON for embedding in <script type="application/json"> (escapes </script>)."""
    text = json.dumps(value, default=str).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return mark_safe(text)  # noqa: S308 - escaped above for a JSON script block


@register.filter
def pct(value, digits=0):
    if value is None:
        return "–"
    return f"{float(value) * 100:.{int(digits)}f}%"


@register.filter
def num(value, digits=4):
    if value is None:
        return "–"
    if isinstance(value, int):
        return f"{value:,}"
    try:
        return f"{float(value):.{int(digits)}g}"
    except (TypeError, ValueError):
        return value


@register.filter
def get_item(mapping, key):
    if mapping is None:
        return None
    return mapping.get(key)


@register.simple_tag
def chart(element_id, figure, height=320):
    """A plotly chart: the figure as a JSON script block, the element that draws it, and its caption.

    A figure's ``caption`` (see apps.core.charts.figure) is the sentence under the chart that says
    what to look for; it is page text, not part of the plot, so it wraps and reads at any width.
    """
    if not figure:
        return mark_safe('<p class="muted">No data to chart yet.</p>')
    caption = figure.get("caption", "")
    return format_html(
        '<script type="application/json" id="{}-data">{}</script>'
        '<div class="chart" id="{}" data-chart="{}-data" style="min-height:{}px"></div>{}',
        element_id, as_json(figure), element_id, element_id, height,
        format_html('<p class="chart-caption">{}</p>', caption) if caption else "",
    )


HASH_SHOWN = 12


@register.simple_tag(name="hash")
def short_hash(value, shown=HASH_SHOWN):
    """A long digest or commit, cut to its first characters: the whole value on hover and a copy button."""
    if not value:
        return "–"
    value = str(value)
    if len(value) <= int(shown) + 1:
        return format_html("<code>{}</code>", value)
    return format_html(
        '<span class="hash"><code title="{}">{}…</code>'
        '<button type="button" class="copy" data-copy="{}" title="Copy the whole value" aria-label="Copy {}">copy</button></span>',
        value, value[: int(shown)], value, value,
    )
