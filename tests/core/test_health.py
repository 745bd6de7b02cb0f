import json
import urllib.request

from django.test import Client, override_settings


def test_healthz_answers_without_login(db):
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_200_when_database_and_broker_answer(db, admin_user, client_for):
    response = Client().get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json() == {"status": "ok"}
    body = client_for(admin_user).get("/readyz").json()
    assert body["database"]["ok"] and body["broker"]["ok"]


@override_settings(CELERY_BROKER_URL="redis://127.0.0.1:1/0", CELERY_BROKER_TRANSPORT_OPTIONS={})
def test_readyz_tells_an_anonymous_caller_only_the_status_when_the_broker_is_unreachable(db):
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert json.loads(response.content) == {"status": "unavailable"}
    assert b"127.0.0.1" not in response.content and b"Error" not in response.content


@override_settings(CELERY_BROKER_URL="redis://127.0.0.1:1/0", CELERY_BROKER_TRANSPORT_OPTIONS={})
def test_readyz_tells_staff_which_component_failed_and_why(db, admin_user, viewer, client_for):
    body = client_for(admin_user).get("/readyz").json()
    assert body["status"] == "unavailable"
    assert body["broker"]["ok"] is False and body["database"]["ok"] is True
    assert "Connection refused" in body["broker"]["detail"]
    assert client_for(viewer).get("/readyz").json() == {"status": "unavailable"}


@override_settings(DEBUG=False)
def test_api_errors_are_json_with_code_and_message(db, viewer):
    client = Client()
    client.force_login(viewer)
    response = client.get("/api/v1/jobs/999999/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    response = client.get("/api/v1/no-such-endpoint/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_anonymous_api_calls_get_401_json(db):
    response = Client().get("/api/v1/jobs/1/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_anonymous_pages_redirect_to_login(db):
    response = Client().get("/jobs/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/jobs/")


def test_static_assets_are_served_locally(db, viewer, live_server):
    for asset in ("/static/vendor/htmx/htmx.min.js", "/static/css/app.css"):
        with urllib.request.urlopen(live_server.url + asset) as response:
            assert response.status == 200
            assert len(response.read()) > 1000


def test_the_openapi_document_lists_every_endpoint_including_predict(db, viewer, client_for):
    response = client_for(viewer).get("/api/schema/?format=json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "/api/v1/predict/{model}/{environment}/" in paths
    assert "/api/v1/datasets/{id}/versions/" in paths and "/api/v1/maturity/" in paths


def test_the_favicon_is_served_to_everyone_from_the_static_files(db, live_server):
    """Every page (the admin's and the API docs' too) asks for /favicon.ico: it must not be a 404."""
    assert Client().get("/favicon.ico").status_code == 301
    with urllib.request.urlopen(f"{live_server.url}/favicon.ico", timeout=10) as response:  # follows the redirect
        assert response.status == 200
        assert response.read()[:4] == b"\x00\x00\x01\x00"  # an ICO container
