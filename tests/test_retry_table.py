"""What is retried is one table: flipping one line of errors.STATUS_ERRORS changes every HTTP path."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import fresh_name

from ml_analytics import errors
from ml_analytics.httpclient import HttpClient, RequestFailed
from ml_analytics.retry import RetryPolicy
from ml_analytics.testing import faults as F
from ml_analytics.testing.proxy import FaultProxy

FAST = RetryPolicy(max_retries=3, initial_backoff=0.01, max_backoff=0.02, total_timeout=20)


class Flaky:
    """Answers ``first`` to the first request, then 200 with ``body``."""

    def __init__(self, first: int, body: bytes = b"{}"):
        self.seen = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _answer(self):
                length = int(self.headers.get("content-length") or 0)
                self.rfile.read(length)
                owner.seen += 1
                status = first if owner.seen == 1 else 200
                data = body if status == 200 else b'{"error": "conflict"}'
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = _answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def conflict_is_transient(monkeypatch):
    """The one-line change: 409 becomes transient."""
    monkeypatch.setitem(errors.STATUS_ERRORS, 409, errors.TransientError)


def test_409_is_final_by_the_table():
    assert not errors.transient_status(409) and errors.transient_status(503) and errors.transient_status(None)
    server = Flaky(409)
    try:
        with pytest.raises(RequestFailed) as e:
            HttpClient(FAST).request("GET", server.url + "/x", accept=lambda r: r.status < 400)
        assert e.value.status == 409 and server.seen == 1
    finally:
        server.close()


def test_flipping_409_makes_the_http_client_retry_it(conflict_is_transient):
    server = Flaky(409)
    try:
        reply = HttpClient(FAST).request("GET", server.url + "/x", accept=lambda r: r.status < 400)
        assert reply.status == 200 and server.seen == 2
    finally:
        server.close()


@pytest.mark.parametrize("flip", [False, True])
def test_flipping_409_changes_the_druid_client(request, flip):
    from ml_analytics.druid.overlord import DruidError, OverlordClient

    if flip:
        request.getfixturevalue("conflict_is_transient")
    status = {"task": "t1", "status": {"id": "t1", "statusCode": "SUCCESS", "runnerStatusCode": "WAITING"}}
    server = Flaky(409, json.dumps(status).encode())
    try:
        client = OverlordClient(server.url + "/druid/indexer/v1/task", retry=FAST)
        if flip:
            assert client.status("t1").status == "SUCCESS" and server.seen == 2
        else:
            with pytest.raises(DruidError, match="409"):
                client.status("t1")
            assert server.seen == 1
    finally:
        server.close()


@pytest.mark.parametrize("flip", [False, True])
def test_flipping_409_changes_a_store_upload(request, azurite, tmp_path, flip):
    from ml_analytics.cloud_storage.ms_azure import MSAzure
    from ml_analytics.testing.servers import AZURITE_ACCOUNT, AZURITE_KEY

    if flip:
        request.getfixturevalue("conflict_is_transient")
    container = azurite.create_container(fresh_name("flip"))
    rule = F.Counted(F.first(("status", 409, b""), when=F.writes))
    proxy = FaultProxy(azurite.port, rule)
    try:
        az = MSAzure(accountName=AZURITE_ACCOUNT, accountKey=AZURITE_KEY, containerName=container,
                     endpoint_url=f"{proxy.endpoint}/{AZURITE_ACCOUNT}", retry=FAST)
        (tmp_path / "a.json").write_bytes(b"{}\n")
        if flip:
            assert az.upload_files("p", str(tmp_path), "a.json").bytes == 3
        else:
            with pytest.raises(errors.ConflictError):
                az.upload_files("p", str(tmp_path), "a.json")
        assert len(rule.fired) == 1
    finally:
        proxy.close()
