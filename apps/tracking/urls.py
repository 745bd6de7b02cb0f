"""MLflow's REST routes, mounted under /mlflow/ (MLFLOW_TRACKING_URI=http://<host>/mlflow).

Paths never end in a slash (the client appends none); anything else under the prefix is a JSON
404 ENDPOINT_NOT_FOUND, never a page or a redirect, except the bare prefix asked for HTML: the link
the client prints for a person ("View run at …/mlflow/#/…") redirects to our experiments.
"""

from django.urls import re_path

from . import views_artifacts as art
from . import views_models as lm
from . import views_registry as reg
from . import views_runs as runs
from .protocol import endpoint, not_found

API = r"^api/(?:2\.0|3\.0)/mlflow/"
ARTIFACTS = r"^api/2\.0/mlflow-artifacts/"
MODEL_ID = r"(?P<model_id>[^/]+)"


app_name = "tracking"


def route(path: str, name: str | None = None, **handlers):
    return re_path(path + "$", endpoint(**handlers), name=name)


R, L, G = "read", "log", "register"

urlpatterns = [
    # experiments
    route(API + r"experiments/get-by-name", GET=(R, runs.get_experiment_by_name)),
    route(API + r"experiments/create", POST=(L, runs.create_experiment)),
    route(API + r"experiments/get", GET=(R, runs.get_experiment)),
    route(API + r"experiments/search", GET=(R, runs.search_experiments), POST=(R, runs.search_experiments)),
    route(API + r"experiments/update", POST=(L, runs.update_experiment)),
    route(API + r"experiments/delete", POST=(L, runs.delete_experiment)),
    route(API + r"experiments/restore", POST=(L, runs.restore_experiment)),
    route(API + r"experiments/set-experiment-tag", POST=(L, runs.set_experiment_tag)),
    route(API + r"experiments/delete-experiment-tag", POST=(L, runs.delete_experiment_tag)),
    # runs
    route(API + r"runs/create", POST=(L, runs.create_run)),
    route(API + r"runs/update", POST=(L, runs.update_run)),
    route(API + r"runs/get", GET=(R, runs.get_run)),
    route(API + r"runs/delete", POST=(L, runs.delete_run)),
    route(API + r"runs/restore", POST=(L, runs.restore_run)),
    route(API + r"runs/search", POST=(R, runs.search_runs)),
    route(API + r"runs/log-metric", POST=(L, runs.log_metric)),
    route(API + r"runs/log-parameter", POST=(L, runs.log_param)),
    route(API + r"runs/log-batch", POST=(L, runs.log_batch)),
    route(API + r"runs/set-tag", POST=(L, runs.set_tag)),
    route(API + r"runs/delete-tag", POST=(L, runs.delete_tag)),
    route(API + r"runs/log-inputs", POST=(L, runs.log_inputs)),
    route(API + r"runs/outputs", POST=(L, runs.log_outputs)),
    route(API + r"metrics/get-history", GET=(R, runs.get_metric_history)),
    route(API + r"artifacts/list", GET=(R, art.list_run_artifacts)),
    route(API + r"server-info", GET=(R, art.server_info)),
    # MLflow 3 logged models
    route(API + r"logged-models", POST=(L, lm.create_logged_model)),
    route(API + r"logged-models/search", POST=(R, lm.search_logged_models)),
    route(API + r"logged-models/" + MODEL_ID + r"/tags/(?P<tag_key>.+)", DELETE=(L, lm.delete_logged_model_tag)),
    route(API + r"logged-models/" + MODEL_ID + r"/tags", PATCH=(L, lm.set_logged_model_tags)),
    route(API + r"logged-models/" + MODEL_ID + r"/params", POST=(L, lm.log_logged_model_params)),
    route(API + r"logged-models/" + MODEL_ID, GET=(R, lm.get_logged_model), PATCH=(L, lm.finalize_logged_model),
          DELETE=(L, lm.delete_logged_model)),
    # registry
    route(API + r"registered-models/create", POST=(G, reg.create_registered_model)),
    route(API + r"registered-models/get", GET=(R, reg.get_registered_model)),
    route(API + r"registered-models/update", PATCH=(G, reg.update_registered_model)),
    route(API + r"registered-models/rename", POST=(G, reg.rename_registered_model)),
    route(API + r"registered-models/delete", DELETE=(G, reg.delete_registered_model)),
    route(API + r"registered-models/search", GET=(R, reg.search_registered_models)),
    route(API + r"registered-models/get-latest-versions", GET=(R, reg.get_latest_versions),
          POST=(R, reg.get_latest_versions)),
    route(API + r"registered-models/set-tag", POST=(G, reg.set_registered_model_tag)),
    route(API + r"registered-models/delete-tag", DELETE=(G, reg.delete_registered_model_tag)),
    route(API + r"registered-models/alias", POST=(G, reg.set_alias), DELETE=(G, reg.delete_alias),
          GET=(R, reg.get_alias)),
    route(API + r"model-versions/create", POST=(G, reg.create_model_version)),
    route(API + r"model-versions/get", GET=(R, reg.get_model_version)),
    route(API + r"model-versions/update", PATCH=(G, reg.update_model_version)),
    route(API + r"model-versions/delete", DELETE=(G, reg.delete_model_version)),
    route(API + r"model-versions/search", GET=(R, reg.search_model_versions)),
    route(API + r"model-versions/get-download-uri", GET=(R, reg.get_model_version_download_uri)),
    route(API + r"model-versions/transition-stage", POST=(G, reg.transition_model_version_stage)),
    route(API + r"model-versions/set-tag", POST=(G, reg.set_model_version_tag)),
    route(API + r"model-versions/delete-tag", DELETE=(G, reg.delete_model_version_tag)),
    # artifact proxy
    route(ARTIFACTS + r"artifacts", GET=(R, art.list_artifacts)),
    # named so body-size guards can leave it alone: it streams and enforces TRACKING_ARTIFACT_MAX_BYTES itself
    route(ARTIFACTS + r"artifacts/(?P<path>.+)", name="artifact", GET=(R, art.download), PUT=(L, art.upload),
          DELETE=(L, art.delete_artifact)),
    route(ARTIFACTS + r"mpu/(?:create|complete|abort)/(?P<path>.+)", POST=(L, art.not_implemented)),
    route(ARTIFACTS + r"presigned/(?P<path>.+)", GET=(R, art.not_implemented)),
    re_path(r"^(?P<rest>.*)$", not_found),
]
