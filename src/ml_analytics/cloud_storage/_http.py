"""Requests to one storage endpoint over HTTP/1.1: a kept-alive connection per thread, retried under
the project's :class:`RetryPolicy`.

The upload paths of :mod:`.ms_azure` and :mod:`.gcp` send their few request kinds through this
instead of their SDKs' per-call pipelines (azure-core, requests), which cost 0.5-1.8 ms of client
CPU per small object. ``http.client`` opens the connections (TLS, proxy tunnels); the exchange itself
is written and read here (:func:`_exchange`): head and small body in one send, the answer's headers
split by hand, where ``http.client`` runs every response through the ``email`` package's parser —
half of the client CPU of a small upload. Proxies come from the environment (``HTTPS_PROXY`` /
``HTTP_PROXY`` / ``NO_PROXY``) as the SDKs would take them; TLS verification can be turned off per
provider.
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
MAX_LINE = 65536  # a status or header line longer than this is not an HTTP answer
MAX_HEADERS = 200
JOIN_BELOW = 64 * 1024  # a body smaller than this goes out in the same send as the head


class Reply:
    def __init__(self, status: int, headers: dict[str, str], body: bytes):
        self.status, self.headers, self.body = status, headers, body


class RequestFailed(Exception):
    """A request that failed for good: ``reply`` is the store's answer, or None if there was none."""

    def __init__(self, reply: Reply | None, cause: BaseException | None = None):
        self.reply, self.cause = reply, cause
        what = f"{reply.status}" if reply else f"{type(cause).__name__}: {cause}"
        super().__init__(what)


def _read_line(fp) -> bytes:
    line = fp.readline(MAX_LINE + 1)
    if len(line) > MAX_LINE:
        raise http.client.LineTooLong("header line")
    return line


def _read_chunked(fp) -> bytes:
    out = bytearray()
    while True:
        size_line = _read_line(fp)
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise http.client.IncompleteRead(bytes(out)) from None
        if size < 0:
            raise http.client.HTTPException(f"bad chunk size {size_line!r}")
        if size == 0:
            while _read_line(fp) not in (b"\r\n", b"\n", b""):  # trailers
                pass
            return bytes(out)
        chunk = fp.read(size)
        if len(chunk) != size:
            raise http.client.IncompleteRead(chunk, size - len(chunk))
        out += chunk
        fp.read(2)  # CRLF after the chunk


def _exchange(sock, fp, method: str, url: str, host: str, headers: dict[str, str], body) -> tuple[Reply, bool]:
    """Send one request on an open connection and read its answer; returns it and whether the
    connection must be closed afterwards. Socket errors and malformed answers raise (OSError /
    ``http.client.HTTPException``)."""
    lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    if lines.count("\n") != len(headers) or lines.count("\r") != len(headers) or " " in url:
        raise ValueError("a request header or target holds a line break or space")  # never sent
    head = f"{method} {url} HTTP/1.1\r\nHost: {host}\r\nAccept-Encoding: identity\r\n{lines}\r\n"
    data = head.encode("latin-1")
    if isinstance(body, (bytes, bytearray, memoryview)):
        if len(body) < JOIN_BELOW:
            sock.sendall(data + bytes(body))
        else:
            sock.sendall(data)
            sock.sendall(body)
    else:  # an iterable of blocks, Content-Length given by the caller
        sock.sendall(data)
        for block in body:
            sock.sendall(block)
    while True:
        line = _read_line(fp)
        if not line:
            raise http.client.RemoteDisconnected("the store closed the connection without an answer")
        parts = line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
            raise http.client.BadStatusLine(line.decode("latin-1", "replace").strip())
        version, status = parts[0], int(parts[1])
        found: dict[str, str] = {}
        for _ in range(MAX_HEADERS + 1):
            h = _read_line(fp)
            if h in (b"\r\n", b"\n", b""):
                break
            name, _, value = h.partition(b":")
            found[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
        else:
            raise http.client.HTTPException("too many headers in the answer")
        if 100 <= status < 200:  # an interim answer (100 Continue): the real one follows
            continue
        break
    tokens = {t.strip() for t in found.get("connection", "").lower().split(",")}
    close = "close" in tokens or (version == b"HTTP/1.0" and "keep-alive" not in tokens)
    if method == "HEAD" or status in (204, 304):
        payload = b""
    elif "chunked" in found.get("transfer-encoding", "").lower():
        payload = _read_chunked(fp)
    elif "content-length" in found:
        try:
            size = int(found["content-length"])
        except ValueError:
            size = -1
        if size < 0:
            raise http.client.HTTPException(f"bad Content-Length {found['content-length']!r}")
        payload = fp.read(size) if size else b""
        if len(payload) != size:
            raise http.client.IncompleteRead(payload, size - len(payload))
    else:  # no length: the body ends with the connection
        payload, close = fp.read(), True
    return Reply(status, found, payload), close


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
        host = f"[{self.host}]" if ":" in self.host else self.host  # an IPv6 literal in brackets
        self._host_header = host if parts.port is None else f"{host}:{self.port}"
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
        """This thread's open connection (opened by ``http.client``: TLS, proxy tunnel), with a buffered
        reader of its socket as ``conn.reader``."""
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
            conn.reader = conn.sock.makefile("rb")
            self._local.conn = conn
            with self._lock:
                # Threads come and go (a pool per big file): close what ended threads left open, so the
                # sockets held stay bounded by the threads alive, not by the files sent.
                for old, owner in list(self._open.items()):
                    if not owner.is_alive():
                        del self._open[old]
                        _close(old)
                self._open[conn] = threading.current_thread()
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            with self._lock:
                self._open.pop(conn, None)
            _close(conn)

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
                reply, close = _exchange(conn.sock, conn.reader, method, url, self._host_header, hdrs, body)
                if close:
                    self._drop()
            except ssl.SSLCertVerificationError as e:  # the same certificate next time: not retried
                self._drop()
                raise RequestFailed(None, e) from None
            except (OSError, http.client.HTTPException) as e:  # refused, reset, timed out, bad status line
                self._drop()
                cause = e
            except BaseException:  # Ctrl-C or a body that failed mid-request: never reuse that connection
                self._drop()
                raise
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
            _close(conn)
        self._local = threading.local()


def _close(conn: http.client.HTTPConnection) -> None:
    reader = getattr(conn, "reader", None)
    if reader is not None:
        reader.close()
    conn.close()
