from django.test import Client

from apps.accounts.models import ApiToken
from apps.core.models import AuditEvent, Job


def test_a_user_creates_a_token_and_sees_the_key_once(viewer, client_for):
    client = client_for(viewer)
    response = client.post("/accounts/tokens/new/", {"name": "notebook"})
    assert response.status_code == 200
    key = response.context["new_key"]
    assert key.startswith("mlw_") and key.encode() in response.content
    token = ApiToken.objects.get(user=viewer)
    assert token.key_hash != key and key not in token.key_hash
    assert key.encode() not in client.get("/accounts/tokens/").content
    assert AuditEvent.objects.filter(action="api_token.create", actor=viewer).exists()


def test_the_api_accepts_a_token_and_refuses_it_after_revocation(viewer, client_for):
    job = Job.objects.create(kind="core.selfcheck")
    key = client_for(viewer).post("/accounts/tokens/new/", {"name": "svc"}).context["new_key"]
    api = Client(HTTP_AUTHORIZATION=f"Token {key}")
    assert api.get(f"/api/v1/jobs/{job.pk}/").status_code == 200
    token = ApiToken.objects.get(user=viewer)
    client_for(viewer).post(f"/accounts/tokens/{token.pk}/revoke/")
    response = api.get(f"/api/v1/jobs/{job.pk}/")
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Invalid or revoked API token."


def test_a_token_needs_a_name(viewer, client_for):
    response = client_for(viewer).post("/accounts/tokens/new/", {"name": "  "})
    assert response.status_code == 400
    assert b"Give the token a name" in response.content
    assert not ApiToken.objects.exists()


def test_two_live_tokens_cannot_share_a_name(viewer, client_for):
    client = client_for(viewer)
    client.post("/accounts/tokens/new/", {"name": "ci"})
    response = client.post("/accounts/tokens/new/", {"name": "ci"})
    assert response.status_code == 400
    assert b"already have an active token" in response.content
    assert ApiToken.objects.count() == 1


def test_a_wrong_token_is_401(db):
    response = Client(HTTP_AUTHORIZATION="Token mlw_nonsense").get("/api/v1/jobs/1/")
    assert response.status_code == 401
