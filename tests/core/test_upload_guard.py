"""A request body is refused before it is read when it is larger than its address allows,
and no file reaches the disk from an anonymous caller or where no file is expected.

The attacks go over a real socket to the live server: the headers first, the body from a
second thread, while a third watches the folder where uploads are streamed to.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from urllib.parse import urlparse

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from apps.core.uploads import upload_body_limit
from apps.datasets.models import Dataset, DatasetVersion

pytestmark = pytest.mark.django_db(transaction=True)

BOUNDARY = "guardtestboundary"
MB = 1024 * 1024
# An attacker sends any 32 letters as a CSRF cookie: without one, the CSRF check refuses
# before it reads the body; with one, it parses the body to look for the token.
CSRF_COOKIE = "Cookie: csrftoken=csrfsecretforsubprocesstests0000"


@pytest.fixture
def upload_dir(settings, tmp_path):
    folder = tmp_path / "uploads"
    folder.mkdir()
    settings.FILE_UPLOAD_TEMP_DIR = str(folder)
    settings.MEDIA_ROOT = tmp_path / "media"
    return folder


@pytest.fixture
def dataset(engineer):
    return Dataset.objects.create(name="guarded", owner=engineer)


def multipart(files: int, size: int) -> bytes:
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="f{i}.csv"\r\n'
        f"Content-Type: text/csv\r\n\r\n".encode() + b"a,b\n" + b"1,2\n" * (size // 4) + b"\r\n"
        for i in range(files)
    ]
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def raw_post(url: str, path: str, body: bytes, watched, *, headers=(), declared_length=None, send_body=True):
    """POST over a socket; return the status, the seconds until it came and the most files seen."""
    address = urlparse(url)
    sock = socket.create_connection((address.hostname, address.port), timeout=10)
    head = [
        f"POST {path} HTTP/1.1", f"Host: {address.hostname}:{address.port}",
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}",
        f"Content-Length: {declared_length or len(body)}", "Connection: close", *headers, "", "",
    ]
    seen, done = [0], threading.Event()

    def watch():
        while not done.is_set():
            seen.append(len(os.listdir(watched)))
            time.sleep(0.002)

    def send():
        try:
            for start in range(0, len(body), 64 * 1024):
                sock.sendall(body[start:start + 64 * 1024])
        except OSError:
            pass  # the server may close the connection once it has answered

    started = time.monotonic()
    sock.sendall("\r\n".join(head).encode())
    threads = [threading.Thread(target=watch)] + ([threading.Thread(target=send)] if send_body else [])
    for thread in threads:
        thread.start()
    try:
        status_line = sock.makefile("rb").readline()
        elapsed = time.monotonic() - started
    finally:
        for thread in threads[1:]:
            thread.join(30)
        done.set()
        threads[0].join(5)
        sock.close()
    return int(status_line.split()[1]), elapsed, max(seen)


def session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return f"Cookie: sessionid={client.cookies['sessionid'].value}"


ANONYMOUS_UPLOADS = [
    pytest.param("/datasets/{pk}/upload/", (), 302, id="dataset page: sent to the login"),
    pytest.param("/api/v1/datasets/{pk}/versions/", (), 401, id="api without a token"),
    pytest.param("/api/v1/datasets/{pk}/versions/", ("Authorization: Token mlw_guessed",), 401,
                 id="api with a guessed token"),
    pytest.param("/deployments/1/batches/", (), 302, id="batch scoring page"),
    pytest.param("/accounts/login/", (), 413, id="login page: larger than a form may be"),
]


@pytest.mark.parametrize(("path", "headers", "expected"), ANONYMOUS_UPLOADS)
def test_an_anonymous_multipart_post_with_large_files_writes_nothing_and_is_refused_at_once(
    live_server, upload_dir, dataset, path, headers, expected
):
    body = multipart(files=3, size=8 * MB)
    status, seconds, files_seen = raw_post(live_server.url, path.format(pk=dataset.pk), body, upload_dir,
                                           headers=(CSRF_COOKIE, *headers))
    assert status == expected
    assert files_seen == 0, "an anonymous request's file reached the disk"
    assert seconds < 3, f"answered after {seconds:.1f}s: the body was read first"
    assert os.listdir(upload_dir) == []


@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/"])
def test_an_anonymous_file_to_a_login_page_is_refused_before_a_byte_of_it_is_written(
    live_server, upload_dir, path
):
    status, _, files_seen = raw_post(live_server.url, path, multipart(files=1, size=1 * MB), upload_dir,
                                     headers=(CSRF_COOKIE,))
    assert status == 400
    assert files_seen == 0


def test_a_body_over_the_upload_limit_is_refused_by_its_length_before_it_is_sent(
    live_server, upload_dir, dataset, engineer, settings
):
    settings.DATASET_MAX_UPLOAD_BYTES = 10 * MB
    too_big = upload_body_limit() + 1
    for path in (f"/datasets/{dataset.pk}/upload/", f"/api/v1/datasets/{dataset.pk}/versions/"):
        status, seconds, _ = raw_post(live_server.url, path, b"", upload_dir, headers=(session_cookie(engineer),),
                                      declared_length=too_big, send_body=False)
        assert status == 413, path
        assert seconds < 3


def test_a_large_body_to_an_address_without_uploads_is_refused_by_its_length(live_server, upload_dir, engineer):
    status, _, _ = raw_post(live_server.url, "/datasets/new/", b"", upload_dir, headers=(session_cookie(engineer),),
                            declared_length=6 * MB, send_body=False)
    assert status == 413


def two_files():
    return [SimpleUploadedFile("a.csv", b"a,b\n1,2\n"), SimpleUploadedFile("b.csv", b"a,b\n3,4\n")]


def test_two_files_where_one_is_expected_are_refused_on_the_page(engineer, client_for, dataset, upload_dir):
    response = client_for(engineer).post(f"/datasets/{dataset.pk}/upload/", {"file": two_files(), "note": ""})
    assert response.status_code == 400
    assert b"Send one file per upload." in response.content
    assert not DatasetVersion.objects.exists()
    assert os.listdir(upload_dir) == []


def test_two_files_where_one_is_expected_are_refused_by_the_api(engineer, client_for, dataset, upload_dir):
    response = client_for(engineer).post(f"/api/v1/datasets/{dataset.pk}/versions/", {"file": two_files()})
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"file": "Send one file per upload."}
    assert not DatasetVersion.objects.exists()
    assert os.listdir(upload_dir) == []


def test_a_file_where_none_is_expected_is_refused(engineer, client_for, upload_dir):
    response = client_for(engineer).post("/datasets/new/", {"name": "x", "file": two_files()[0]})
    assert response.status_code == 400
    assert b"This address takes no file." in response.content
    assert not Dataset.objects.exists()


def test_one_file_where_one_is_expected_is_still_taken(engineer, client_for, dataset, upload_dir):
    response = client_for(engineer).post(
        f"/api/v1/datasets/{dataset.pk}/versions/", {"file": SimpleUploadedFile("a.csv", b"a,b\n1,2\n3,4\n")}
    )
    assert response.status_code == 201, response.content
    assert DatasetVersion.objects.count() == 1
