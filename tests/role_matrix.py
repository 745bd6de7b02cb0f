"""The role matrix: every URL the project defines, with the status each role gets.

``tests/core/test_role_matrix.py`` requests every row as anonymous, outsider (signed in,
no role), viewer, ml_engineer, analyst and admin, and fails when a URL has no row.
Each app appends its rows here as it grows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

ROLES = ("anon", "outsider", "viewer", "ml_engineer", "analyst", "admin")


def statuses(default: int, **overrides: int) -> dict[str, int]:
    result = {role: default for role in ROLES}
    result.update(overrides)
    return result


PAGE = statuses(200, anon=302, outsider=403)
API_READ = statuses(200, anon=401, outsider=403)
ADMIN_ONLY_PAGE = statuses(403, anon=302, admin=200)
ENGINEER_PAGE = statuses(403, anon=302, ml_engineer=200, admin=200)
ENGINEER_ACTION = statuses(403, anon=302, ml_engineer=302, admin=302)


@dataclass
class Row:
    name: str  # the URL name, with its namespace
    path: Callable[[dict], str]  # objects -> path
    expected: dict[str, int]
    method: str = "GET"
    data: Callable[[dict], dict] | None = None
    content_type: str | None = None
    note: str = ""
    extra: dict = field(default_factory=dict)


def fixed(path: str) -> Callable[[dict], str]:
    return lambda objects: path


ROWS: list[Row] = [
    Row("home", fixed("/"), PAGE),
    Row("healthz", fixed("/healthz"), statuses(200)),
    Row("favicon", fixed("/favicon.ico"), statuses(301), note="to the static icon, for every caller"),
    Row("readyz", fixed("/readyz"), statuses(200)),
    Row("login", fixed("/accounts/login/"), statuses(302, anon=200)),
    Row("logout", fixed("/accounts/logout/"), statuses(302), method="POST"),
    Row("accounts:tokens", fixed("/accounts/tokens/"), PAGE),
    Row(
        "accounts:token_create",
        fixed("/accounts/tokens/new/"),
        PAGE,
        method="POST",
        data=lambda o: {"name": "matrix"},
    ),
    Row(
        "accounts:token_revoke",
        lambda o: f"/accounts/tokens/{o['token'].pk}/revoke/",
        statuses(404, anon=302, outsider=403, ml_engineer=302),
        method="POST",
        note="a token belongs to the engineer; others get 404, never a hint it exists",
    ),
    Row("core:job_list", fixed("/jobs/"), PAGE),
    Row("core:job_detail", lambda o: f"/jobs/{o['job'].pk}/", PAGE),
    Row(
        "core:job_cancel",
        lambda o: f"/jobs/{o['job'].pk}/cancel/",
        statuses(403, anon=302, ml_engineer=302, admin=302),
        method="POST",
        note="only the job's starter (the engineer) or an admin may cancel",
    ),
    Row("core:selfcheck_start", fixed("/jobs/selfcheck/"), statuses(403, anon=302, admin=302), method="POST"),
    Row("core:audit_list", fixed("/audit/"), ADMIN_ONLY_PAGE),
    Row("datasets:list", fixed("/datasets/"), PAGE),
    Row("datasets:new", fixed("/datasets/new/"), ENGINEER_PAGE),
    Row("datasets:detail", lambda o: f"/datasets/{o['dataset'].pk}/", PAGE),
    Row(
        "datasets:upload",
        lambda o: f"/datasets/{o['dataset'].pk}/upload/",
        ENGINEER_ACTION | {"ml_engineer": 400, "admin": 400},
        method="POST",
        note="no file: the engineer gets the form back with the message",
    ),
    Row("datasets:compare", lambda o: f"/datasets/{o['dataset'].pk}/compare/", PAGE),
    Row("datasets:version", lambda o: f"/datasets/versions/{o['version'].pk}/", PAGE),
    Row(
        "datasets:version_role",
        lambda o: f"/datasets/versions/{o['version'].pk}/role/",
        ENGINEER_ACTION,
        method="POST",
        data=lambda o: {"column": "color", "role": "text"},
    ),
    Row(
        "datasets:version_override",
        lambda o: f"/datasets/versions/{o['version'].pk}/override/",
        ENGINEER_ACTION,
        method="POST",
        data=lambda o: {"reason": "matrix test reason"},
    ),
    Row("datasets:version_download", lambda o: f"/datasets/versions/{o['version'].pk}/download/", PAGE),
    Row("api:dataset_list", fixed("/api/v1/datasets/"), API_READ),
    Row("api:dataset_detail", lambda o: f"/api/v1/datasets/{o['dataset'].pk}/", API_READ),
    Row(
        "api:dataset_version_upload",
        lambda o: f"/api/v1/datasets/{o['dataset'].pk}/versions/",
        statuses(403, anon=401, ml_engineer=400, admin=400),
        method="POST",
        note="no file: 400 naming the field for those allowed to upload",
    ),
    Row("api:dataset_version_upload", lambda o: f"/api/v1/datasets/{o['dataset'].pk}/versions/", API_READ,
        note="GET lists the versions"),
    Row("api:dataset_version_detail", lambda o: f"/api/v1/dataset-versions/{o['version'].pk}/", API_READ),
    Row("experiments:list", fixed("/experiments/"), PAGE),
    Row("experiments:new", fixed("/experiments/new/"), ENGINEER_PAGE),
    Row("experiments:detail", lambda o: f"/experiments/{o['experiment'].pk}/", PAGE),
    Row(
        "experiments:param_form",
        lambda o: f"/experiments/{o['experiment'].pk}/params/?algorithm=logistic_regression",
        PAGE,
    ),
    Row("experiments:run_create", lambda o: f"/experiments/{o['experiment'].pk}/runs/", ENGINEER_ACTION, method="POST"),
    Row(
        "experiments:compare",
        lambda o: f"/experiments/{o['experiment'].pk}/compare/?runs={o['run'].pk}&runs={o['run2'].pk}",
        PAGE,
    ),
    Row("experiments:run", lambda o: f"/experiments/runs/{o['run'].pk}/", PAGE),
    Row("experiments:run_again", lambda o: f"/experiments/runs/{o['run'].pk}/again/", ENGINEER_ACTION, method="POST"),
    Row("experiments:run_cancel", lambda o: f"/experiments/runs/{o['run2'].pk}/cancel/", ENGINEER_ACTION, method="POST"),
    Row("experiments:run_artifact", lambda o: f"/experiments/runs/{o['run'].pk}/artifacts/1/none/artifacts/x",
        statuses(404, anon=302, outsider=403), note="a catalog run has no MLflow files; tests/tracking covers them"),
    Row("tracking:artifact", fixed("/mlflow/api/2.0/mlflow-artifacts/artifacts/1/none/artifacts/x"), statuses(401),
        note="MLflow routes ignore sessions (CSRF-exempt): tokens or Basic only; tests/tracking covers the roles"),
    Row("api:algorithm_list", fixed("/api/v1/algorithms/"), API_READ),
    Row("api:experiment_list", fixed("/api/v1/experiments/"), API_READ),
    Row("api:experiment_detail", lambda o: f"/api/v1/experiments/{o['experiment'].pk}/", API_READ),
    Row(
        "api:run_launch",
        lambda o: f"/api/v1/experiments/{o['experiment'].pk}/runs/",
        statuses(403, anon=401, ml_engineer=400, admin=400),
        method="POST",
        note="an empty body: 400 naming the algorithm for those allowed to launch",
    ),
    Row("api:run_launch", lambda o: f"/api/v1/experiments/{o['experiment'].pk}/runs/", API_READ,
        note="GET lists the runs"),
    Row("api:run_detail", lambda o: f"/api/v1/runs/{o['run'].pk}/", API_READ),
    Row(
        "api:run_cancel",
        lambda o: f"/api/v1/runs/{o['run2'].pk}/cancel/",
        statuses(403, anon=401, ml_engineer=202, admin=202),
        method="POST",
    ),
    Row("registry:list", fixed("/models/"), PAGE),
    Row("registry:model", lambda o: f"/models/{o['model_version'].model_id}/", PAGE),
    Row("registry:version", lambda o: f"/models/versions/{o['model_version'].pk}/", PAGE),
    Row("registry:stage_badge", lambda o: f"/models/versions/{o['model_version'].pk}/stage/", PAGE),
    Row(
        "registry:request_promotion",
        lambda o: f"/models/versions/{o['model_version'].pk}/promote/",
        ENGINEER_ACTION,
        method="POST",
        data=lambda o: {"target_stage": "moon", "reason": "x"},
        note="a bad stage: the engineer is sent back with the message",
    ),
    Row("registry:register", lambda o: f"/models/register/{o['run'].pk}/", ENGINEER_ACTION, method="POST"),
    Row("registry:queue", fixed("/models/promotions/"), PAGE),
    Row("registry:promotion", lambda o: f"/models/promotions/{o['promotion'].pk}/", PAGE),
    Row(
        "registry:approve",
        lambda o: f"/models/promotions/{o['promotion'].pk}/approve/",
        statuses(403, anon=302, analyst=302, admin=302),
        method="POST",
        note="no comment: analysts are sent back with the message",
    ),
    Row(
        "registry:reject",
        lambda o: f"/models/promotions/{o['promotion'].pk}/reject/",
        statuses(403, anon=302, analyst=302, admin=302),
        method="POST",
    ),
    Row("api:run_register", lambda o: f"/api/v1/runs/{o['run'].pk}/register/",
        statuses(403, anon=401, ml_engineer=400, admin=400), method="POST"),
    Row("api:model_list", fixed("/api/v1/models/"), API_READ),
    Row("api:model_detail", lambda o: f"/api/v1/models/{o['model_version'].model_id}/", API_READ),
    Row("api:model_versions", lambda o: f"/api/v1/models/{o['model_version'].model_id}/versions/", API_READ),
    Row("api:model_history", lambda o: f"/api/v1/models/{o['model_version'].model_id}/history/", API_READ),
    Row("api:production_at", lambda o: f"/api/v1/models/{o['model_version'].model_id}/production-at/?at=2026-01-01",
        API_READ),
    Row("api:model_version_detail", lambda o: f"/api/v1/model-versions/{o['model_version'].pk}/", API_READ),
    Row("api:promotion_create", lambda o: f"/api/v1/model-versions/{o['model_version'].pk}/promotions/",
        statuses(403, anon=401, ml_engineer=400, admin=400), method="POST"),
    Row("api:promotion_list", fixed("/api/v1/promotions/"), API_READ),
    Row("api:promotion_detail", lambda o: f"/api/v1/promotions/{o['promotion'].pk}/", API_READ),
    Row("api:promotion_approve", lambda o: f"/api/v1/promotions/{o['promotion'].pk}/approve/",
        statuses(403, anon=401, analyst=400, admin=400), method="POST",
        content_type="application/json", data=lambda o: {}),
    Row("api:promotion_reject", lambda o: f"/api/v1/promotions/{o['promotion'].pk}/reject/",
        statuses(403, anon=401, analyst=400, admin=400), method="POST",
        content_type="application/json", data=lambda o: {}),
    Row("deployments:list", fixed("/deployments/"), PAGE),
    Row("deployments:deploy", fixed("/deployments/deploy/"), statuses(302, outsider=403),
        method="POST", note="no version named: the form sends anyone with a role back with its message; "
        "the deploy service refuses a real deploy without the right (tests/deployments/test_pages.py)"),
    Row("deployments:detail", lambda o: f"/deployments/{o['deployment'].pk}/", PAGE),
    Row("deployments:rollback", lambda o: f"/deployments/{o['deployment'].pk}/rollback/",
        statuses(403, anon=302, analyst=302, admin=302), method="POST",
        note="production: analysts and admins; with nothing to roll back to they are sent back with a message"),
    Row("deployments:batch_upload", lambda o: f"/deployments/{o['deployment'].pk}/batches/",
        statuses(403, anon=302, analyst=302, admin=302), method="POST",
        note="production batches need the production right; no file: sent back with the message"),
    Row("deployments:batch", lambda o: f"/deployments/batches/{o['batch'].pk}/", PAGE),
    Row("deployments:batch_download", lambda o: f"/deployments/batches/{o['batch'].pk}/download/",
        statuses(403, anon=302), note="not scored yet: 403 with the reason"),
    Row("api:deployment_list", fixed("/api/v1/deployments/"), API_READ),
    Row("api:deployment_detail", lambda o: f"/api/v1/deployments/{o['deployment'].pk}/", API_READ),
    Row("api:deployment_rollback", lambda o: f"/api/v1/deployments/{o['deployment'].pk}/rollback/",
        statuses(403, anon=401, analyst=409, admin=409), method="POST",
        note="nothing to roll back to: 409 for those allowed"),
    Row("api:predict", lambda o: f"/api/v1/predict/{o['deployment'].model.name}/production/",
        statuses(400, anon=401, outsider=403), method="POST", content_type="application/json",
        data=lambda o: {"instances": []}, note="an empty list: 400 for any role that may predict"),
    Row("api:feedback", fixed("/api/v1/feedback/"), statuses(400, anon=401, outsider=403, viewer=403), method="POST",
        content_type="application/json", data=lambda o: {"request_id": "nope", "label": 1}),
    Row("monitoring:overview", fixed("/monitoring/"), PAGE),
    Row("monitoring:detail", lambda o: f"/monitoring/{o['policy'].pk}/", PAGE),
    Row("monitoring:settings", lambda o: f"/monitoring/{o['policy'].pk}/settings/", ENGINEER_PAGE),
    Row("monitoring:check", lambda o: f"/monitoring/{o['policy'].pk}/check/",
        statuses(302, outsider=403, viewer=403), method="POST", note="engineers, analysts and admins run checks"),
    Row("monitoring:retrain", lambda o: f"/monitoring/{o['policy'].pk}/retrain/", ENGINEER_ACTION, method="POST"),
    Row("monitoring:report", lambda o: f"/monitoring/reports/{o['report'].pk}/", PAGE),
    Row("monitoring:report_feature", lambda o: f"/monitoring/reports/{o['report'].pk}/feature/x1/", PAGE),
    Row("monitoring:alert", lambda o: f"/monitoring/alerts/{o['alert'].pk}/", PAGE),
    Row("monitoring:retraining", lambda o: f"/monitoring/retrainings/{o['retraining'].pk}/", PAGE),
    Row("api:drift_reports", lambda o: f"/api/v1/deployments/{o['deployment'].pk}/drift/", API_READ),
    Row("api:drift_check", lambda o: f"/api/v1/deployments/{o['deployment'].pk}/drift-checks/",
        statuses(202, anon=401, outsider=403, viewer=403), method="POST", content_type="application/json",
        data=lambda o: {}),
    Row("maturity:overview", fixed("/maturity/"), PAGE),
    Row("maturity:model", lambda o: f"/maturity/models/{o['model_version'].model_id}/", PAGE),
    Row("maturity:recompute", fixed("/maturity/recompute/"), statuses(302, outsider=403), method="POST",
        note="any role that reads the dashboard may recompute (it only reads records and keeps a snapshot)"),
    Row("maturity:pipeline_change", lambda o: f"/maturity/pipeline-changes/{o['pipeline_change'].pk}/", PAGE),
    Row("api:maturity", fixed("/api/v1/maturity/"), API_READ),
    Row("api:pipeline_change", lambda o: f"/api/v1/models/{o['model_version'].model_id}/pipeline-changes/",
        statuses(403, anon=401, ml_engineer=400, admin=400), method="POST", content_type="application/json",
        data=lambda o: {}, note="CI tokens belong to ML engineers; an empty body is a 400 for them"),
    Row("api:pipeline_change_detail", lambda o: f"/api/v1/pipeline-changes/{o['pipeline_change'].pk}/", API_READ),
    Row("schema", fixed("/api/schema/"), API_READ),
    Row("api_docs", fixed("/api/docs/"), API_READ),
    Row("api_redoc", fixed("/api/redoc/"), API_READ),
    Row("api:job_detail", lambda o: f"/api/v1/jobs/{o['job'].pk}/", API_READ),
]
