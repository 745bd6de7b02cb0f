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
    Row("api:dataset_version_detail", lambda o: f"/api/v1/dataset-versions/{o['version'].pk}/", API_READ),
    Row("experiments:list", fixed("/experiments/"), PAGE),
    Row("registry:list", fixed("/models/"), PAGE),
    Row("deployments:list", fixed("/deployments/"), PAGE),
    Row("monitoring:overview", fixed("/monitoring/"), PAGE),
    Row("maturity:overview", fixed("/maturity/"), PAGE),
    Row("schema", fixed("/api/schema/"), API_READ),
    Row("api_docs", fixed("/api/docs/"), API_READ),
    Row("api_redoc", fixed("/api/redoc/"), API_READ),
    Row("api:job_detail", lambda o: f"/api/v1/jobs/{o['job'].pk}/", API_READ),
]
