"""Every URL, every role: the status each gets (see tests/role_matrix.py)."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from apps.accounts.services import api_token_create
from apps.core.models import Job
from tests import role_matrix_objects
from tests.conftest import make_user
from tests.role_matrix import ROLES, ROWS

IGNORED_NAMESPACES = {"admin"}  # Django's own admin: covered by test_admin_is_for_staff_only


def all_url_names(patterns=None, namespace: str = "") -> set[str]:
    names: set[str] = set()
    for pattern in patterns if patterns is not None else get_resolver().url_patterns:
        if isinstance(pattern, URLResolver):
            ns = pattern.namespace
            if ns in IGNORED_NAMESPACES:
                continue
            inner = f"{namespace}:{ns}" if namespace and ns else (ns or namespace)
            names |= all_url_names(pattern.url_patterns, inner)
        elif isinstance(pattern, URLPattern) and pattern.name:
            names.add(f"{namespace}:{pattern.name}" if namespace else pattern.name)
    return names


def test_every_url_has_a_row_in_the_role_matrix():
    defined = all_url_names()
    covered = {row.name for row in ROWS}
    assert not defined - covered, f"URLs with no role-matrix row: {sorted(defined - covered)}"
    assert not covered - defined, f"role-matrix rows for URLs that no longer exist: {sorted(covered - defined)}"


@pytest.fixture
def users(db):
    return {
        "anon": None,
        "outsider": make_user("outsider"),
        "viewer": make_user("viewer", group="viewer"),
        "ml_engineer": make_user("engineer", group="ml_engineer"),
        "analyst": make_user("analyst", group="analyst"),
        "admin": make_user("admin", staff=True),
    }


@pytest.fixture
def objects(users):
    engineer = users["ml_engineer"]
    token, _ = api_token_create(user=engineer, name="engineer token")
    objs = {
        "job": Job.objects.create(kind="core.selfcheck", created_by=engineer),
        "token": token,
    }
    objs.update(role_matrix_objects.build(users))
    return objs


def test_every_row_of_the_role_matrix(users, objects):
    """One test for all rows (the objects are costly to build); every mismatch is reported."""
    mismatches = []
    for row in ROWS:
        got = {}
        for role in ROLES:
            client = Client()
            if users[role] is not None:
                client.force_login(users[role])
            kwargs = {}
            if row.data is not None:
                data = row.data(objects)
                if row.content_type == "application/json":
                    kwargs = {"data": json.dumps(data), "content_type": "application/json"}
                else:
                    kwargs = {"data": data}
            response = getattr(client, row.method.lower())(row.path(objects), **kwargs)
            got[role] = response.status_code
        if got != row.expected:
            diff = {r: f"{got[r]} (expected {row.expected[r]})" for r in ROLES if got[r] != row.expected[r]}
            mismatches.append(f"{row.method} {row.name}: {diff}")
    assert not mismatches, "role matrix mismatches:\n" + "\n".join(mismatches)


def test_admin_is_for_staff_only(users):
    for role in ROLES:
        client = Client()
        if users[role] is not None:
            client.force_login(users[role])
        response = client.get("/admin/")
        if role == "admin":
            assert response.status_code == 200
        else:
            assert response.status_code == 302 and "/admin/login/" in response["Location"]
