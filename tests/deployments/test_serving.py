"""Deploy, predict, log, roll back, feedback: the serving loop through the real HTTP API."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from apps.accounts.models import ApiToken
from apps.core.models import AuditEvent
from apps.deployments import runtime
from apps.deployments.models import Deployment, PredictionError, PredictionLog, PredictionSource
from apps.deployments.services import deployment_create, deployment_rollback

ROW = {"x1": 0.3, "x2": 4.5, "color": "red"}


def predict(client, instances, model="served", env="production", **headers):
    return client.post(f"/api/v1/predict/{model}/{env}/", json.dumps({"instances": instances}),
                       content_type="application/json", **headers)


@pytest.fixture
def token_client(viewer, client_for):
    key = client_for(viewer).post("/accounts/tokens/new/", {"name": "svc"}).context["new_key"]
    return Client(HTTP_AUTHORIZATION=f"Token {key}")


@pytest.fixture(autouse=True)
def fresh_callers():
    from apps.deployments import serving

    serving.forget_callers()
    yield
    serving.forget_callers()


@pytest.fixture
def robot(db):
    from django.contrib.auth.models import Group, User

    robot = User.objects.create_user("robot")
    robot.groups.add(Group.objects.get(name="service"))
    return robot


@pytest.fixture
def service_client(robot):
    from apps.accounts.services import api_token_create

    _, key = api_token_create(user=robot, name="svc")
    return Client(HTTP_AUTHORIZATION=f"Token {key}")


@pytest.fixture
def deployed(analyst, prod_version, environments):
    return deployment_create(user=analyst, version=prod_version, environment=environments["production"])


def test_a_deployed_version_answers_and_logs_every_instance(deployed, token_client, prod_version):
    response = predict(token_client, [ROW, dict(ROW, color="blue"), dict(ROW, x2=None)])
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["version"] == prod_version.version and body["model"] == "served"
    assert len(body["predictions"]) == len(body["request_ids"]) == 3
    assert set(body["probabilities"][0]) == {"no", "yes"}
    logs = list(PredictionLog.objects.order_by("instance_index"))
    assert [str(log.request_id) for log in logs] == body["request_ids"]
    assert logs[1].features == dict(ROW, color="blue") and logs[0].batch_size == 3
    assert logs[0].prediction == body["predictions"][0]


def test_a_large_request_is_logged_through_copy_with_its_values_intact(deployed, service_client, prod_version):
    from apps.deployments.log_writer import COPY_FROM_ROWS, COPY_PIECE_ROWS

    awkward = ["back\\slash", "tab\there", "new\nline", "crlf\r\n", "quote\"d", "ünïcødé ✓", "\\N", "{}"]
    rows = [dict(ROW, x1=i / 7, x2=None if i % 5 == 0 else i * 1e-9, color=awkward[i % len(awkward)])
            for i in range(max(COPY_FROM_ROWS, COPY_PIECE_ROWS) + 37)]
    response = predict(service_client, rows)
    assert response.status_code == 200, response.content
    body = response.json()
    logs = list(PredictionLog.objects.order_by("instance_index"))
    assert [log.features for log in logs] == rows
    assert [str(log.request_id) for log in logs] == body["request_ids"]
    assert [log.prediction for log in logs] == body["predictions"]
    assert [log.probability for log in logs] == [p[str(body["predictions"][i])] for i, p in
                                                  enumerate(body["probabilities"])]
    assert {log.batch_size for log in logs} == {len(rows)} and {log.source for log in logs} == {"api"}
    assert all(log.created_at == logs[0].created_at and log.latency_ms > 0 for log in logs)


def test_a_utf8_byte_order_mark_before_the_body_is_tolerated(deployed, token_client):
    raw = b"\xef\xbb\xbf" + json.dumps({"instances": [ROW]}).encode()
    response = token_client.post("/api/v1/predict/served/production/", raw, content_type="application/json")
    assert response.status_code == 200, response.content
    assert PredictionLog.objects.count() == 1


@pytest.mark.parametrize("raw", [b"{not json", b'{"instances": [{"x1": NaN}]}', b"\xff\xfe", b'"instances"'])
def test_a_body_that_is_not_a_json_object_is_400(deployed, token_client, raw):
    response = token_client.post("/api/v1/predict/served/production/", raw, content_type="application/json")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] in ("invalid_json", "invalid")
    assert not PredictionLog.objects.exists()


def test_predictions_equal_the_pipeline_loaded_from_the_artifact(deployed, token_client, prod_version):
    import pandas as pd

    from apps.ml.persist import load_pipeline

    pipeline = load_pipeline(prod_version.run.artifact.read(), expected_sha256=prod_version.artifact_sha256)
    rows = [dict(ROW, x1=v) for v in (-2.0, 0.0, 1.5)] + [dict(ROW, color="purple")]
    body = predict(token_client, rows).json()
    assert body["predictions"] == list(pipeline.predict(pd.DataFrame(rows)))
    proba = pipeline.predict_proba(pd.DataFrame(rows))
    for i, p in enumerate(body["probabilities"]):
        assert p["yes"] == pytest.approx(proba[i][list(pipeline.classes_).index("yes")], abs=1e-12)


@pytest.mark.parametrize(
    ("instances", "field"),
    [
        ([{"x1": 1.0, "color": "red"}], "instances[0].x2"),
        ([dict(ROW, shoe_size=42)], "instances[0].shoe_size"),
        ([dict(ROW, x1="tall")], "instances[0].x1"),
        ([dict(ROW, x1=None)], "instances[0].x1"),
        ([ROW, dict(ROW, color=["red"])], "instances[1].color"),
        ([ROW, dict(ROW, color="re\x00d")], "instances[1].color"),  # PostgreSQL's jsonb cannot hold NUL
        ([], "instances"),
        ("not a list", "instances"),
    ],
)
def test_bad_instances_are_400_naming_instance_and_field_and_never_reach_the_model(
    deployed, token_client, instances, field
):
    response = predict(token_client, instances)
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"], response.json()
    assert not PredictionLog.objects.exists()
    assert PredictionError.objects.filter(status=400).count() == 1


def test_too_many_instances_are_refused(deployed, token_client, environments):
    environments["production"].max_instances = 2
    environments["production"].save()
    response = predict(token_client, [ROW] * 3)
    assert response.status_code == 400 and "instances" in response.json()["error"]["fields"]


def test_auth_and_roles_on_the_predict_api(deployed, client_for, viewer, outsider):
    assert predict(Client(), [ROW]).status_code == 401
    assert predict(Client(HTTP_AUTHORIZATION="Token nope"), [ROW]).status_code == 401
    assert predict(client_for(outsider), [ROW]).status_code == 403
    assert predict(client_for(viewer), [ROW]).status_code == 200  # the session, as "try it" uses
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(viewer)
    assert predict(csrf_client, [ROW]).status_code == 403


def test_a_service_account_may_predict_but_not_read_pages(deployed, service_client):
    assert predict(service_client, [ROW]).status_code == 200
    assert service_client.get("/api/v1/models/").status_code == 403


def test_unknown_model_or_environment_is_404(deployed, token_client):
    assert predict(token_client, [ROW], model="nope").status_code == 404
    assert predict(token_client, [ROW], env="moon").status_code == 404


def test_deploy_and_rollback_switch_the_answering_version_at_once(
    deployed, token_client, analyst, second_version, environments, prod_version
):
    assert predict(token_client, [ROW]).json()["version"] == prod_version.version
    new = deployment_create(user=analyst, version=second_version, environment=environments["production"])
    assert predict(token_client, [ROW]).json()["version"] == second_version.version
    restored = deployment_rollback(user=analyst, deployment=new, reason="bad release")
    assert restored.model_version == prod_version and restored.is_rollback
    assert predict(token_client, [ROW]).json()["version"] == prod_version.version
    assert Deployment.objects.filter(status="active").count() == 1
    assert AuditEvent.objects.filter(action="deployment.rollback", note="bad release").exists()
    assert set(runtime.loaded_versions()) >= {prod_version.pk, second_version.pk}


def test_production_accepts_only_production_versions(engineer, analyst, experiment, environments):
    from django.core.exceptions import ValidationError

    from apps.registry.services import model_version_register
    from tests.factories import trained_run

    version = model_version_register(user=engineer, run=trained_run(engineer, experiment), model_name="raw")
    with pytest.raises(ValidationError, match="production takes versions in stage: production only; .* ask for its promotion first"):
        deployment_create(user=analyst, version=version, environment=environments["production"])


def test_engineers_cannot_deploy_to_production(engineer, prod_version, environments):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        deployment_create(user=engineer, version=prod_version, environment=environments["production"])


def test_a_tampered_artifact_is_refused_with_503_and_audited(deployed, token_client, prod_version):
    with open(prod_version.run.artifact.path, "r+b") as fh:
        fh.seek(200)
        fh.write(b"\x00tampered\x00")
    runtime.forget()
    response = predict(token_client, [ROW])
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "hash_mismatch"
    assert "integrity check" in response.json()["error"]["message"]
    assert AuditEvent.objects.filter(action="deployment.artifact_refused").exists()
    assert not PredictionLog.objects.exists()


def test_feedback_attaches_labels_by_request_id(deployed, token_client, analyst, client_for):
    ids = predict(token_client, [ROW, ROW]).json()["request_ids"]
    refused = token_client.post("/api/v1/feedback/", {"request_id": ids[0], "label": "yes"},
                                content_type="application/json")
    assert refused.status_code == 403, "a viewer's token may predict but not label"
    labeller = client_for(analyst)
    response = labeller.post("/api/v1/feedback/", {"request_id": ids[0], "label": "yes"},
                                 content_type="application/json")
    assert response.status_code == 200 and response.json() == {"updated": 1}
    response = labeller.post("/api/v1/feedback/", {"items": [{"request_id": ids[1], "label": "no"}]},
                                 content_type="application/json")
    assert response.status_code == 200
    labels = dict(PredictionLog.objects.values_list("request_id", "label"))
    assert {str(k): v for k, v in labels.items()} == {ids[0]: "yes", ids[1]: "no"}
    bad = labeller.post("/api/v1/feedback/", {"items": [{"request_id": "0" * 32, "label": "no"},
                                                            {"request_id": "x", "label": "no"}]},
                            content_type="application/json")
    assert bad.status_code == 400
    assert set(bad.json()["error"]["fields"]) == {"items[0].request_id", "items[1].request_id"}
    raw = json.dumps({"items": [{"request_id": ids[0], "label": "n\x00o"}, {"request_id": ids[1], "label": 0}]})
    raw = raw.replace('"label": 0', '"label": 1e999')  # json.dumps cannot write an infinity that parses back
    bad = labeller.post("/api/v1/feedback/", raw, content_type="application/json")
    assert bad.status_code == 400, bad.content
    assert set(bad.json()["error"]["fields"]) == {"items[0].label", "items[1].label"}
    assert {str(k): v for k, v in PredictionLog.objects.values_list("request_id", "label")} == {ids[0]: "yes",
                                                                                              ids[1]: "no"}


def test_the_pages_render_with_traffic(deployed, token_client, viewer, client_for, django_assert_max_num_queries):
    for _ in range(3):
        predict(token_client, [ROW])
    client = client_for(viewer)
    page = client.get(f"/deployments/{deployed.pk}/")
    assert page.status_code == 200 and b"requests-chart" in page.content and b"try-it" in page.content
    with django_assert_max_num_queries(20):
        listing = client.get("/deployments/")
    assert listing.context["sections"][1][1][0]["stats"]["requests"] == 3


def test_an_instance_of_many_unknown_keys_gets_a_short_400(deployed, token_client):
    hostile = dict(ROW, **{f"k{i:06d}": 0 for i in range(100_000)})
    response = predict(token_client, [ROW, hostile])
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["total_problems"] == 1 and list(error["fields"]) == ["instances[1]"]
    assert "100,003 keys" in error["message"] and len(response.content) < 2_000
    assert not PredictionLog.objects.exists()


def test_problems_past_the_first_are_counted_in_the_answer(deployed, token_client):
    response = predict(token_client, [dict(ROW, x1="a", color=[])] * 80)
    error = response.json()["error"]
    assert response.status_code == 400 and error["total_problems"] == 160 and len(error["details"]) == 100
    assert "(and 159 more problems)" in error["message"]


def test_people_are_logged_as_interactive_and_service_accounts_as_api(deployed, token_client, service_client,
                                                                     client_for, analyst):
    assert predict(token_client, [ROW]).status_code == 200  # a viewer's own token
    assert predict(client_for(analyst), [ROW]).status_code == 200  # the try-it form, signed in
    assert predict(service_client, [ROW, ROW]).status_code == 200
    sources = sorted(PredictionLog.objects.values_list("source", flat=True))
    assert sources == sorted([PredictionSource.INTERACTIVE] * 2 + [PredictionSource.API] * 2)


def test_a_revoked_token_is_refused_at_the_next_request(deployed, viewer, client_for):
    page = client_for(viewer)
    key = page.post("/accounts/tokens/new/", {"name": "soon revoked"}).context["new_key"]
    client = Client(HTTP_AUTHORIZATION=f"Token {key}")
    assert predict(client, [ROW]).status_code == 200
    token = ApiToken.objects.get(name="soon revoked")
    revoked = page.post(f"/accounts/tokens/{token.pk}/revoke/", follow=True)
    assert b"refused from now on" in revoked.content
    response = predict(client, [ROW])
    assert response.status_code == 401 and "revoked" in response.json()["error"]["message"]


def test_an_inactive_user_is_refused_at_the_next_request_and_a_lost_role_within_the_cache_delay(
    deployed, viewer, token_client, monkeypatch
):
    from apps.deployments import serving

    assert predict(token_client, [ROW]).status_code == 200
    viewer.groups.clear()
    assert predict(token_client, [ROW]).status_code == 200  # the role is kept ROLE_CACHE_SECONDS per process
    monkeypatch.setattr(serving, "ROLE_CACHE_SECONDS", 0.0)
    assert predict(token_client, [ROW]).status_code == 403
    viewer.is_active = False
    viewer.save(update_fields=["is_active"])
    monkeypatch.undo()
    assert predict(token_client, [ROW]).status_code == 401  # checked in the query itself, on every request


def test_a_token_finds_its_caller_and_the_active_deployment_in_one_query(deployed, robot,
                                                                        django_assert_num_queries):
    from apps.accounts.models import hash_key
    from apps.deployments.serving import token_target

    key = "mlw_" + "k" * 43
    ApiToken.objects.create(user=robot, name="direct", prefix=key[:8], key_hash=hash_key(key))
    caller, target = token_target(key, "served", "production")  # the first one also reads the roles
    assert caller.may_predict and caller.source == PredictionSource.API and target.deployment_id == deployed.pk
    with django_assert_num_queries(1):
        assert token_target(key, "served", "production") == (caller, target)
    with django_assert_num_queries(2):
        assert token_target(key, "served", "moon") == (caller, None)
        assert token_target(key + "x", "served", "production") == (None, None)


def test_the_predict_view_starts_no_thread(deployed, token_client):
    runtime.stop_warmer()
    assert predict(token_client, [ROW]).status_code == 200
    assert not runtime.warmer_running()


_WARMER_PER_PROCESS = """
import os
import mlops_web.wsgi  # what gunicorn's workers and runserver import
from apps.deployments import runtime
first = runtime._warmer
runtime.start_warmer()
assert runtime.warmer_running() and runtime._warmer is first, "one warmer per process"
pid = os.fork()  # gunicorn --preload forks workers from a process that loaded the application
if pid == 0:
    os._exit(0 if runtime.warmer_running() and runtime._warmer is not first else 3)
print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
"""


def test_a_web_process_starts_one_model_warmer_and_a_forked_worker_its_own():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _WARMER_PER_PROCESS], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0"


AWKWARD = ["back\\slash", "tab\there", "new\nline", "crlf\r\n", "quote\"d", "ünïcødé ✓", "\\N", "{}", "\\t"]


def _log_rows(deployment, n: int):
    import uuid

    from django.utils import timezone

    from apps.deployments.log_writer import LogRow

    now = timezone.now()
    return [LogRow(deployment.pk, deployment.model_version_id, uuid.uuid4(), now,
                   {"x1": i / 3, "x2": None, "color": AWKWARD[i % len(AWKWARD)]}, AWKWARD[i % len(AWKWARD)],
                   None if i % 2 else 0.25, 1.5, i, n, AWKWARD[i % len(AWKWARD)][:10])
            for i in range(n)]


def test_copy_lines_read_back_as_the_rows_written(deployed):
    from apps.deployments.log_writer import copy_text, row_from_copy_line

    rows = _log_rows(deployed, 30)
    lines = copy_text(rows).decode().splitlines(keepends=True)
    assert [row_from_copy_line(line) for line in lines] == rows


def test_a_spool_writes_every_row_added_to_it_and_leaves_no_file(deployed):
    import os

    from apps.deployments.log_writer import LogSpool

    rows = _log_rows(deployed, 250)
    with LogSpool() as spool:
        spool.add(rows[:100])
        spool.add(rows[100:])
        assert spool.rows == 250 and os.path.getsize(spool.path) > 0
        spool.write()
        path = spool.path
    assert not os.path.exists(path)
    logged = {log.request_id: log for log in PredictionLog.objects.all()}
    assert [(logged[r.request_id].features, logged[r.request_id].prediction, logged[r.request_id].probability,
             logged[r.request_id].source) for r in rows] == [(r.features, r.prediction, r.probability, r.source)
                                                             for r in rows]
