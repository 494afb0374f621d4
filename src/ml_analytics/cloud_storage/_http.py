"""Requests to one storage endpoint over ``http.client``: a kept-alive connection per thread, retried
under the project's :class:`RetryPolicy`.

The upload paths of :mod:`.ms_azure` and :mod:`.gcp` send their few request kinds through this
instead of their SDKs' per-call pipelines (azure-core, requests), which cost 0.5-1.8 ms of client
CPU per small object. Proxies come from the environment (``HTTPS_PROXY`` / ``HTTP_PROXY`` /
``NO_PROXY``) as the SDKs would take them; TLS verification can be turned off per provider.
"""

from __future__ import annotations

import base64
import http.client
import ssl
import threading
import time
from collections.abc import Callable
from urllib.parse import unquote, urlsplit
from urllib.request import getproxies, proxy_bypass

from ..retry import RetryPolicy

TRANSIENT = {408, 429, 500, 502, 503, 504}


class Reply:
    def __init__(self, status: int, headers: dict[str, str], body: bytes):
        self.status, self.headers, self.body = status, headers, body


class RequestFailed(Exception):
    """A request that failed for good: ``reply`` is the store's answer, or None if there was none."""

    def __init__(self, reply: Reply | None, cause: BaseException | None = None):
        self.reply, self.cause = reply, cause
        what = f"{reply.status}" if reply else f"{type(cause).__name__}: {cause}"
        super().__init__(what)


class Endpoint:
    """One scheme://host:port; ``send`` takes the path and query."""

    def __init__(self, url: str, *, verify_tls: bool, retry: RetryPolicy):
        parts = urlsplit(url)
        self.https = parts.scheme == "https"
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if self.https else 80)
        self.retry = retry
        self._tls = ssl.create_default_context() if self.https else None
        if self._tls is not None and not verify_tls:
            self._tls.check_hostname = False
            self._tls.verify_mode = ssl.CERT_NONE
        self._local = threading.local()
        self._open: dict = {}  # connection -> the thread that owns it
        self._lock = threading.Lock()
        proxy = None if proxy_bypass(self.host) else getproxies().get(parts.scheme)
        self.proxy = urlsplit(proxy if "://" in proxy else f"http://{proxy}") if proxy else None
        self._proxy_auth = {}
        if self.proxy is not None and self.proxy.username:
            pair = f"{unquote(self.proxy.username)}:{unquote(self.proxy.password or '')}"
            self._proxy_auth = {"Proxy-Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}

    def same_origin(self, url: str) -> bool:
        parts = urlsplit(url)
        return (parts.scheme == "https") == self.https and parts.hostname == self.host and \
            (parts.port or (443 if self.https else 80)) == self.port

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            host, port = self.host, self.port
            if self.proxy is not None:
                host, port = self.proxy.hostname, self.proxy.port or 80
            if self.https:
                conn = http.client.HTTPSConnection(host, port, timeout=self.retry.connect_timeout, context=self._tls)
                if self.proxy is not None:
                    conn.set_tunnel(self.host, self.port, headers=self._proxy_auth)
            else:
                conn = http.client.HTTPConnection(host, port, timeout=self.retry.connect_timeout)
            conn.connect()
            conn.sock.settimeout(self.retry.request_timeout)
            self._local.conn = conn
            with self._lock:
                # Threads come and go (a pool per big file): close what ended threads left open, so the
                # sockets held stay bounded by the threads alive, not by the files sent.
                for old, owner in list(self._open.items()):
                    if not owner.is_alive():
                        del self._open[old]
                        old.close()
                self._open[conn] = threading.current_thread()
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            with self._lock:
                self._open.pop(conn, None)
            conn.close()

    def send(self, method: str, target: str, *, headers: Callable[[int], dict[str, str]], body=b"",
             attempts: int | None = None, length: int | None = None,
             final: Callable[[Reply], bool] | None = None) -> Reply:
        """Send ``method target``; ``headers(attempt)`` builds each attempt's headers (dates, signatures).
        Transient failures (408, 429, 5xx, connection errors, timeouts) are retried with backoff, at most
        ``max_retries`` times (or ``attempts`` - 1) and none once ``retry_timeout`` has passed. Returns any
        answer below 400 and 404 (callers interpret it); raises :class:`RequestFailed` otherwise. A body
        that is an iterable is sent once (``attempts`` must be 1) with ``length`` as its Content-Length.
        ``final(reply)`` true: an error answer that a retry cannot change, whatever its status."""
        tries = (self.retry.max_retries + 1) if attempts is None else attempts
        deadline = time.monotonic() + self.retry.total_timeout
        size = len(body) if length is None else length
        for attempt in range(tries):
            hdrs = {"content-length": str(size), **headers(attempt)}
            url = target
            if self.proxy is not None and not self.https:  # a plain-HTTP proxy takes the absolute URL
                url = f"http://{self.host}:{self.port}{target}"
                hdrs.update(self._proxy_auth)
            reply = cause = None
            try:
                conn = self._connection()
                conn.request(method, url, body=body, headers=hdrs)
                resp = conn.getresponse()
                data = resp.read()
                reply = Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
                if resp.will_close:
                    self._drop()
            except (OSError, http.client.HTTPException) as e:  # refused, reset, timed out, bad status line
                self._drop()
                cause = e
            if reply is not None and (reply.status < 400 or reply.status == 404):
                return reply
            if reply is not None and (reply.status not in TRANSIENT or final is not None and final(reply)):
                raise RequestFailed(reply)
            pause = self.retry.backoff(attempt)
            if attempt + 1 >= tries or time.monotonic() + pause >= deadline:
                raise RequestFailed(reply, cause)
            time.sleep(pause)
        raise AssertionError("unreachable")

    def close(self) -> None:
        with self._lock:
            conns, self._open = list(self._open), {}
        for conn in conns:
            conn.close()
        self._local = threading.local()
