"""Talking the MLflow protocol with Django's test client (for the many small bad-input cases)."""

from __future__ import annotations

import io
import json
import zipfile

import yaml

PREFIX = "/mlflow/api/2.0/mlflow"
ARTIFACTS = "/mlflow/api/2.0/mlflow-artifacts/artifacts"


class Protocol:
    def __init__(self, client, token: str | None):
        self.client = client
        self.headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}

    def call(self, method: str, route: str, body=None, **query):
        path = route if route.startswith("/mlflow") else f"{PREFIX}/{route}"
        if method == "GET":
            return self.client.get(path, query, **self.headers)
        data = body if isinstance(body, bytes | str) else json.dumps(body if body is not None else {})
        return getattr(self.client, method.lower())(path, data=data, content_type="application/json", **self.headers)

    def post(self, route, body=None):
        return self.call("POST", route, body)

    def get(self, route, **query):
        return self.call("GET", route, **query)

    def put_artifact(self, path: str, data: bytes):
        return self.client.put(f"{ARTIFACTS}/{path}", data=data, content_type="application/octet-stream",
                               **self.headers)

    def experiment(self, name="exp") -> str:
        response = self.post("experiments/create", {"name": name})
        assert response.status_code == 200, response.content
        return response.json()["experiment_id"]

    def run(self, experiment_id: str) -> dict:
        response = self.post("runs/create", {"experiment_id": experiment_id, "start_time": 1, "tags": []})
        assert response.status_code == 200, response.content
        return response.json()["run"]["info"]

    def logged_model(self, experiment_id: str, run_id: str) -> dict:
        response = self.post("logged-models", {"experiment_id": experiment_id, "name": "model",
                                               "source_run_id": run_id})
        assert response.status_code == 200, response.content
        return response.json()["model"]["info"]

    def upload_model(self, experiment_id: str, run_id: str, mlmodel: dict, files: dict[str, bytes]) -> dict:
        """A logged model with the given MLmodel and files, uploaded through the artifact proxy."""
        info = self.logged_model(experiment_id, run_id)
        root = info["artifact_uri"][len("mlflow-artifacts:/"):]
        for name, data in {"MLmodel": yaml.safe_dump(mlmodel).encode(), **files}.items():
            assert self.put_artifact(f"{root}/{name}", data).status_code == 200
        return info


def assert_mlflow_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, (response.status_code, response.content[:500])
    body = response.json()
    assert body["error_code"] == code, body
    assert isinstance(body["message"], str) and body["message"]
    return body


def skops_mlmodel(trusted: list[str], model_file: str = "model.skops", fmt: str = "skops") -> dict:
    return {
        "flavors": {
            "python_function": {"loader_module": "mlflow.sklearn", "model_path": model_file, "predict_fn": "predict"},
            "sklearn": {"pickled_model": model_file, "serialization_format": fmt, "sklearn_version": "1.9.1",
                        "skops_trusted_types": trusted, "code": None},
        },
        "signature": {"inputs": json.dumps([{"type": "double", "name": "x", "required": True}])},
    }


def crafted_skops(module: str, name: str) -> bytes:
    """A skops archive whose only object is the function ``module.name`` (what an attacker would call)."""
    schema = {"__class__": name, "__module__": module, "__loader__": "FunctionNode", "content": {
        "module_path": module, "function": name}, "protocol": 2, "_skops_version": "0.16.0"}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("schema.json", json.dumps(schema))
    return buffer.getvalue()


def colspec(frame, names: list[str]) -> str:
    """MLflow's signature inputs for ``names`` of ``frame``, as mlflow.models.infer_signature writes them."""
    kinds = {"i": "long", "f": "double", "b": "boolean", "O": "string"}
    return json.dumps([{"type": kinds.get(frame[n].dtype.kind, "string"), "name": n, "required": True} for n in names])


def log_version(api: Protocol, *, name: str, pipeline, frame, features: list[str], inputs: list[dict] = (),
                commit: str = "", fmt: str = "skops", experiment_name: str = "") -> dict:
    """What mlflow.sklearn.log_model and register_model send, through the protocol: a run (with its logged
    inputs and commit tag), a logged model with its MLmodel and skops file, and version 1 of ``name``."""
    import skops.io as sio

    experiment_id = api.experiment(experiment_name or f"{name}-exp")
    run_id = api.run(experiment_id)["run_id"]
    if commit:
        api.post("runs/set-tag", {"run_id": run_id, "key": "mlflow.source.git.commit", "value": commit})
    if inputs:
        assert api.post("runs/log-inputs", {"run_id": run_id, "datasets": list(inputs)}).status_code == 200
    trusted = sorted(sio.get_untrusted_types(data=sio.dumps(pipeline)))
    mlmodel = skops_mlmodel(trusted, fmt=fmt)
    mlmodel["signature"] = {"inputs": colspec(frame, features)}
    import sklearn

    mlmodel["flavors"]["sklearn"]["sklearn_version"] = sklearn.__version__
    info = api.upload_model(experiment_id, run_id, mlmodel, {"model.skops": sio.dumps(pipeline)})
    api.call("PATCH", f"logged-models/{info['model_id']}", {"model_id": info["model_id"], "status": "LOGGED_MODEL_READY"})
    api.post("runs/update", {"run_id": run_id, "status": "FINISHED", "end_time": 2})
    if api.get("registered-models/get", name=name).status_code == 404:
        assert api.post("registered-models/create", {"name": name}).status_code == 200
    created = api.post("model-versions/create", {"name": name, "source": f"models:/{info['model_id']}",
                                                  "run_id": run_id, "model_id": info["model_id"]})
    assert created.status_code == 200, created.content
    return {"run_id": run_id, "model_id": info["model_id"], "version": created.json()["model_version"]["version"]}


def logged_input(url: str, frame, context: str = "training", name: str = "data") -> dict:
    """A log-inputs dataset whose source names one of our dataset versions (as from_pandas(source=url) sends)."""
    schema = json.loads(colspec(frame, list(frame.columns)))
    return {"tags": [{"key": "mlflow.data.context", "value": context}] if context else [],
            "dataset": {"name": name, "digest": "d1g35t", "source_type": "http", "source": json.dumps({"url": url}),
                        "schema": json.dumps({"mlflow_colspec": schema}), "profile": "{}"}}
