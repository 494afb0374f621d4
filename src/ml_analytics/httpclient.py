"""HTTP/1.1 requests made by this project itself: kept-alive connections, one retry loop, bounded answers.

Used by the stores' upload paths (Azure's Blob requests, GCS's JSON API and resumable sessions) and
by the Druid client. ``http.client`` opens the connections (TLS, proxy tunnels); the exchange itself is
written and read here (:func:`exchange`): head and small body in one send, the answer's headers split
by hand (``http.client`` runs every answer through the ``email`` package's parser: half of the client
CPU of a small upload). Proxies come from the environment (``HTTPS_PROXY`` / ``HTTP_PROXY`` /
``NO_PROXY``) as the SDKs would take them.

What every request obeys:

* **One retry loop**: :meth:`ml_analytics.retry.RetryPolicy.run`, with what is transient decided by
  :data:`ml_analytics.errors.STATUS_ERRORS` (a failed attempt is a :class:`RequestFailed` whose
  ``retryable`` comes from that table).
* **Bounded waits**: ``connect_timeout`` to connect, and ``request_timeout`` for the whole answer
  once the request is sent (a server dripping one byte at a time cannot hold a request longer).
* **Bounded memory**: an answer's body is capped (``max_body``); a longer one fails the request.
* **Credentials stay home**: :class:`HttpClient` sends the headers its ``auth`` gives only to the
  origin (scheme, host and port) they belong to; a redirect to another origin goes without them.
"""

from __future__ import annotations

import base64
import http.client
import socket
import ssl
import threading
import time
from collections.abc import Callable
from urllib.parse import unquote, urljoin, urlsplit
from urllib.request import getproxies, proxy_bypass

from .errors import error_class
from .retry import RetryPolicy

MAX_LINE = 65536  # a status or header line longer than this is not an HTTP answer
MAX_HEADERS = 200
JOIN_BELOW = 64 * 1024  # a body smaller than this goes out in the same send as the head
MAX_BODY = 64 * 1024 * 1024  # default cap on an answer's body (a store's error or block list, a Druid answer)
REDIRECTS = (301, 302, 303, 307, 308)


class Reply:
    def __init__(self, status: int, headers: dict[str, str], body: bytes, url: str = ""):
        self.status, self.headers, self.body, self.url = status, headers, body, url


class RequestFailed(Exception):
    """An attempt that failed: ``reply`` is the server's answer, or None if there was none (``cause``).

    ``retryable`` follows the status table; ``final`` marks a failure no retry can change (a refused
    certificate, an answer too large, a caller's verdict on an answer)."""

    def __init__(self, reply: Reply | None, cause: BaseException | None = None, *, final: bool = False):
        self.reply, self.cause, self.final = reply, cause, final
        what = f"{reply.status}" if reply is not None else f"{type(cause).__name__}: {cause}"
        super().__init__(what)

    @property
    def status(self) -> int | None:
        return self.reply.status if self.reply is not None else None

    @property
    def retryable(self) -> bool:
        return not self.final and error_class(self.status).retryable


class AnswerTooLarge(http.client.HTTPException):
    pass


class _Reader:
    """Reads an answer from a socket against one deadline for the whole answer (not per read)."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buf = bytearray()
        self.deadline = float("inf")

    def _fill(self) -> bool:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("the answer did not arrive within request_timeout")
        self.sock.settimeout(left)
        data = self.sock.recv(65536)
        if not data:
            return False
        self.buf += data
        return True

    def readline(self, limit: int = MAX_LINE) -> bytes:
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line = bytes(self.buf[: i + 1])
                del self.buf[: i + 1]
                return line
            if len(self.buf) > limit:
                raise http.client.LineTooLong("header line")
            if not self._fill():
                line = bytes(self.buf)
                self.buf.clear()
                return line

    def read(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                break
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_all(self, cap: int) -> bytes:
        while self._fill():
            if len(self.buf) > cap:
                raise AnswerTooLarge(f"the answer is larger than {cap} bytes")
        out = bytes(self.buf)
        self.buf.clear()
        return out


def _read_chunked(fp: _Reader, cap: int) -> bytes:
    out = bytearray()
    while True:
        size_line = fp.readline()
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise http.client.IncompleteRead(bytes(out)) from None
        if size < 0:
            raise http.client.HTTPException(f"bad chunk size {size_line!r}")
        if size == 0:
            for _ in range(MAX_HEADERS + 1):  # trailers
                if fp.readline() in (b"\r\n", b"\n", b""):
                    return bytes(out)
            raise http.client.HTTPException("too many trailer lines")
        if len(out) + size > cap:
            raise AnswerTooLarge(f"the answer is larger than {cap} bytes")
        chunk = fp.read(size)
        if len(chunk) != size:
            raise http.client.IncompleteRead(chunk, size - len(chunk))
        out += chunk
        fp.read(2)  # CRLF after the chunk


def exchange(sock, fp: _Reader, method: str, url: str, host: str, headers: dict[str, str], body, *,
             timeout: float, max_body: int = MAX_BODY) -> tuple[Reply, bool]:
    """Send one request on an open connection and read its answer within ``timeout`` seconds of the
    request being sent; returns the answer and whether the connection must be closed afterwards.
    Socket errors and malformed or oversized answers raise (OSError / ``http.client.HTTPException``)."""
    lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    if lines.count("\n") != len(headers) or lines.count("\r") != len(headers) or " " in url:
        raise ValueError("a request header or target holds a line break or space")  # never sent
    head = f"{method} {url} HTTP/1.1\r\nHost: {host}\r\nAccept-Encoding: identity\r\n{lines}\r\n"
    data = head.encode("latin-1")
    sock.settimeout(timeout)  # each send waits at most this long for the peer to take bytes
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
    fp.deadline = time.monotonic() + timeout
    while True:
        line = fp.readline()
        if not line:
            raise http.client.RemoteDisconnected("the server closed the connection without an answer")
        parts = line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
            raise http.client.BadStatusLine(line.decode("latin-1", "replace").strip()[:200])
        version, status = parts[0], int(parts[1])
        found: dict[str, str] = {}
        for _ in range(MAX_HEADERS + 1):
            h = fp.readline()
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
        payload = _read_chunked(fp, max_body)
    elif "content-length" in found:
        try:
            size = int(found["content-length"])
        except ValueError:
            size = -1
        if size < 0:
            raise http.client.HTTPException(f"bad Content-Length {found['content-length']!r}")
        if size > max_body:
            raise AnswerTooLarge(f"the answer announces {size} bytes, more than the {max_body} accepted")
        payload = fp.read(size) if size else b""
        if len(payload) != size:
            raise http.client.IncompleteRead(payload, size - len(payload))
    else:  # no length: the body ends with the connection
        payload, close = fp.read_all(max_body), True
    return Reply(status, found, payload), close


def _ok(reply: Reply) -> bool:
    return reply.status < 400 or reply.status == 404


class Endpoint:
    """One scheme://host:port; ``send`` takes the path and query. A kept-alive connection per thread."""

    def __init__(self, url: str, *, verify_tls: bool, retry: RetryPolicy, max_body: int = MAX_BODY):
        parts = urlsplit(url)
        self.https = parts.scheme == "https"
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if self.https else 80)
        self.retry = retry
        self.max_body = max_body
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

    @property
    def origin(self) -> tuple[str, str, int]:
        return ("https" if self.https else "http", self.host.lower(), self.port)

    def same_origin(self, url: str) -> bool:
        return origin_of(url) == self.origin

    def _connection(self) -> http.client.HTTPConnection:
        """This thread's open connection (opened by ``http.client``: TLS, proxy tunnel), with a reader of
        its socket as ``conn.reader``."""
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
            conn.reader = _Reader(conn.sock)
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

    def attempt(self, method: str, target: str, headers: dict[str, str], body=b"", *,
                max_body: int | None = None) -> Reply:
        """One exchange, no retry. Raises :class:`RequestFailed` (no answer) on connection trouble."""
        url = target
        if self.proxy is not None and not self.https:  # a plain-HTTP proxy takes the absolute URL
            url = f"http://{self.host}:{self.port}{target}"
            headers = {**headers, **self._proxy_auth}
        try:
            conn = self._connection()
            reply, close = exchange(conn.sock, conn.reader, method, url, self._host_header, headers, body,
                                    timeout=self.retry.request_timeout, max_body=max_body or self.max_body)
            if close:
                self._drop()
        except ssl.SSLCertVerificationError as e:  # the same certificate next time: not retried
            self._drop()
            raise RequestFailed(None, e, final=True) from None
        except AnswerTooLarge as e:
            self._drop()
            raise RequestFailed(None, e, final=True) from None
        except (OSError, http.client.HTTPException) as e:  # refused, reset, timed out, bad status line
            self._drop()
            raise RequestFailed(None, e) from None
        except BaseException:  # Ctrl-C or a body that failed mid-request: never reuse that connection
            self._drop()
            raise
        reply.url = f"{'https' if self.https else 'http'}://{self._host_header}{target}"
        return reply

    def send(self, method: str, target: str, *, headers: Callable[[int], dict[str, str]], body=b"",
             attempts: int | None = None, length: int | None = None,
             accept: Callable[[Reply], bool] = _ok, final: Callable[[Reply], bool] | None = None,
             max_body: int | None = None) -> Reply:
        """Send ``method target`` under the retry policy; ``headers(attempt)`` builds each attempt's
        headers (dates, signatures). Returns the first answer ``accept`` takes (default: below 400, and
        404, which callers interpret); raises :class:`RequestFailed` when the last attempt failed.
        Transient failures (the status table's retryable ones, no answer) are retried unless ``final``
        says an answer cannot change. A body that is an iterable is sent once (``attempts`` must be 1),
        with ``length`` as its Content-Length."""
        size = len(body) if length is None else length

        def one(n: int) -> Reply:
            reply = self.attempt(method, target, {"content-length": str(size), **headers(n)}, body,
                                 max_body=max_body)
            if accept(reply):
                return reply
            raise RequestFailed(reply, final=bool(final and final(reply)))

        return self.retry.run(one, attempts=attempts, what=f"{method} {self.host}")

    def close(self) -> None:
        with self._lock:
            conns, self._open = list(self._open), {}
        for conn in conns:
            _close(conn)
        self._local = threading.local()


def origin_of(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    scheme = (parts.scheme or "http").lower()
    return (scheme, (parts.hostname or "").lower(), parts.port or (443 if scheme == "https" else 80))


class HttpClient:
    """Requests to any URL, one kept-alive :class:`Endpoint` per origin.

    ``auth`` (a dict of headers, or a callable taking ``refresh`` and giving them) belongs to
    ``auth_origins`` (URLs; by default the origin of the first URL asked for): it is sent to those
    origins only, never to another one a URL or a redirect points at."""

    def __init__(self, retry: RetryPolicy, *, verify_tls: bool = True, max_body: int = MAX_BODY,
                 auth: dict[str, str] | Callable[[bool], dict[str, str]] | None = None,
                 auth_origin: str | None = None, auth_origins=()):
        self.retry = retry
        self.verify_tls = verify_tls
        self.max_body = max_body
        self._auth = auth
        self._auth_origins = {origin_of(u) for u in (*auth_origins, *([auth_origin] if auth_origin else [])) if u}
        self._endpoints: dict[tuple, Endpoint] = {}
        self._lock = threading.Lock()

    def endpoint(self, url: str) -> tuple[Endpoint, str]:
        """The kept-alive endpoint for ``url``'s origin, and the path + query to send there."""
        parts = urlsplit(url)
        key = origin_of(url)
        with self._lock:
            found = self._endpoints.get(key)
            if found is None:
                netloc = parts.netloc.rpartition("@")[2]  # never a URL's user:password
                found = self._endpoints[key] = Endpoint(f"{parts.scheme}://{netloc}", verify_tls=self.verify_tls,
                                                        retry=self.retry, max_body=self.max_body)
        return found, (parts.path or "/") + (f"?{parts.query}" if parts.query else "")

    def auth_for(self, url: str, refresh: bool = False) -> dict[str, str]:
        """The credential headers for ``url``: only for the origin they belong to."""
        if self._auth is None or origin_of(url) not in self._auth_origins:
            return {}
        return self._auth(refresh) if callable(self._auth) else dict(self._auth)

    def request(self, method: str, url: str, *, headers: dict[str, str] | None = None, body=b"",
                attempts: int | None = None, length: int | None = None, accept: Callable[[Reply], bool] = _ok,
                final: Callable[[Reply], bool] | None = None, redirects: int = 0, max_body: int | None = None,
                refresh: bool = False) -> Reply:
        """Send under the retry policy (see :meth:`Endpoint.send`), following up to ``redirects``
        redirects: 307 and 308 with the same method and body, 301/302/303 of a GET or HEAD as a GET/HEAD.
        Credentials follow a redirect only to their own origin."""
        if not self._auth_origins and self._auth is not None:
            self._auth_origins.add(origin_of(url))
        hop = 0
        while True:
            endpoint, target = self.endpoint(url)
            auth = self.auth_for(url, refresh)
            follow = hop < redirects
            reply = endpoint.send(method, target, headers=lambda _n: {**auth, **(headers or {})}, body=body,
                                  attempts=attempts, length=length, max_body=max_body, final=final,
                                  accept=lambda r: accept(r) or (follow and r.status in REDIRECTS))
            location = reply.headers.get("location")
            if not follow or reply.status not in REDIRECTS or not location:
                return reply
            if reply.status in (301, 302, 303) and method not in ("GET", "HEAD"):
                return reply  # would turn a request with a body into a GET: the caller says what that means
            url = urljoin(url, location)
            hop += 1

    def close(self) -> None:
        with self._lock:
            endpoints, self._endpoints = list(self._endpoints.values()), {}
        for endpoint in endpoints:
            endpoint.close()


def _close(conn: http.client.HTTPConnection) -> None:
    conn.close()
