"""Objects the role matrix's URLs point at, built for each app that has them."""

from __future__ import annotations


def build(users: dict) -> dict:
    from apps.datasets.models import Dataset
    from tests.factories import make_version, mixed_frame

    engineer = users["ml_engineer"]
    dataset = Dataset.objects.create(name="matrix-data", owner=engineer)
    version = make_version(dataset, mixed_frame(60), engineer)
    return {"dataset": dataset, "version": version}
