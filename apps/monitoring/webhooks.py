"""Alert webhooks that cannot be turned against the network they run in.

A webhook URL is a request our worker makes on someone's behalf, so it is judged
like one: https only (plain http only when ``WEBHOOK_ALLOW_HTTP`` is on), and the
host is resolved at every delivery and refused when any of its addresses is
loopback, private, link-local, multicast, reserved or otherwise not public (unless
it lies in ``WEBHOOK_ALLOWED_NETWORKS``). The connection then goes to the address
that was judged, never to a second lookup, so a name that resolves differently a
moment later (DNS rebinding) gains nothing. Redirects are not followed; the answer
is read up to ``WEBHOOK_MAX_RESPONSE_BYTES`` and the whole exchange ends after
``WEBHOOK_TIMEOUT_SECONDS`` however slowly the server trickles bytes.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import socket
import ssl
import threading
import time
from urllib.parse import urlsplit

from django.conf import settings

ATTEMPTS = 3
_READ_CHUNK = 8192
_ADDRESS_KINDS = (
    ("is_unspecified", "an unspecified"),
    ("is_loopback", "a loopback"),
    ("is_link_local", "a link-local"),
    ("is_multicast", "a multicast"),
    ("is_reserved", "a reserved"),
    ("is_private", "a private"),
)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class Refused(Exception):
    """The URL or its address is not one we deliver to; trying again cannot help."""


class DeliveryFailed(Exception):
    """The delivery was attempted and did not complete (network, TLS, time)."""


def url_problem(url: str) -> str | None:
    """Why ``url`` is not a webhook we deliver to, judged without a lookup (None: fine so far)."""
    parts = urlsplit(url)
    allowed = ("https", "http") if settings.WEBHOOK_ALLOW_HTTP else ("https",)
    if parts.scheme not in allowed:
        return "Webhooks must use https." if parts.scheme == "http" else f"Webhooks use {' or '.join(allowed)}."
    try:
        parts.port  # noqa: B018 - raises for a port that is not a number in range
    except ValueError:
        return "The webhook URL has an invalid port."
    if not parts.hostname:
        return "The webhook URL names no host."
    if parts.username or parts.password:
        return "Put no user name or password in the webhook URL."
    try:
        address = ipaddress.ip_address(parts.hostname)
    except ValueError:
        return None  # a name: resolved and judged at every delivery
    return address_problem(address)


def address_problem(address: IPAddress) -> str | None:
    """Why we do not connect to ``address`` (None: a public address, or an allowed one)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if any(address in ipaddress.ip_network(n, strict=False) for n in settings.WEBHOOK_ALLOWED_NETWORKS):
        return None
    for test, kind in _ADDRESS_KINDS:
        if getattr(address, test):
            return f"{address} is {kind} address; webhooks go to public addresses only."
    if not address.is_global:
        return f"{address} is not a public address; webhooks go to public addresses only."
    return None


def checked_address(host: str, port: int) -> str:
    """The address to connect to: every address ``host`` resolves to must be acceptable."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise Refused(f"The webhook host {host!r} does not resolve.") from None
    addresses = [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]
    for address in addresses:
        if problem := address_problem(address):
            raise Refused(f"{host} resolves to {address}: {problem}" if str(address) != host else problem)
    return str(addresses[0])


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the address that was checked, whatever the name resolves to now."""

    def __init__(self, host: str, port: int, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)

    def abort(self) -> None:
        if self.sock is not None:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _PinnedHTTPSConnection(_PinnedHTTPConnection):
    default_port = 443

    def connect(self) -> None:
        raw = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = raw  # so that abort() can end a handshake the server trickles
        # the certificate is checked against the name in the URL, not the address
        self.sock = ssl.create_default_context().wrap_socket(raw, server_hostname=self.host)


def post_json(url: str, payload: dict, *, timeout: float, max_bytes: int) -> int:
    """POST ``payload`` to ``url`` and return the status; raises Refused or DeliveryFailed."""
    if problem := url_problem(url):
        raise Refused(problem)
    parts = urlsplit(url)
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    address = checked_address(parts.hostname, port)
    connection_class = _PinnedHTTPSConnection if https else _PinnedHTTPConnection
    connection = connection_class(parts.hostname, port, address, timeout)
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        connection.abort()

    watchdog = threading.Timer(timeout, expire)
    watchdog.daemon = True
    watchdog.start()
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request("POST", path, body=json.dumps(payload).encode(),
                           headers={"Content-Type": "application/json", "User-Agent": "mlops-dashboard-webhook"})
        response = connection.getresponse()
        received = 0
        while received <= max_bytes and (chunk := response.read(_READ_CHUNK)):
            received += len(chunk)  # read to judge nothing but the status: capped, then dropped
        if expired.is_set():  # cut off mid-answer: what arrived may parse, but it is not the answer
            raise TimeoutError
        return response.status
    except (OSError, http.client.HTTPException) as exc:
        if expired.is_set():
            raise DeliveryFailed(f"no complete answer within {timeout:g} s") from None
        raise DeliveryFailed(f"{type(exc).__name__}: {exc}"[:200]) from None
    finally:
        watchdog.cancel()
        connection.close()


def deliver(url: str, payload: dict) -> dict:
    """Deliver with a bounded number of attempts; the outcome as stored on the alert.

    A refused URL is not retried; a 5xx answer or a failed attempt is, after a pause.
    """
    attempts: list[dict] = []
    for attempt in range(1, ATTEMPTS + 1):
        try:
            status = post_json(url, payload, timeout=settings.WEBHOOK_TIMEOUT_SECONDS,
                               max_bytes=settings.WEBHOOK_MAX_RESPONSE_BYTES)
        except Refused as exc:
            attempts.append({"attempt": attempt, "refused": str(exc)})
            break
        except DeliveryFailed as exc:
            attempts.append({"attempt": attempt, "error": str(exc)})
        else:
            attempts.append({"attempt": attempt, "status": status})
            if status < 500:
                break
        if attempt < ATTEMPTS:
            time.sleep(0.5 * attempt)
    ok = 200 <= attempts[-1].get("status", 0) < 300
    return {"channel": "webhook", "ok": ok, "host": urlsplit(url).hostname or "", "attempts": attempts}
