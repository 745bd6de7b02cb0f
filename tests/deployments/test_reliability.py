"""Under concurrent traffic on a real (threaded) server: nothing lost, nothing failed."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from apps.accounts.services import api_token_create
from apps.deployments.models import PredictionLog
from apps.deployments.services import deployment_create, deployment_rollback

ROW = {"x1": 0.3, "x2": 4.5, "color": "red"}


def call(url: str, key: str) -> tuple[int, dict]:
    request = urllib.request.Request(
        url, data=json.dumps({"instances": [ROW]}).encode(), method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Token {key}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


@pytest.fixture
def served(transactional_db, live_server, engineer, analyst, viewer, environments, prod_version):
    deployment = deployment_create(user=analyst, version=prod_version, environment=environments["production"])
    _, key = api_token_create(user=viewer, name="load")
    return deployment, f"{live_server.url}/api/v1/predict/served/production/", key


def test_2000_concurrent_requests_give_exactly_2000_log_rows(served):
    _, url, key = served
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: call(url, key), range(2000)))
    assert [code for code, _ in results].count(200) == 2000
    ids = {body["request_ids"][0] for _, body in results}
    assert len(ids) == 2000
    assert PredictionLog.objects.count() == 2000
    assert set(map(str, PredictionLog.objects.values_list("request_id", flat=True))) == ids


def test_deploys_and_rollbacks_during_traffic_fail_no_request(served, analyst, second_version, environments):
    deployment, url, key = served
    stop = threading.Event()
    results: list[tuple[int, dict]] = []

    def traffic():
        while not stop.is_set():
            results.append(call(url, key))

    threads = [threading.Thread(target=traffic) for _ in range(4)]
    for t in threads:
        t.start()
    current = deployment
    for _ in range(5):
        new = deployment_create(user=analyst, version=second_version, environment=environments["production"])
        current = deployment_rollback(user=analyst, deployment=new, reason="flip-flop under load")
    stop.set()
    for t in threads:
        t.join(30)
    assert results, "no traffic was sent"
    failures = [(code, body) for code, body in results if code != 200]
    assert not failures, failures[:3]
    versions = {body["version"] for _, body in results}
    assert versions <= {deployment.model_version.version, second_version.version}
    assert PredictionLog.objects.count() == len(results)
    assert current.model_version == deployment.model_version
