"""Reads of the dataset pages that grew past a line or two."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from apps.ml.drift import compare_references
from apps.ml.validate import schema_diff

from .models import Dataset, DatasetVersion

SORTS = {
    "name": "name",
    "-name": "-name",
    "updated": "updated_at",
    "-updated": "-updated_at",
    "rows": "latest_version__rows",
    "-rows": "-latest_version__rows",
    "versions": "version_count",
    "-versions": "-version_count",
}


def dataset_list(*, query: str = "", sort: str = "-updated") -> QuerySet[Dataset]:
    datasets = Dataset.objects.select_related("owner", "latest_version").annotate(version_count=Count("versions"))
    datasets = datasets.defer(
        "latest_version__schema", "latest_version__profile", "latest_version__reference",
        "latest_version__validation",
    )
    query = (query or "").strip()
    if query:
        datasets = datasets.filter(
            Q(name__icontains=query) | Q(description__icontains=query) | Q(tags__icontains=query.lower())
        )
    return datasets.order_by(SORTS.get(sort, "-updated_at"), "name")


def versions_light(dataset: Dataset) -> QuerySet[DatasetVersion]:
    return dataset.versions.select_related("created_by", "overridden_by").defer("profile", "reference")


def version_comparison(a: DatasetVersion, b: DatasetVersion) -> dict:
    """Schema diff and, per shared column with a reference summary, drift of B against A."""
    diff = schema_diff(a.schema, b.schema)
    features = []
    names_b = set(b.column_names)
    for column in a.schema:
        name = column["name"]
        if name not in names_b:
            continue
        ref_a, ref_b = a.reference.get(name), b.reference.get(name)
        if not ref_a or not ref_b:
            features.append({"name": name, "status": "not_compared", "note": "no reference summary for this role"})
            continue
        try:
            result = compare_references(name, ref_a, ref_b).to_dict()
        except Exception as exc:  # a column whose kind changed between versions
            features.append({"name": name, "status": "not_compared", "note": str(exc)})
            continue
        features.append(result)
    return {"diff": diff, "features": features}
