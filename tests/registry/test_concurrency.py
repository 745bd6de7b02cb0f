"""Two analysts approve two versions of one model to production at the same moment."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.test import Client

from apps.datasets.models import Dataset
from apps.registry.models import ModelVersion, RegisteredModel
from apps.registry.services import model_version_register, promotion_request
from tests.factories import evaluated, make_experiment, make_version, mixed_frame, trained_run


@pytest.mark.parametrize("attempt", range(3))
def test_concurrent_production_approvals_leave_exactly_one_production_version(
    attempt, transactional_db, engineer, analyst, analyst2
):
    assert connection.vendor == "postgresql", "this race is only meaningful on PostgreSQL"
    d = Dataset.objects.create(name=f"race-{attempt}", owner=engineer)
    make_version(d, mixed_frame(300, seed=attempt), engineer)
    experiment = make_experiment(engineer, d, name=f"race-exp-{attempt}")
    first = model_version_register(user=engineer, run=trained_run(engineer, experiment), model_name="racer")
    second = model_version_register(
        user=engineer, run=trained_run(engineer, experiment, "knn_classifier"), model_name="racer"
    )
    RegisteredModel.objects.filter(pk=first.model_id).update(require_staging_first=False, threshold_value=0.0)
    requests = [
        evaluated(promotion_request(user=engineer, version=v, target_stage="production", reason="race to prod"))
        for v in (first, second)
    ]
    barrier = threading.Barrier(2)
    results: list[tuple[int, dict]] = []

    def approve(user, promotion):
        client = Client()
        client.force_login(user)
        barrier.wait()
        response = client.post(f"/api/v1/promotions/{promotion.pk}/approve/", {"comment": "approve"},
                               content_type="application/json")
        results.append((response.status_code, response.json()))
        connection.close()

    threads = [threading.Thread(target=approve, args=(u, p)) for u, p in zip((analyst, analyst2), requests, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    codes = sorted(code for code, _ in results)
    assert codes == [200, 409], results
    loser = next(body for code, body in results if code == 409)
    assert loser["error"]["code"] == "conflict"
    assert ModelVersion.objects.filter(model_id=first.model_id, stage="production").count() == 1


def test_the_database_refuses_a_second_production_version(transactional_db, engineer):
    from django.db import IntegrityError

    d = Dataset.objects.create(name="constraint", owner=engineer)
    make_version(d, mixed_frame(200), engineer)
    experiment = make_experiment(engineer, d, name="constraint-exp")
    a = model_version_register(user=engineer, run=trained_run(engineer, experiment), model_name="guarded")
    b = model_version_register(user=engineer, run=trained_run(engineer, experiment, "knn_classifier"),
                               model_name="guarded")
    ModelVersion.objects.filter(pk=a.pk).update(stage="production")
    with pytest.raises(IntegrityError):
        ModelVersion.objects.filter(pk=b.pk).update(stage="production")
