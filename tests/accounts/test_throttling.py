"""Guessing passwords or API tokens is throttled (django-axes, counted in the database),
every failure up to the lockout is audited, and the API answers 429 with Retry-After.

That the count is shared by several gunicorn processes, on SQLite, is tested on the real
stack in tests/core/test_runstack.py."""

from __future__ import annotations

import pytest
from axes.models import AccessAttempt
from django.test import Client, RequestFactory

from apps.accounts.models import ApiToken
from apps.accounts.services import api_token_create
from apps.accounts.throttle import client_ip
from apps.core.models import AuditEvent, Job

PASSWORD = "pw-for-tests-1"


@pytest.fixture(autouse=True)
def limits(settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    settings.API_TOKEN_FAILURE_LIMIT = 3


def sign_in(client: Client, username: str, password: str, *, path: str = "/accounts/login/"):
    return client.post(path, {"username": username, "password": password})


def actions() -> list[str]:
    return list(AuditEvent.objects.order_by("id").values_list("action", flat=True))


@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/"])
def test_wrong_passwords_lock_the_account_from_that_address_even_for_the_right_password(admin_user, path):
    client = Client()
    assert [sign_in(client, "admin", "wrong", path=path).status_code for _ in range(2)] == [200, 200]
    locked = sign_in(client, "admin", "wrong", path=path)
    assert locked.status_code == 429
    assert b"Too many failed sign-ins" in locked.content
    right = sign_in(client, "admin", PASSWORD, path=path)
    assert right.status_code == 429
    assert 14 * 60 < int(right["Retry-After"]) <= 15 * 60
    assert "_auth_user_id" not in client.session


def test_the_same_account_from_another_address_can_still_sign_in(viewer):
    for _ in range(3):
        sign_in(Client(REMOTE_ADDR="10.0.0.1"), "viewer", "wrong")
    response = sign_in(Client(REMOTE_ADDR="10.0.0.2"), "viewer", PASSWORD)
    assert response.status_code == 302


def test_failed_sign_ins_are_audited_up_to_the_lockout_and_not_after(viewer):
    client = Client(REMOTE_ADDR="10.0.0.7")
    for _ in range(6):
        sign_in(client, "viewer", "wrong")
    assert actions() == ["auth.login_failed", "auth.login_failed", "auth.locked_out"]
    event = AuditEvent.objects.get(action="auth.locked_out")
    assert event.after["username"] == "viewer" and event.after["ip"] == "10.0.0.7"
    assert event.actor is None


def test_a_successful_sign_in_clears_the_earlier_failures(viewer):
    client = Client()
    sign_in(client, "viewer", "wrong")
    sign_in(client, "viewer", "wrong")
    assert sign_in(client, "viewer", PASSWORD).status_code == 302
    assert not AccessAttempt.objects.exists()


def test_guessed_api_tokens_get_401_then_429_with_retry_after_even_for_a_valid_token(viewer):
    job = Job.objects.create(kind="core.selfcheck")
    _, key = api_token_create(user=viewer, name="real")
    statuses = [Client(HTTP_AUTHORIZATION=f"Token mlw_guess{i}").get(f"/api/v1/jobs/{job.pk}/").status_code
                for i in range(3)]
    assert statuses == [401, 401, 429]
    response = Client(HTTP_AUTHORIZATION=f"Token {key}").get(f"/api/v1/jobs/{job.pk}/")
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "throttled"
    assert 14 * 60 < int(response["Retry-After"]) <= 15 * 60
    assert actions()[-3:] == ["api_token.refused", "api_token.refused", "api_token.locked_out"]


def test_a_valid_token_from_another_address_still_works(viewer):
    job = Job.objects.create(kind="core.selfcheck")
    _, key = api_token_create(user=viewer, name="real")
    for i in range(5):
        Client(HTTP_AUTHORIZATION=f"Token mlw_guess{i}", REMOTE_ADDR="10.0.0.9").get(f"/api/v1/jobs/{job.pk}/")
    assert Client(HTTP_AUTHORIZATION=f"Token {key}").get(f"/api/v1/jobs/{job.pk}/").status_code == 200
    assert ApiToken.objects.get(user=viewer).last_used_at is not None


def test_the_client_address_is_the_one_the_trusted_proxy_saw(settings):
    request = RequestFactory().get("/", REMOTE_ADDR="10.1.1.1", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.5")
    assert client_ip(request) == "10.1.1.1"
    settings.TRUSTED_PROXY_COUNT = 1
    assert client_ip(request) == "203.0.113.5", "an entry the client wrote itself is never trusted"
