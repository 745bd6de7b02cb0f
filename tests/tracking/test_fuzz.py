"""A schema-driven fuzz pass over every tracking route: whatever the body, query or path, never a 5xx,
and every 4xx is MLflow's error JSON. Values are drawn from each route's own request schema (right
types, wrong types, ids that exist and ids that do not), so the pass reaches the services."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.tracking import urls as tracking_urls
from tests.tracking.helpers import Protocol, crafted_skops, skops_mlmodel

pytestmark = pytest.mark.django_db
EXAMPLES = 8


def _routes():
    for pattern in tracking_urls.urlpatterns:
        for method, (_, handler) in getattr(pattern.callback, "handlers", {}).items():
            yield pytest.param(pattern.pattern.regex.pattern, method, handler.schema,
                               id=f"{method} {pattern.pattern.regex.pattern[1:-1]}")


@pytest.fixture(autouse=True)
def artifact_limit(settings):  # noqa: F811 - pytest-django's settings fixture, not hypothesis' settings
    settings.TRACKING_ARTIFACT_MAX_BYTES = 5_000


@pytest.fixture
def seeded(engineer, token_for):
    """Real objects for the fuzz to hit: an experiment, a run, a logged model registered as a version."""
    api = Protocol(Client(), token_for(engineer))
    experiment_id = api.experiment("fuzz-exp")
    run = api.run(experiment_id)
    model = api.upload_model(experiment_id, run["run_id"], skops_mlmodel([]),
                             {"model.skops": crafted_skops("builtins", "eval")})
    api.post("registered-models/create", {"name": "fuzz-model"})
    api.post("model-versions/create", {"name": "fuzz-model", "source": f"models:/{model['model_id']}"})
    api.post("registered-models/alias", {"name": "fuzz-model", "alias": "champion", "version": "1"})
    root = run["artifact_uri"][len("mlflow-artifacts:/"):]
    return {"api": api, "experiment_id": experiment_id, "run_id": run["run_id"], "model_id": model["model_id"],
            "root": root}


def _pools(seeded) -> dict[str, list]:
    return {
        "experiment_id": [seeded["experiment_id"], "0", "999999", "x"],
        "experiment_ids": [seeded["experiment_id"], "-1"],
        "run_id": [seeded["run_id"], "missing"], "run_uuid": [seeded["run_id"]],
        "source_run_id": [seeded["run_id"], "nope"],
        "model_id": [seeded["model_id"], "m-missing"],
        "name": ["fuzz-model", "fuzz-exp", "new-name", "bad name!", ""],
        "experiment_name": ["fuzz-exp", "none"],
        "version": ["1", "2", "0", "-1", "x", "99999999999999999999"],
        "alias": ["champion", "production", "staging", "v1", "latest", "new_alias"],
        "key": ["k", "mlflow.runName", "bad key?", "../x", ""],
        "value": ["v", "1", "", "x" * 9000],
        "filter": ["", "name = 'fuzz-model'", "metrics.a > 1", "params.x = 'y'", "tags.`a b` != 'c'",
                   "attributes.status IN ('RUNNING')", "metrics.a >", "((", "name LIKE '%'", "'"],
        "source": [f"models:/{seeded['model_id']}", f"runs:/{seeded['run_id']}/model", "mlflow-artifacts:/1/x",
                   "s3://bucket/x", ""],
        "path": [seeded["root"], f"{seeded['root']}/x", "../../etc", "", "registry/1"],
        "status": ["FINISHED", "LOGGED_MODEL_READY", "KILLED", "bogus"],
        "metric_key": ["loss", "none"],
        "page_token": ["", "eyJvZmZzZXQiOiAxfQ", "garbage", "eyJvZmZzZXQiOiAtMX0"],
    }


JUNK = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True),
                 st.text(max_size=20), st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3),
                                                                                              st.integers(), max_size=2))


def _value(kind, name: str, pools: dict):
    pool = pools.get(name)
    if isinstance(kind, list):
        return st.one_of(st.lists(_value(kind[0], name, pools), max_size=3), JUNK)
    if isinstance(kind, dict):
        return st.one_of(_message(kind, pools), JUNK)
    if isinstance(kind, tuple):
        typed = st.sampled_from(kind)
    elif kind == "string":
        typed = st.sampled_from(pool) if pool else st.text(max_size=40)
    elif kind in ("int64", "int32"):
        typed = st.one_of(st.integers(-5, 10**6), st.integers(-(2**70), 2**70))
    elif kind == "double":
        typed = st.floats(allow_nan=True, allow_infinity=True)
    else:
        typed = st.booleans()
    return st.one_of(typed, typed, JUNK)


def _message(schema: dict, pools: dict):
    fields = {name: _value(kind, name, pools) for name, kind in schema.items()}
    return st.fixed_dictionaries({}, optional={**fields, "junk": JUNK})


def _concrete(regex: str, draw_path: str) -> str:
    path = regex.lstrip("^").rstrip("$")
    path = path.replace(r"(?:2\.0|3\.0)", "2.0").replace("(?:create|complete|abort)", "create")
    path = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: draw_path if m.group(1) != "tag_key" else "k", path)
    return "/mlflow/" + path.replace("\\.", ".")


def _check(response) -> None:
    assert response.status_code < 500 or response.status_code == 501, (response.status_code, response.content[:300])
    if 400 <= response.status_code < 600:
        body = json.loads(response.content)
        assert isinstance(body.get("error_code"), str) and isinstance(body.get("message"), str), body


@pytest.mark.parametrize("regex,method,schema", list(_routes()))
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_no_route_answers_a_5xx_or_a_4xx_without_mlflow_json(seeded, regex, method, schema, data):
    pools = _pools(seeded)
    model_paths = [seeded["model_id"], "m-x", "a/b", "%00"]
    artifact_paths = [f"{seeded['root']}/f.txt", f"{seeded['root']}/../x", "registry/1/MLmodel", "1/x/artifacts/y",
                      f"{seeded['root']}/a\\b"]
    path_part = data.draw(st.one_of(st.sampled_from(model_paths if "model_id" in regex else artifact_paths),
                                    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1,
                                            max_size=20)))
    url = _concrete(regex, path_part.replace("\x00", "%00"))
    client, headers = seeded["api"].client, seeded["api"].headers
    message = data.draw(_message(schema, pools))
    if method == "GET":
        query = {k: [json.dumps(x) if not isinstance(x, str) else x for x in v] if isinstance(v, list)
                 else (v if isinstance(v, str) else json.dumps(v)) for k, v in message.items()}
        response = client.get(url, query, **headers)
    elif method == "PUT":
        response = client.put(url, data=data.draw(st.binary(max_size=6_000)), content_type="application/octet-stream",
                              **headers)
    else:
        body = data.draw(st.one_of(st.just(json.dumps(message)), st.text(max_size=30)))
        response = getattr(client, method.lower())(url, data=body, content_type="application/json", **headers)
    _check(response)
