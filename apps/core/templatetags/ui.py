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
    """A plotly chart: the figure as a JSON script block and the element that draws it."""
    if not figure:
        return mark_safe('<p class="muted">No data to chart yet.</p>')
    return format_html(
        '<script type="application/json" id="{}-data">{}</script>'
        '<div class="chart" id="{}" data-chart="{}-data" style="min-height:{}px"></div>',
        element_id, as_json(figure), element_id, element_id, height,
    )
