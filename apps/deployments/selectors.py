"""Traffic figures of deployments, computed in the database where it can."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import timedelta

import numpy as np
from django.db import connection
from django.db.models import Count
from django.utils import timezone

from .models import Deployment, PredictionError, PredictionLog

CHART_ROWS = 20_000


def _percentiles(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    arr = np.asarray(values, dtype=float)
    return float(np.percentile(arr, 50)), float(np.percentile(arr, 95))


def traffic_24h(deployment_ids: list[int]) -> dict[int, dict]:
    """Per deployment: requests, instances, errors, error rate, latency p50/p95 over 24 hours.

    A constant number of queries whatever the number of deployments.
    """
    since = timezone.now() - timedelta(hours=24)
    stats = {i: {"requests": 0, "instances": 0, "errors": 0, "error_rate": None, "p50": None, "p95": None}
             for i in deployment_ids}
    if not deployment_ids:
        return stats
    logs = PredictionLog.objects.filter(deployment_id__in=deployment_ids, created_at__gte=since)
    for row in logs.values("deployment_id").annotate(n=Count("id")):
        stats[row["deployment_id"]]["instances"] = row["n"]
    for row in logs.filter(instance_index=0).values("deployment_id").annotate(n=Count("id")):
        stats[row["deployment_id"]]["requests"] = row["n"]
    errors = PredictionError.objects.filter(deployment_id__in=deployment_ids, created_at__gte=since)
    for row in errors.values("deployment_id").annotate(n=Count("id")):
        stats[row["deployment_id"]]["errors"] = row["n"]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT deployment_id, percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms),"
                " percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms)"
                " FROM deployments_predictionlog WHERE deployment_id = ANY(%s) AND created_at >= %s"
                " AND instance_index = 0 GROUP BY deployment_id",
                [deployment_ids, since],
            )
            for deployment_id, p50, p95 in cursor.fetchall():
                stats[deployment_id]["p50"], stats[deployment_id]["p95"] = p50, p95
    else:
        latencies = defaultdict(list)
        for deployment_id, latency in logs.filter(instance_index=0).values_list("deployment_id", "latency_ms"):
            latencies[deployment_id].append(latency)
        for deployment_id, values in latencies.items():
            stats[deployment_id]["p50"], stats[deployment_id]["p95"] = _percentiles(values)
    for s in stats.values():
        total = s["requests"] + s["errors"]
        s["error_rate"] = s["errors"] / total if total else None
    return stats


def timeseries(deployment: Deployment) -> dict:
    """Hourly requests, latency p50/p95 and prediction mix from the latest predictions."""
    rows = list(
        PredictionLog.objects.filter(deployment_id=deployment.pk)
        .order_by("-id").values_list("created_at", "latency_ms", "prediction", "instance_index")[:CHART_ROWS]
    )
    rows.reverse()
    daily = bool(rows) and (rows[-1][0] - rows[0][0]) > timedelta(days=3)
    hours: dict = {}
    numeric_predictions: list[float] = []
    for created_at, latency, prediction, index in rows:
        hour = created_at.replace(minute=0, second=0, microsecond=0)
        if daily:
            hour = hour.replace(hour=0)
        bucket = hours.setdefault(hour, {"requests": 0, "latencies": [], "classes": Counter(), "values": []})
        if index == 0:
            bucket["requests"] += 1
            bucket["latencies"].append(latency)
        if isinstance(prediction, (int, float)) and not isinstance(prediction, bool):
            bucket["values"].append(float(prediction))
            numeric_predictions.append(float(prediction))
        else:
            bucket["classes"][str(prediction)] += 1
    order = sorted(hours)
    classes = sorted({c for h in hours.values() for c in h["classes"]})
    series = {
        "hours": [h.isoformat() for h in order],
        "requests": [hours[h]["requests"] for h in order],
        "p50": [], "p95": [],
        "classes": classes,
        "class_share": {c: [] for c in classes},
        "mean_prediction": [],
        "sampled_rows": len(rows),
        "bucket": "day" if daily else "hour",
        "numeric_predictions": numeric_predictions[-5000:],
    }
    for h in order:
        p50, p95 = _percentiles(hours[h]["latencies"])
        series["p50"].append(p50)
        series["p95"].append(p95)
        total = sum(hours[h]["classes"].values())
        for c in classes:
            series["class_share"][c].append(hours[h]["classes"][c] / total if total else None)
        values = hours[h]["values"]
        series["mean_prediction"].append(float(np.mean(values)) if values else None)
    return series
