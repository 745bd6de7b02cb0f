"""Alert webhooks: delivered to a real local server when the settings open the way to it,
refused with the defaults (http, loopback, private, link-local, metadata, multicast and
reserved addresses), judged at connect time, never redirected, and bounded in bytes and
time however the server answers."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.deployments.services import environments_ensure
from apps.monitoring import webhooks
from apps.monitoring.models import Alert, DriftReport, MonitorPolicy
from apps.monitoring.services import alert_notify
from apps.registry.models import RegisteredModel


class Server:
    """A local HTTP server whose handler is chosen per test; it records every request."""

    def __init__(self, behaviour: str):
        self.behaviour = behaviour
        self.requests: list[dict] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests.append({"path": self.path, "body": body, "host": self.headers["Host"]})
                try:
                    outer.answer(self)
                except OSError:
                    pass  # the client hung up, as it should on a slow or endless answer

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"

    def answer(self, handler) -> None:
        write = handler.wfile.write
        if self.behaviour == "ok":
            handler.send_response(200)
            handler.send_header("Content-Length", "2")
            handler.end_headers()
            write(b"ok")
        elif self.behaviour == "500":
            handler.send_response(500)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
        elif self.behaviour == "redirect":
            handler.send_response(307)
            handler.send_header("Location", self.url.replace("/hook", "/elsewhere"))
            handler.send_header("Content-Length", "0")
            handler.end_headers()
        elif self.behaviour == "trickle-headers":
            for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 200:
                write(bytes([byte]))
                handler.wfile.flush()
                time.sleep(0.05)
        elif self.behaviour == "trickle-body":
            handler.send_response(200)
            handler.send_header("Content-Length", "100000")
            handler.end_headers()
            for _ in range(1000):
                write(b"x")
                handler.wfile.flush()
                time.sleep(0.05)
        elif self.behaviour == "endless":
            handler.send_response(200)
            handler.send_header("Transfer-Encoding", "chunked")
            handler.end_headers()
            chunk = b"%x\r\n%s\r\n" % (65536, b"y" * 65536)
            for _ in range(10_000):  # 640 MB if anyone read it all
                write(chunk)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve():
    servers = []

    def start(behaviour: str) -> Server:
        server = Server(behaviour)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def local_allowed(settings):
    """What an admin sets for tests: plain http and the loopback network allowed."""
    settings.WEBHOOK_ALLOW_HTTP = True
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    settings.WEBHOOK_TIMEOUT_SECONDS = 1.0
    return settings


@pytest.fixture
def alert(db):
    environments_ensure()
    from apps.deployments.models import Environment

    model = RegisteredModel.objects.create(name="hooked", task_type="classification", primary_metric="f1",
                                           threshold_metric="f1", threshold_value=0.5)
    policy = MonitorPolicy.objects.create(model=model, environment=Environment.objects.get(name="production"))
    now = timezone.now()
    report = DriftReport.objects.create(policy=policy, window_start=now - timedelta(hours=1), window_end=now, rows=100,
                                        status="drifting", dataset_drift=True, drift_share=0.5)
    return Alert.objects.create(policy=policy, kind="drift", message="drift!", opened_at=now, opened_by=report)


def notify(alert, url: str) -> dict:
    MonitorPolicy.objects.filter(pk=alert.policy_id).update(webhook_url=url)
    alert.refresh_from_db()
    alert_notify(alert=alert, event="opened")
    alert.refresh_from_db()
    return alert.notifications[-1]["outcomes"][0]


def test_a_webhook_reaches_a_local_server_when_the_settings_allow_it(alert, serve, local_allowed):
    server = serve("ok")
    outcome = notify(alert, server.url)
    assert outcome == {"channel": "webhook", "ok": True, "host": "127.0.0.1", "attempts": [{"attempt": 1, "status": 200}]}
    payload = json.loads(server.requests[0]["body"])
    assert payload["event"] == "alert.opened" and payload["alert"]["id"] == alert.pk


def test_with_the_default_settings_plain_http_is_refused_without_a_connection(alert, serve):
    server = serve("ok")
    outcome = notify(alert, server.url)
    assert outcome["ok"] is False and outcome["attempts"] == [{"attempt": 1, "refused": "Webhooks must use https."}]
    assert server.requests == []


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("https://127.0.0.1:{port}/hook", "loopback"),
        ("https://localhost:{port}/hook", "loopback"),
        ("https://[::1]:{port}/hook", "loopback"),
        ("https://[::ffff:127.0.0.1]:{port}/hook", "loopback"),
        ("https://169.254.169.254/latest/meta-data/", "link-local"),
        ("https://10.0.0.7/hook", "private"),
        ("https://192.168.1.1/hook", "private"),
        ("https://172.16.0.1/hook", "private"),
        ("https://224.0.0.1/hook", "multicast"),
        ("https://240.0.0.1/hook", "reserved"),
        ("https://0.0.0.0:{port}/hook", "unspecified"),
        ("https://100.64.0.1/hook", "not a public"),
    ],
)
def test_with_the_default_settings_internal_addresses_are_refused(serve, url, kind, db):
    server = serve("ok")
    with pytest.raises(webhooks.Refused, match=kind):
        webhooks.post_json(url.format(port=server.httpd.server_address[1]), {}, timeout=1, max_bytes=100)
    assert server.requests == []


def test_a_name_is_judged_by_what_it_resolves_to_when_the_hook_is_sent(alert, monkeypatch):
    MonitorPolicy.objects.filter(pk=alert.policy_id).update(webhook_url="https://hooks.example.test/x")
    policy = MonitorPolicy.objects.get(pk=alert.policy_id)
    policy.full_clean()  # a name passes when it is saved: nothing is looked up then

    def rebound(host, port, *args, **kwargs):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebound)
    outcome = notify(alert, "https://hooks.example.test/x")
    assert outcome["ok"] is False
    assert "hooks.example.test resolves to 127.0.0.1" in outcome["attempts"][0]["refused"]


def test_one_internal_address_among_public_ones_refuses_the_name(monkeypatch, db):
    def mixed(host, port, *args, **kwargs):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", port))]

    monkeypatch.setattr(socket, "getaddrinfo", mixed)
    with pytest.raises(webhooks.Refused, match="10.1.2.3"):
        webhooks.checked_address("hooks.example.test", 443)


def test_the_connection_goes_to_the_address_that_was_judged(serve, local_allowed, monkeypatch):
    server = serve("ok")
    port = server.httpd.server_address[1]
    real = socket.getaddrinfo
    answers = iter(["127.0.0.1"])

    def rebinding(host, *args, **kwargs):
        if host == "hooks.example.test":  # first the judged address, then somewhere else
            return real(next(answers, "10.255.255.1"), *args, **kwargs)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    status = webhooks.post_json(f"http://hooks.example.test:{port}/hook", {"a": 1}, timeout=1, max_bytes=100)
    assert status == 200 and server.requests[0]["host"] == f"hooks.example.test:{port}"


def test_a_redirect_is_not_followed_and_the_post_is_not_replayed(alert, serve, local_allowed):
    server = serve("redirect")
    outcome = notify(alert, server.url)
    assert outcome["ok"] is False and outcome["attempts"] == [{"attempt": 1, "status": 307}]
    assert [r["path"] for r in server.requests] == ["/hook"]


@pytest.mark.parametrize("behaviour", ["trickle-headers", "trickle-body"])
def test_a_server_that_trickles_bytes_is_cut_off_at_the_deadline(serve, local_allowed, behaviour):
    server = serve(behaviour)
    started = time.monotonic()
    with pytest.raises(webhooks.DeliveryFailed, match="no complete answer within 1 s"):
        webhooks.post_json(server.url, {}, timeout=1.0, max_bytes=1_000_000)
    assert time.monotonic() - started < 3  # the deadline holds, not the 10 s the server would take


def test_an_endless_answer_is_read_only_up_to_the_byte_cap(serve, local_allowed):
    server = serve("endless")
    assert webhooks.post_json(server.url, {}, timeout=5.0, max_bytes=64 * 1024) == 200


@pytest.mark.parametrize("behaviour", ["500", "trickle-body"])
def test_a_failing_webhook_is_retried_a_bounded_number_of_times(alert, serve, local_allowed, behaviour):
    server = serve(behaviour)
    outcome = notify(alert, server.url)
    assert outcome["ok"] is False and len(outcome["attempts"]) == 3 and len(server.requests) == 3


def test_viewers_see_whether_a_hook_was_sent_but_not_what_the_attempts_met(alert, serve, local_allowed, client_for,
                                                                             viewer, engineer):
    notify(alert, serve("500").url)
    page = client_for(viewer).get(f"/monitoring/alerts/{alert.pk}/")
    assert page.status_code == 200 and b'data-testid="notifications"' in page.content
    assert b'data-testid="delivery"' not in page.content and b"HTTP 500" not in page.content
    page = client_for(engineer).get(f"/monitoring/alerts/{alert.pk}/")
    assert b"HTTP 500" in page.content


def test_the_allowed_networks_setting_must_name_networks():
    from tests.conftest import run_python
    from tests.core.test_settings import SETUP, base_env

    result = run_python(SETUP, base_env(WEBHOOK_ALLOWED_NETWORKS="127.0.0.0/8,not-a-network"))
    assert result.returncode != 0 and "WEBHOOK_ALLOWED_NETWORKS: 'not-a-network'" in result.stderr
